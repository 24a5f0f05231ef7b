"""The catalog: SQLAlchemy models and queries for files, segments and the index's own settings.

Segment ids are the FAISS ids of the segment vectors; each file owns a contiguous block of them
(``first_segment_id .. first_segment_id + n_segments - 1``), so segment ``j`` of a file has id
``first_segment_id + j``. File ids are the FAISS ids of the whole-recording vectors.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

#: version of the table layout below; stored in the settings table
SCHEMA_VERSION = 1


class Base(DeclarativeBase):
    pass


class File(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True, index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    duration_s: Mapped[float] = mapped_column(Float)
    sample_rate_hz: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_segment_id: Mapped[int] = mapped_column(BigInteger)
    n_segments: Mapped[int] = mapped_column(Integer)
    indexed_at: Mapped[_dt.datetime] = mapped_column(DateTime)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    start_s: Mapped[float] = mapped_column(Float)


class IndexSetting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


@dataclass(frozen=True)
class FileRecord:
    """What the indexer knows about a decoded file before it is stored."""

    path: str
    size_bytes: int
    mtime_ns: int
    content_hash: str
    duration_s: float
    sample_rate_hz: int
    channels: int
    tags: dict


@dataclass(frozen=True)
class FileBlocks:
    """In-memory map from segment id to file: sorted first ids, counts and file ids."""

    first_ids: np.ndarray
    counts: np.ndarray
    file_ids: np.ndarray

    def locate(self, segment_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(row into this table, segment index within the file)``; row -1 where unknown."""
        seg = np.asarray(segment_ids, dtype=np.int64)
        row = np.searchsorted(self.first_ids, seg, side="right") - 1
        ok = (row >= 0) & (seg >= 0)
        rr = np.where(ok, row, 0)
        within = seg - self.first_ids[rr] if len(self.first_ids) else np.zeros_like(seg)
        ok &= (within >= 0) & (within < (self.counts[rr] if len(self.counts) else 0))
        return np.where(ok, row, -1), np.where(ok, within, -1)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Catalog:
    """The SQL side of an index."""

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # --- settings -------------------------------------------------------------------------------
    def settings(self, session: Session | None = None) -> dict[str, Any]:
        with self._maybe(session) as s:
            return {row.key: json.loads(row.value) for row in s.scalars(select(IndexSetting))}

    @staticmethod
    def put_settings(session: Session, values: dict[str, Any]) -> None:
        for key, value in values.items():
            session.merge(IndexSetting(key=key, value=json.dumps(value)))

    # --- files and segments ---------------------------------------------------------------------
    @staticmethod
    def add_file(session: Session, record: FileRecord, first_segment_id: int, starts_s: np.ndarray) -> int:
        """Insert a file and its segments; returns the file id (not committed)."""
        row = File(
            **record.__dict__,
            first_segment_id=first_segment_id,
            n_segments=len(starts_s),
            indexed_at=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None),
        )
        session.add(row)
        session.flush()
        ids = first_segment_id + np.arange(len(starts_s), dtype=np.int64)
        if len(ids):
            session.execute(
                insert(Segment),
                [{"id": int(i), "file_id": row.id, "start_s": float(t)} for i, t in zip(ids, starts_s)],
            )
        return row.id

    @staticmethod
    def delete_files(session: Session, files: Iterable[File]) -> None:
        """Delete files and their segments (not committed)."""
        ids = [f.id for f in files]
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            session.execute(delete(Segment).where(Segment.file_id.in_(part)))
            session.execute(delete(File).where(File.id.in_(part)))

    def files_by_path(self, paths: Iterable[str], session: Session | None = None) -> dict[str, File]:
        paths = list(paths)
        out: dict[str, File] = {}
        with self._maybe(session) as s:
            for i in range(0, len(paths), 500):
                for f in s.scalars(select(File).where(File.path.in_(paths[i : i + 500]))):
                    out[f.path] = f
        return out

    def files_under(self, prefix: str, session: Session | None = None) -> list[File]:
        """Files whose path is ``prefix`` or lies in the folder ``prefix``."""
        folder = prefix.rstrip("/") + "/"
        with self._maybe(session) as s:
            return list(
                s.scalars(select(File).where((File.path == prefix) | (func.substr(File.path, 1, len(folder)) == folder)))
            )

    def files_by_id(self, ids: Iterable[int], session: Session | None = None) -> dict[int, File]:
        ids = [int(i) for i in ids]
        with self._maybe(session) as s:
            return {f.id: f for f in s.scalars(select(File).where(File.id.in_(ids)))} if ids else {}

    def file_blocks(self) -> FileBlocks:
        with self.Session() as s:
            rows = s.execute(select(File.first_segment_id, File.n_segments, File.id).order_by(File.first_segment_id)).all()
        arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return FileBlocks(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy())

    def counts(self) -> dict[str, float]:
        with self.Session() as s:
            n_files, hours, n_seg = s.execute(
                select(func.count(File.id), func.coalesce(func.sum(File.duration_s), 0.0) / 3600.0, func.coalesce(func.sum(File.n_segments), 0))
            ).one()
        return {"files": int(n_files), "hours": float(hours), "segments": int(n_seg)}

    def _maybe(self, session: Session | None):
        from contextlib import nullcontext

        return nullcontext(session) if session is not None else self.Session()
