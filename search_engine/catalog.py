"""The catalog: SQLAlchemy models and queries for files, segments and the index's own settings.

Segment ids are the FAISS ids of the segment vectors; each file owns a contiguous block of them
(``first_segment_id .. first_segment_id + n_segments - 1``), so segment ``j`` of a file has id
``first_segment_id + j``. File ids are the FAISS ids of the whole-recording vectors.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .errors import IndexMismatchError

#: where Alembic finds the migrations of the tables below
MIGRATIONS = "search_engine:migrations"
#: the revision of a catalog written before the catalog had migrations (tables of 0001, no alembic_version)
_FIRST_REVISION = "0001"


class Base(DeclarativeBase):
    pass


#: Alembic's own table (read by :meth:`Catalog._state`; Alembic writes it)
_ALEMBIC_VERSION = Table("alembic_version", MetaData(), Column("version_num", String(32), primary_key=True))


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
    #: a user's label for the file (``audio2vec label``), used by ``classify``
    label: Mapped[str | None] = mapped_column(String, nullable=True, index=True, default=None)
    # tags (mutagen) as columns, for filters (:mod:`search_engine.filters`); ``tags`` keeps them all
    title: Mapped[str | None] = mapped_column(String, nullable=True, default=None)
    artist: Mapped[str | None] = mapped_column(String, nullable=True, index=True, default=None)
    album: Mapped[str | None] = mapped_column(String, nullable=True, default=None)
    genre: Mapped[str | None] = mapped_column(String, nullable=True, index=True, default=None)
    #: track number (the ``3`` of a ``3/12`` tag)
    track: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    start_s: Mapped[float] = mapped_column(Float)


class IndexSetting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


#: the tags that are also columns of :class:`File`, as text
TAG_COLUMNS = ("title", "artist", "album", "genre")


def tag_columns(tags: dict) -> dict[str, Any]:
    """The :class:`File` columns of a file's tags: ``title``, ``artist``, ``album``, ``genre``
    (text, None when missing) and ``track`` (the leading number of ``"3"`` or ``"3/12"``, else None)."""
    tags = tags or {}
    out: dict[str, Any] = {name: (str(tags[name]) if tags.get(name) else None) for name in TAG_COLUMNS}
    m = re.match(r"\s*(\d+)", str(tags.get("track") or ""))
    out["track"] = int(m.group(1)) if m and int(m.group(1)) < 2**31 else None
    return out


def path_key(path: str | os.PathLike) -> str:
    """The catalog's key for a file: its absolute path as the user reaches it, symlinks kept.

    A library that is a folder of symlinks (git-annex: ``song.ogg -> .git/annex/objects/...``) is
    reported by its own names; two links to the same bytes share their vectors as copies do.
    """
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


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
    # let SQLAlchemy's "begin" event emit BEGIN, so a read session is one snapshot (WAL) too
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn):
    conn.exec_driver_sql("BEGIN")


class Catalog:
    """The SQL side of an index. Call :meth:`upgrade` (under the index's writer lock) when
    :meth:`needs_upgrade` says the tables are missing or older than this code."""

    def __init__(self, url: str):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        #: the catalog's URL as messages and ``stats`` show it (any password hidden)
        self.url = parsed.render_as_string(hide_password=True)
        options = {}
        if parsed.get_backend_name() == "postgresql":
            # a read transaction must be one committed state, as SQLite's WAL gives (``snapshot``,
            # ``check``): PostgreSQL's default READ COMMITTED would let each SELECT see a newer commit.
            # Only one process writes (the writer lock), so no transaction ever has to retry.
            # pre_ping: a long-lived query host survives a restarted server
            options = {"isolation_level": "REPEATABLE READ", "pool_pre_ping": True}
        self.engine: Engine = create_engine(url, **options)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # --- schema ---------------------------------------------------------------------------------
    @staticmethod
    def _alembic():
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", MIGRATIONS)
        return cfg, ScriptDirectory.from_config(cfg)

    def revision(self) -> str | None:
        """The catalog's schema revision; ``None`` for an empty database."""
        return self._state()[0]

    def _state(self) -> tuple[str | None, bool]:
        """``(revision, stamped)``: a catalog from before migrations has revision 0001 unstamped.

        Read with one SELECT of Alembic's ``alembic_version`` table, without importing Alembic
        (opening an index for a query should not pay for the migration machinery)."""
        with self.engine.connect() as conn:
            tables = inspect(conn)
            if tables.has_table("alembic_version"):
                current = conn.execute(select(_ALEMBIC_VERSION.c.version_num)).scalar()
                if current is not None:
                    return current, True
            if tables.has_table("files"):
                return _FIRST_REVISION, False
        return None, False

    def needs_upgrade(self) -> bool:
        """True when the tables are missing, unversioned or older than this code's models.

        Raises :class:`IndexMismatchError` for a catalog written by a newer audio2vec.
        """
        from .migrations import revisions

        known = revisions()
        current, stamped = self._state()
        if current is not None and current not in known:
            raise IndexMismatchError(
                f"catalog {self.url} has schema revision {current}, which this audio2vec does not know "
                f"(it reads up to {known[-1]}): it was written by a newer audio2vec; upgrade audio2vec"
            )
        return not stamped or current != known[-1]

    def upgrade(self) -> str | None:
        """Create the tables, or migrate them to this code's revision (Alembic).

        An SQLite catalog that already holds files is first copied to ``<file>.pre-<revision>``.
        Returns the path of that backup, if one was made.
        """
        from alembic import command

        cfg, _ = self._alembic()
        current, stamped = self._state()
        backup = None
        if current is not None and self.engine.dialect.name == "sqlite" and self.engine.url.database:
            backup = f"{self.engine.url.database}.pre-{current}"
            if os.path.exists(backup):
                os.unlink(backup)
            raw = self.engine.raw_connection()  # VACUUM INTO cannot run inside a transaction
            try:
                raw.driver_connection.execute("VACUUM INTO ?", (backup,))
            finally:
                raw.close()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            if current is not None and not stamped:
                command.stamp(cfg, current)  # a catalog from before migrations existed
            command.upgrade(cfg, "head")
        return backup

    # --- settings -------------------------------------------------------------------------------
    def settings(self, session: Session | None = None) -> dict[str, Any]:
        with self._maybe(session) as s:
            return {row.key: json.loads(row.value) for row in s.scalars(select(IndexSetting))}

    def generation(self) -> int:
        """The committed generation of the vector files (one small SELECT)."""
        with self.Session() as s:
            value = s.scalar(select(IndexSetting.value).where(IndexSetting.key == "generation"))
        return int(json.loads(value)) if value is not None else 0

    @staticmethod
    def put_settings(session: Session, values: dict[str, Any]) -> None:
        for key, value in values.items():
            session.merge(IndexSetting(key=key, value=json.dumps(value)))

    # --- files and segments ---------------------------------------------------------------------
    @staticmethod
    def add_files(session: Session, entries: Sequence[tuple[FileRecord, int, np.ndarray, str | None]]) -> list[int]:
        """Insert files and their segments; each entry is ``(record, first segment id, segment
        starts in seconds, label)``. Returns the new file ids in entry order (not committed).

        Two statements whatever the number of files (a bulk INSERT ... RETURNING for the files,
        one executemany for the segments): a batch of one-shots costs no round trip per file."""
        if not entries:
            return []
        now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        rows = [
            {**record.__dict__, **tag_columns(record.tags), "label": label, "first_segment_id": first, "n_segments": len(starts), "indexed_at": now}
            for record, first, starts, label in entries
        ]
        ids = list(session.scalars(insert(File).returning(File.id, sort_by_parameter_order=True), rows))
        segments = [
            {"id": first + j, "file_id": file_id, "start_s": float(t)}
            for file_id, (_, first, starts, _) in zip(ids, entries)
            for j, t in enumerate(starts)
        ]
        if segments:
            session.execute(insert(Segment), segments)
        return ids

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

    def list_files(self, under: str | None = None, *, limit: int = 100, offset: int = 0) -> tuple[int, list[File]]:
        """A page of the files (all, or those :meth:`files_under` ``under``) in path order, and how
        many there are in all: ``(total, files[offset : offset + limit])``."""
        where = []
        if under:
            folder = under.rstrip("/") + "/"
            where = [(File.path == under) | (func.substr(File.path, 1, len(folder)) == folder)]
        with self.Session() as s:
            total = s.scalar(select(func.count(File.id)).where(*where))
            rows = list(s.scalars(select(File).where(*where).order_by(File.path).limit(limit).offset(offset)))
        return int(total), rows

    def file_ids_where(self, clause, session: Session | None = None) -> np.ndarray:
        """Ids of the files meeting an SQLAlchemy condition on :class:`File` (a
        :meth:`search_engine.filters.Filter.clause`), sorted."""
        with self._maybe(session) as s:
            return np.array(s.scalars(select(File.id).where(clause).order_by(File.id)).all(), dtype=np.int64)

    def files_by_id(self, ids: Iterable[int], session: Session | None = None) -> dict[int, File]:
        ids = [int(i) for i in ids]
        with self._maybe(session) as s:
            return {f.id: f for f in s.scalars(select(File).where(File.id.in_(ids)))} if ids else {}

    def content_hashes(self, session: Session | None = None) -> set[str]:
        """The content hash of every indexed file."""
        with self._maybe(session) as s:
            return set(s.scalars(select(File.content_hash)))

    def files_by_hash(self, hashes: Iterable[str], session: Session | None = None) -> dict[str, list[File]]:
        """Files with each content hash (identical bytes), keyed by hash."""
        hashes = list(set(hashes))
        out: dict[str, list[File]] = {}
        with self._maybe(session) as s:
            for i in range(0, len(hashes), 500):
                for f in s.scalars(select(File).where(File.content_hash.in_(hashes[i : i + 500])).order_by(File.id)):
                    out.setdefault(f.content_hash, []).append(f)
        return out

    @staticmethod
    def update_file(session: Session, file_id: int, **values) -> None:
        """Change columns of one file row, e.g. ``path`` after a move (not committed)."""
        session.execute(update(File).where(File.id == file_id).values(**values))

    def labelled(self, session: Session | None = None) -> tuple[np.ndarray, list[str], list[str]]:
        """Every labelled file: ``(file ids, labels, paths)``."""
        with self._maybe(session) as s:
            rows = s.execute(select(File.id, File.label, File.path).where(File.label.is_not(None)).order_by(File.id)).all()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows], [r[2] for r in rows]

    def segment_starts(self, file: File, session: Session | None = None) -> np.ndarray:
        """Start times (s) of a file's segments, in segment order."""
        with self._maybe(session) as s:
            rows = s.scalars(select(Segment.start_s).where(Segment.file_id == file.id).order_by(Segment.id)).all()
        return np.array(rows, dtype=np.float64)

    def segment_ids(self, session: Session | None = None) -> np.ndarray:
        """Every segment id in the catalog, sorted."""
        with self._maybe(session) as s:
            return np.array(s.scalars(select(Segment.id).order_by(Segment.id)).all(), dtype=np.int64)

    def file_blocks(self, session: Session | None = None) -> FileBlocks:
        with self._maybe(session) as s:
            rows = s.execute(select(File.first_segment_id, File.n_segments, File.id).order_by(File.first_segment_id)).all()
        arr = np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, 3)  # tuples: numpy probes Row objects slowly
        return FileBlocks(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy())

    def snapshot(self) -> tuple[dict[str, Any], FileBlocks]:
        """The settings and the segment-to-file map, read in one transaction: one committed state."""
        with self.Session() as s:
            return self.settings(s), self.file_blocks(s)

    def counts(self) -> dict[str, float]:
        with self.Session() as s:
            n_files, hours, n_seg = s.execute(
                select(func.count(File.id), func.coalesce(func.sum(File.duration_s), 0.0) / 3600.0, func.coalesce(func.sum(File.n_segments), 0))
            ).one()
        return {"files": int(n_files), "hours": float(hours), "segments": int(n_seg)}

    def _maybe(self, session: Session | None):
        from contextlib import nullcontext

        return nullcontext(session) if session is not None else self.Session()
