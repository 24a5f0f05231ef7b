"""The Indexer: add files and folders to a SearchEngine, incrementally and in atomic batches."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from search_engine.audio import find_audio_files, load
from search_engine.catalog import FileRecord
from search_engine.engine import IndexedFile, SearchEngine
from search_engine.errors import Audio2VecError, DecodeError

from .filestate import channels_and_rate, content_hash, read_tags, resolved


@dataclass
class IndexReport:
    """What one :meth:`Indexer.add` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    audio_s: float = 0.0
    seconds: float = 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio indexed per second of wall time."""
        return self.audio_s / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": len(self.failed),
            "audio_hours": round(self.audio_s / 3600, 4),
            "seconds": round(self.seconds, 3),
            "realtime_factor": round(self.realtime_factor, 1),
            "errors": [{"path": p, "error": e} for p, e in self.failed],
        }


class Indexer:
    """Adds audio to an engine's index.

    Parameters
    ----------
    engine : SearchEngine
    on_error : callable(path, message), optional
        Called once per file that cannot be indexed (default: one line on stderr).
    """

    def __init__(self, engine: SearchEngine, *, on_error: Callable[[str, str], None] | None = None):
        self.engine = engine
        self.on_error = on_error or (lambda path, msg: print(f"error: {msg}", file=sys.stderr))

    def add(self, paths: Iterable[str | os.PathLike], *, show_progress_bar: bool | None = None) -> IndexReport:
        """Index files and folders (recursively). Unchanged files (same size and mtime) are skipped;
        changed ones are re-embedded. Rows and vectors are committed every
        ``settings.commit_every_files`` files, so an interrupted run keeps what it committed.
        """
        report = IndexReport()
        t0 = time.perf_counter()
        files = list(dict.fromkeys(find_audio_files(paths)))
        known = self.engine.catalog.files_by_path(resolved(p) for p in files)
        pending: list[IndexedFile] = []
        replaced = []
        every = self.engine.settings.commit_every_files

        def commit():
            self.engine.add(pending, replace=replaced)
            pending.clear()
            replaced.clear()

        with _progress(show_progress_bar) as progress:
            task = progress.add_task("indexing", total=len(files))
            for path in files:
                progress.update(task, description=_short_name(path))
                key = resolved(path)
                old = known.get(key)
                try:
                    st = os.stat(path)
                    if old is not None and old.size_bytes == st.st_size and old.mtime_ns == st.st_mtime_ns:
                        report.unchanged += 1
                        continue
                    item = self._embed(path, key, st)
                except Audio2VecError as exc:
                    self._fail(report, path, exc if isinstance(exc, DecodeError) else DecodeError(path, str(exc)))
                    continue
                except OSError as exc:
                    self._fail(report, path, DecodeError(path, f"cannot read: {exc.strerror or exc}"))
                    continue
                finally:
                    progress.advance(task)
                pending.append(item)
                if old is not None:
                    replaced.append(old)
                    report.updated += 1
                else:
                    report.added += 1
                report.audio_s += item.record.duration_s
                if len(pending) >= every:
                    commit()
            commit()
        report.seconds = time.perf_counter() - t0
        return report

    def _embed(self, path: Path, key: str, st: os.stat_result) -> IndexedFile:
        engine = self.engine
        y, sr = load(path, sr=engine.sample_rate_hz)
        vectors, starts = engine.embed(y, source=path)
        channels, native_sr = channels_and_rate(path)
        record = FileRecord(
            path=key,
            size_bytes=st.st_size,
            mtime_ns=st.st_mtime_ns,
            content_hash=content_hash(path),
            duration_s=len(y) / sr,
            sample_rate_hz=native_sr,
            channels=channels,
            tags=read_tags(path),
        )
        return IndexedFile(record, vectors, starts)

    def _fail(self, report: IndexReport, path: Path, exc: DecodeError) -> None:
        report.failed.append((str(path), exc.reason))
        self.on_error(str(path), str(exc))


def _short_name(path: Path, width: int = 40) -> str:
    name = path.name
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _progress(show: bool | None):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    disable = (not console.is_terminal) if show is None else not show
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )
