"""The Indexer: add files and folders to a SearchEngine, incrementally and in atomic batches."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from search_engine.audio import find_audio_files, probe
from search_engine.catalog import File, FileRecord, path_key
from search_engine.engine import IndexedFile, SearchEngine
from search_engine.errors import Audio2VecError, DecodeError, result_or_raise
from search_engine.progress import OnProgress

from .filestate import content_hash
from .prepare import Prepared, prepare


#: a run over at least this many files, or this many bytes, decodes in ``workers`` processes
MIN_FILES_FOR_PROCESSES = 32
MIN_BYTES_FOR_PROCESSES = 32 * 2**20
#: seconds between a decoding worker's checks that the indexing process still exists
WATCHDOG_S = 1.0
#: files larger than this are checked by a decoder before they are hashed
PROBE_DECODERS_ABOVE_BYTES = 4 * 2**20


@dataclass
class IndexReport:
    """What one :meth:`Indexer.add` run did.

    ``added``/``updated`` files were decoded and embedded; ``copied`` ones have the same bytes as
    an indexed file and reuse its vectors; ``moved`` ones are indexed files found under a new path
    (only the row changed); ``missing`` indexed files under the given folders no longer exist
    (``pruned`` when ``prune=True`` removed them).
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    copied: int = 0
    pruned: int = 0
    missing: int = 0
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
            "moved": self.moved,
            "copied": self.copied,
            "pruned": self.pruned,
            "missing": self.missing,
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
    workers : int, optional
        Processes that decode files and compute their spectrograms while this one runs the encoder
        (1: all in this process; 0: one per core). Default: ``workers`` in the engine's settings
        (one per core). A run over few small files decodes in this process whatever the number.
    client : dask.distributed.Client, optional
        Decode and embed on the cluster's workers instead (they need audio2vec installed and the
        files at the same paths); rows and vectors are still stored here, in the same batches.
    on_error : callable(path, message), optional
        Called once per file that cannot be indexed (default: one line on stderr).
    """

    def __init__(
        self,
        engine: SearchEngine,
        *,
        workers: int | None = None,
        client=None,
        on_error: Callable[[str, str], None] | None = None,
    ):
        self.engine = engine
        workers = engine.settings.workers if workers is None else int(workers)
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self.client = client
        self.on_error = on_error

    def add(self, paths: Iterable[str | os.PathLike], *, prune: bool = False, on_progress: OnProgress | None = None) -> IndexReport:
        """Index files and folders (recursively), incrementally.

        A file with the size and mtime it had when indexed is skipped without being read; one with
        new size or mtime but the same content hash keeps its vectors (only its row is updated); a
        new path whose bytes an indexed file already has reuses that file's vectors, and if that
        file's old path is gone it is treated as moved. Anything else is decoded and embedded.
        With ``prune``, indexed files under the given folders that no longer exist are removed.

        Holds the index's writer lock for the whole run; rows and vectors are committed every
        ``settings.commit_every_files`` changed files, so an interrupted run keeps what it
        committed and the next run does only the rest. ``on_progress(done, total, path)`` is called
        as files are taken up and finished (:mod:`search_engine.progress`).
        """
        report = IndexReport()
        t0 = time.perf_counter()
        self._digests: set[str] | None = None  # content hashes committed before this run (see _twin)
        paths = [Path(p) for p in paths]
        engine = self.engine
        with engine.writing():
            files = list(dict.fromkeys(find_audio_files(paths)))
            keys = [path_key(p) for p in files]
            known = engine.catalog.files_by_path(k for k in keys if _storable(k))
            batch = _Batch()
            moved: set[int] = set()  # ids of indexed files found under a new path in this run
            every = engine.settings.commit_every_files
            done = 0

            def progress(path: Path, finished: int = 0) -> None:
                nonlocal done
                done += finished
                if on_progress is not None:
                    on_progress(done, len(files), str(path))

            def jobs():
                """Files that need decoding, found lazily: moves, copies and unchanged files go
                in the batch as they are found, while earlier jobs decode in the workers."""
                for path, key in zip(files, keys):
                    progress(path)
                    job = self._guarded(report, path, lambda: self._one(path, key, known.get(key), batch, moved, report))
                    if job is not None:
                        yield job
                    else:
                        progress(path, 1)
                    if len(batch) >= every:
                        batch.commit(engine)

            group: list[tuple[_Job, Prepared]] = []  # decoded, waiting to share encoder calls

            def store(job: _Job, result) -> None:
                item = self._guarded(report, job.path, lambda: result_or_raise(result))
                progress(job.path, 1)
                if item is None:
                    return
                if job.old is not None:
                    batch.replace.append(job.old)
                    report.updated += 1
                else:
                    report.added += 1
                batch.add(item, report)
                if self._digests is not None:  # a later copy in this run finds it once committed
                    self._digests.add(item.record.content_hash)
                if len(batch) >= every:
                    batch.commit(engine)

            def embed_group() -> None:
                for (job, _), result in zip(group, self._embedded(group)):
                    store(job, result)
                group.clear()

            # files are embedded in groups of about one encoder batch of segments: many short
            # files share each encoder call; a long file is a group of its own
            group_frames = engine.settings.batch_size * engine.segment_hop_frames
            for job, prep in self._prepared(jobs(), processes=self._processes(files)):
                progress(job.path)
                if not isinstance(prep, Prepared) or prep.vectors is not None:  # an error, or embedded on a cluster
                    store(job, prep if not isinstance(prep, Prepared) else IndexedFile(self._record(job, prep), prep.vectors, prep.starts_s, prep.whole))
                    continue
                group.append((job, prep))
                if sum(len(p.mel) for _, p in group) >= group_frames or len(group) >= every:
                    embed_group()
            embed_group()
            gone = self._vanished(paths, set(keys), moved)
            report.missing = len(gone)
            if prune:
                batch.replace += gone
                report.pruned = len(gone)
            batch.commit(engine)
        report.seconds = time.perf_counter() - t0
        return report

    def _one(self, path: Path, key: str, old: File | None, batch: "_Batch", moved: set[int], report: IndexReport) -> "_Job | None":
        """Decide what one file needs: put it in the batch, or return the job of embedding it."""
        st = os.stat(path)
        if old is not None and (old.size_bytes, old.mtime_ns) == (st.st_size, st.st_mtime_ns):
            report.unchanged += 1
            return
        # refuses FIFOs, devices, broken WAV headers and non-UTF-8 names before hashing, and for a
        # large file whatever no decoder reads (hashing 2 GiB of junk); a small file's format is
        # checked when it is decoded, in a worker: one open less here for each one-shot
        probe(path, decoders=st.st_size > PROBE_DECODERS_ABOVE_BYTES)
        digest = content_hash(path)
        stamp = {"size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        if old is not None and old.content_hash == digest:  # touched, not changed
            batch.update.append((old.id, stamp))
            report.unchanged += 1
            return
        twin = None if old is not None else self._twin(digest, moved)
        if twin is not None and twin.id not in moved and not os.path.lexists(twin.path):
            moved.add(twin.id)
            batch.update.append((twin.id, {"path": key, **stamp}))
            report.moved += 1
            return
        if twin is None:
            return _Job(path, key, st, digest, old)  # decoded and embedded in the second pass
        item = self._copy(twin, key, st)
        report.copied += 1
        batch.add(item, report)

    def _twin(self, digest: str, moved: set[int]) -> File | None:
        """An indexed file with these exact bytes (preferring one whose path is gone), or None.

        The run's first call reads every indexed content hash at once (one query, not one per
        new file: one-shot libraries add thousands of files a run)."""
        if self._digests is None:
            self._digests = self.engine.catalog.content_hashes()
        if digest not in self._digests:
            return None
        twins = self.engine.catalog.files_by_hash([digest]).get(digest, [])
        return next((f for f in twins if f.id not in moved and not os.path.lexists(f.path)), twins[0] if twins else None)

    def _vanished(self, paths: list[Path], seen: set[str], moved: set[int]) -> list[File]:
        """Indexed files under the given folders whose path no longer exists."""
        out: dict[int, File] = {}
        for p in paths:
            if p.is_dir():
                for f in self.engine.catalog.files_under(path_key(p)):
                    if f.path not in seen and f.id not in moved and not os.path.lexists(f.path):
                        out[f.id] = f
        return list(out.values())

    def _copy(self, twin: File, key: str, st: os.stat_result) -> IndexedFile:
        """The vectors of an indexed file with the same bytes, under a new path (no decoding)."""
        engine = self.engine
        vectors = engine.segment_vectors(twin.first_segment_id + np.arange(twin.n_segments, dtype=np.int64))
        record = FileRecord(
            path=key,
            size_bytes=st.st_size,
            mtime_ns=st.st_mtime_ns,
            content_hash=twin.content_hash,
            duration_s=twin.duration_s,
            sample_rate_hz=twin.sample_rate_hz,
            channels=twin.channels,
            tags=dict(twin.tags),
        )
        whole = engine.wholes.reconstruct([twin.id])[0]
        return IndexedFile(record, vectors, engine.catalog.segment_starts(twin), whole)

    def _processes(self, files: list[Path]) -> int:
        """Decoding processes for a run over ``files``: ``workers``, or 1 (decode here) when the
        files are too few and small to pay for starting them (about a second)."""
        if self.workers <= 1 or len(files) >= MIN_FILES_FOR_PROCESSES:
            return self.workers
        size = 0
        for f in files:
            try:
                size += os.stat(f).st_size
            except OSError:
                continue
        return self.workers if size >= MIN_BYTES_FOR_PROCESSES else 1

    def _prepared(self, jobs: Iterator["_Job"], *, processes: int):
        """``(job, Prepared or the error)`` in job order; with ``processes > 1`` decoding runs in
        that many processes, a few files ahead of the encoder (no process starts when there is no
        job)."""
        features = self.engine.encoder.features
        first = next(jobs, None)
        if first is None:
            return
        jobs = itertools.chain([first], jobs)
        if self.client is not None:
            yield from self._on_cluster(jobs)
            return
        if processes <= 1:
            for job in jobs:
                try:
                    yield job, prepare(job.path, features)
                except (Audio2VecError, OSError) as exc:
                    yield job, exc
            return
        import multiprocessing
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: workers never inherit TensorFlow's threads from this process; they fork from
        # a server that has already imported the decoding code
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["indexer.worker"])
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
            ahead = deque((job, pool.submit(prepare, job.path, features)) for job in itertools.islice(jobs, 2 * processes))
            while ahead:
                job, future = ahead.popleft()
                nxt = next(jobs, None)
                if nxt is not None:
                    ahead.append((nxt, pool.submit(prepare, nxt.path, features)))
                try:
                    yield job, future.result()
                except (Audio2VecError, OSError) as exc:
                    yield job, exc

    def _on_cluster(self, jobs: Iterator["_Job"]):
        """Like :meth:`_prepared`, on a Dask cluster: the workers embed too; results in job order."""
        from collections import deque

        from .prepare import embed_file

        engine = self.engine
        # bundled names, or folders every worker can read; the match model's own similar model
        # (one, or an ensemble) is named by the match model, whose Encoder.whole uses it
        whole = engine.whole_encoder
        whole_model = None if whole is None else engine.model if whole is engine.encoder.similar else whole.name
        args = (engine.model, whole_model, engine.segment_hop_frames, engine.settings.batch_size)
        ahead_n = 4 * max(1, len(self.client.scheduler_info().get("workers", {})))

        def submit(job):
            return job, self.client.submit(embed_file, str(job.path), *args, pure=False)

        ahead = deque(submit(job) for job in itertools.islice(jobs, ahead_n))
        while ahead:
            job, future = ahead.popleft()
            nxt = next(jobs, None)
            if nxt is not None:
                ahead.append(submit(nxt))
            try:
                yield job, future.result()
            except (Audio2VecError, OSError) as exc:
                yield job, exc

    def _embedded(self, group: list[tuple["_Job", Prepared]]) -> list:
        """The :class:`IndexedFile` of each decoded file of a group, or the error that refuses it;
        the group's windows share encoder calls."""
        engine = self.engine
        mels = [prep.mel for _, prep in group]
        sources = [job.path for job, _ in group]
        out = engine.encoder.embed_spectrograms(
            mels, hop_frames=engine.segment_hop_frames, durations_s=[prep.duration_s for _, prep in group],
            batch_size=engine.settings.batch_size, sources=sources,
        )
        ok = [i for i, e in enumerate(out) if not isinstance(e, BaseException)]
        wholes = engine.whole_vectors([mels[i] for i in ok], [out[i].vectors for i in ok], sources=[sources[i] for i in ok])
        for i, whole in zip(ok, wholes):
            e = out[i]
            out[i] = whole if isinstance(whole, BaseException) else IndexedFile(self._record(*group[i]), e.vectors, e.starts_s, whole)
        return out

    @staticmethod
    def _record(job: "_Job", prep: Prepared) -> FileRecord:
        return FileRecord(
            path=job.key,
            size_bytes=job.st.st_size,
            mtime_ns=job.st.st_mtime_ns,
            content_hash=job.digest,
            duration_s=prep.duration_s,
            sample_rate_hz=prep.sample_rate_hz,
            channels=prep.channels,
            tags=prep.tags,
        )

    def _guarded(self, report: IndexReport, path: Path, work):
        """``work()``, or None after reporting the file when it raises a per-file error."""
        try:
            return work()
        except Audio2VecError as exc:
            self._fail(report, path, exc if isinstance(exc, DecodeError) else DecodeError(path, str(exc)))
        except OSError as exc:
            self._fail(report, path, DecodeError(path, f"cannot read: {exc.strerror or exc}"))
        return None

    def _fail(self, report: IndexReport, path: Path, exc: DecodeError) -> None:
        report.failed.append((str(path), exc.reason))
        if self.on_error is not None:
            self.on_error(str(path), str(exc))


