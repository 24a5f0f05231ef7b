"""The committed state of an index on disk: generations of vector files, the writer lock, writes.

A write saves the new generation's vector files first, then commits the catalog rows together with
the new generation number, then deletes the old files; a crash at any point leaves the last
committed generation intact. Readers read the generation and the rows in one transaction and then
load that generation's files (:meth:`Generations.refresh`).
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .catalog import Catalog, File, FileRecord, path_key
from .errors import IndexLockedError, IndexMismatchError, ParameterError

_VECTOR_FILE = re.compile(r"^(segments|files)\.(\d+)\.faiss$")
#: the exact segment vectors (see :class:`~search_engine.vectors.VectorStore`)
STORE_FILE = "segments.vectors"


@dataclass
class IndexedFile:
    """A decoded and embedded file, ready to be stored by :meth:`Generations.add`."""

    record: FileRecord
    vectors: np.ndarray  # [n, dim]
    starts_s: np.ndarray  # [n]
    whole: np.ndarray  # [dim]: the whole-sound vector (``similar`` space), :meth:`SearchEngine.whole`


class Generations:
    """Part of :class:`~search_engine.engine.SearchEngine`: reading the newest committed state and
    writing the next one (``add``, ``remove``, ``label``) under the writer lock."""

    @property
    def blocks(self):
        """Which segment ids belong to which file (:class:`~search_engine.catalog.FileBlocks`), as
        of the generation this engine holds."""
        if self._blocks is None:
            self._blocks = self.catalog.file_blocks()
        return self._blocks

    def _vector_path(self, kind: str, generation: int) -> Path:
        return self.dir / f"{kind}.{generation}.faiss"

    def refresh(self) -> bool:
        """Catch up with the last committed state (another process may have written since).

        Cheap when nothing changed (one small SELECT); every query calls it. Returns True if the
        index moved to a newer generation.
        """
        if self.catalog.generation() == self.generation:
            return False
        for _ in range(10):
            stored, blocks = self.catalog.snapshot()
            gen = int(stored["generation"])
            try:
                segments = self._load_vectors("segments", gen, active_factory(stored))
                wholes = self._load_vectors("files", gen, self._factories[1])
            except FileNotFoundError:
                continue  # a writer committed a newer generation and deleted this one meanwhile: read again
            self.generation, self.segments, self.wholes, self._blocks = gen, segments, wholes, blocks
            self._exact = self.store.map(int(stored["next_segment_id"]))
            return True
        shared = (f"; the catalog {self.catalog.url} is not in that folder: --index must name the folder its writer "
                  "keeps the vector files in (shared by every host)") if self.settings.catalog_url else ""
        raise IndexMismatchError(f"index at {self.dir} is damaged: {self._vector_path('segments', gen).name} is missing{shared}")

    def _load_vectors(self, kind: str, generation: int, factory: str):
        from .vectors import VectorIndex

        path = self._vector_path(kind, generation)
        if generation == 0:
            return VectorIndex.create(self.encoder.dim if kind == "segments" else self.whole_dim, factory)
        try:
            return VectorIndex.load(path, factory, nprobe=self.settings.nprobe)
        except RuntimeError as exc:
            if not path.exists():
                raise FileNotFoundError(path) from exc
            raise IndexMismatchError(f"index at {self.dir} is damaged: cannot read {path.name}: {str(exc).splitlines()[0]}") from exc

    @contextmanager
    def writing(self):
        """Hold the index's writer lock (re-entrant) and start from the newest committed state.

        Raises :class:`IndexLockedError` at once if another process holds it. Queries never need it.
        """
        with holding(self._lock, self.dir):
            self.refresh()
            yield self

    def add(
        self,
        items: Sequence[IndexedFile] = (),
        *,
        replace: Iterable[File] = (),
        update: Iterable[tuple[int, dict]] = (),
    ) -> list[int]:
        """Store embedded files, drop the rows and vectors of ``replace``, and change the rows of
        ``update`` (``(file_id, {column: value})``, e.g. a moved file's new path) in one atomic step.

        Takes the writer lock for the step. Returns the new file ids.
        """
        items, replace, update = list(items), list(replace), list(update)
        with self.writing():
            if not items and not replace:
                if update:  # rows only: the vectors, and so the generation, stay as they are
                    with self.catalog.Session.begin() as s:
                        for file_id, values in update:
                            Catalog.update_file(s, file_id, **values)
                return []
            return self._write_generation(items, replace, update)

    def _write_generation(self, items: list[IndexedFile], replace: list[File], update: list[tuple[int, dict]]) -> list[int]:
        new_gen = self.generation + 1
        removed = removed_ids(replace)
        try:
            with self.catalog.Session.begin() as s:
                stored = self.catalog.settings(s)
                next_id = first_new = int(stored["next_segment_id"])
                self._complete_store(next_id)
                labels = {f.path: f.label for f in replace if f.label is not None}  # survive re-embedding
                Catalog.delete_files(s, replace)
                for file_id, values in update:
                    Catalog.update_file(s, file_id, **values)
                firsts = next_id + np.cumsum([0] + [len(it.vectors) for it in items])
                file_ids = Catalog.add_files(s, [(it.record, int(first), it.starts_s, labels.get(it.record.path)) for it, first in zip(items, firsts)])
                if items:
                    self.segments.add(np.concatenate([it.vectors for it in items]), np.arange(next_id, firsts[-1], dtype=np.int64))
                    self.wholes.add(np.stack([it.whole for it in items]), np.array(file_ids, dtype=np.int64))
                next_id = int(firsts[-1])
                self.segments.remove(removed[0])
                self.wholes.remove(removed[1])
                if items:  # exact rows first: the commit below is what makes them visible
                    self.store.write(first_new, np.concatenate([it.vectors for it in items]))
                    self.store.map(next_id)
                rebuilt = self._rebuild_if_due(stored)
                self._save_vectors(new_gen)
                Catalog.put_settings(s, {"generation": new_gen, "next_segment_id": next_id, **rebuilt})
        except BaseException:
            # the catalog rolled back and still names the old generation: go back to its vector files
            for kind in ("segments", "files"):
                self._vector_path(kind, new_gen).unlink(missing_ok=True)
            self.generation = -1
            self.refresh()
            raise
        self.generation = new_gen
        self._delete_stale_vectors()
        self._blocks = None  # read again when a query needs it, not after every commit of a run
        return file_ids

    def label(self, paths: Iterable[str | os.PathLike], label: str | None) -> list[str]:
        """Give indexed files (or every file under a folder) a label, or clear it with ``None``.

        Returns the paths labelled. Labels stay with a file when it is re-embedded or moved.
        """
        with self.writing():
            files = self._files(paths)
            self.add(update=[(f.id, {"label": label}) for f in files.values()])
        return sorted(f.path for f in files.values())

    def indexed_files(self, path: str | os.PathLike) -> list[File]:
        """The indexed files ``path`` names: that file, or every file under that folder ([] if none)."""
        return self.catalog.files_under(path_key(path)) or self.catalog.files_under(str(path))

    def _files(self, paths: Iterable[str | os.PathLike]) -> dict[int, File]:
        return {f.id: f for p in paths for f in self.indexed_files(p)}

    def remove(self, paths: Iterable[str | os.PathLike]) -> list[str]:
        """Remove files (or every file under a folder) from the index; returns the removed paths."""
        with self.writing():
            files = self._files(paths)
            self.add([], replace=files.values())
        return sorted(f.path for f in files.values())

    def _complete_store(self, next_id: int) -> None:
        """Writer: make sure the exact store holds every committed segment (an index made before
        the store existed gets it from its flat FAISS index, once)."""
        if self.store.map(next_id):
            return
        ids = self.segments.ids()
        full = np.zeros((next_id, self.encoder.dim), dtype=np.float32)
        if len(ids):
            full[ids] = self.segments.reconstruct(ids)
        self.store.write(0, full)
        self._exact = self.store.map(next_id)

    def _rebuild_if_due(self, stored: dict) -> dict:
        """Writer: switch the segment index to the type the library's size calls for, or retrain it
        after the library has grown ``retrain_growth`` times; returns the settings to store."""
        from .vectors import VectorIndex, choose_factory

        active = active_factory(stored)
        trained_on = int(stored.get("index_trained_on", 0))
        target = choose_factory(len(self.segments), self.settings, active=active, trained_on=trained_on)
        if target is None:
            return {}
        ids = np.sort(self.segments.ids())
        try:
            self.segments = VectorIndex.build(self.encoder.dim, target, ids, self.store.__getitem__, nprobe=self.settings.nprobe)
        except (RuntimeError, ParameterError) as exc:  # e.g. too few vectors to train it: keep the index that works
            warnings.warn(f"kept the {active} index: cannot build {target!r} from {len(ids)} vectors ({str(exc).splitlines()[0]})", stacklevel=2)
            return {}
        return {"active_index_factory": target, "index_trained_on": len(ids)}

    def segment_vectors(self, ids) -> np.ndarray:
        """Exact vectors of segment ids ``[n]`` -> ``[n, dim]`` (from the store; from FAISS for an
        index written before the store existed)."""
        ids = np.asarray(ids, dtype=np.int64)
        return self.store[ids] if self._exact else self.segments.reconstruct(ids)

    def _save_vectors(self, generation: int) -> None:
        self.segments.save(self._vector_path("segments", generation))
        self.wholes.save(self._vector_path("files", generation))

    def _delete_stale_vectors(self) -> None:
        """Delete other generations' vector files and temporary files left by a crash (writer only)."""
        for p in self.dir.iterdir():
            m = _VECTOR_FILE.match(p.name)
            if (m and int(m.group(2)) != self.generation) or (".faiss." in p.name and p.name.endswith(".tmp")):
                p.unlink(missing_ok=True)


@contextmanager
def holding(lock, folder: Path):
    """Acquire a writer lock (filelock) without waiting; another holder is an :class:`IndexLockedError`."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise IndexLockedError(
            f"index at {folder} is being written by another process (it holds {lock.lock_file}); "
            "wait until it finishes and run this again. Queries work meanwhile."
        ) from None
    try:
        yield
    finally:
        lock.release()


def active_factory(stored: dict) -> str:
    """The index_factory of the committed segment index (it changes with the library's size)."""
    return stored.get("active_index_factory", stored["index_factory"])


def removed_ids(files: list[File]) -> tuple[np.ndarray, np.ndarray]:
    seg = [f.first_segment_id + np.arange(f.n_segments, dtype=np.int64) for f in files]
    return (
        np.concatenate(seg) if seg else np.empty(0, np.int64),
        np.array([f.id for f in files], dtype=np.int64),
    )