@dataclass
class _Job:
    """A file to decode and embed."""

    path: Path
    key: str
    st: os.stat_result
    digest: str
    old: File | None


def _worker_init(indexer_pid: int) -> None:
    """Worker initializer: one BLAS thread per worker process (the workers already use every core;
    OpenBLAS's own threads would only spin against each other: indexing ran 1.6x slower), and a
    watchdog that ends the worker when the indexing process is gone. After a ``kill -9`` of the
    indexer nothing else would: the workers hold each other's queue pipes open, and they keep
    their forkserver alive."""
    import threading

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            try:
                os.kill(indexer_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, another user's (cannot happen for our own parent)
                pass

    threading.Thread(target=watch, name="audio2vec-watchdog", daemon=True).start()


@dataclass
class _Batch:
    """Changes waiting for the next commit."""

    items: list[IndexedFile] = field(default_factory=list)
    replace: list[File] = field(default_factory=list)
    update: list[tuple[int, dict]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items) + len(self.replace) + len(self.update)

    def add(self, item: IndexedFile, report: IndexReport) -> None:
        self.items.append(item)
        report.audio_s += item.record.duration_s

    def commit(self, engine: SearchEngine) -> None:
        engine.add(self.items, replace=self.replace, update=self.update)
        self.items, self.replace, self.update = [], [], []


def _storable(key: str) -> bool:
    """Whether the catalog can hold this path (a name that is not valid UTF-8 cannot be stored)."""
    try:
        key.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False

