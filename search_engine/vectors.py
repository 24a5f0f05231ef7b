"""The FAISS vector index: built from an ``index_factory`` string, L2 metric, 64-bit ids.

Ids are the catalog's segment (or file) ids. The index is saved atomically: written to a temporary
file in the same folder, flushed, then renamed over the old one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import faiss
import numpy as np

from .errors import ParameterError


class VectorIndex:
    """A FAISS index with ids, kept in memory and saved to one file."""

    def __init__(self, index: faiss.Index, factory: str):
        self.index = index
        self.factory = factory

    @classmethod
    def create(cls, dim: int, factory: str) -> "VectorIndex":
        """New empty index. ``factory`` is a FAISS ``index_factory`` string, e.g. ``"IDMap2,Flat"``.

        Factories without an id map of their own (``"Flat"``, ``"HNSW32"``) are wrapped in
        ``IndexIDMap2`` so that every index stores the catalog's ids.
        """
        try:
            index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
        except RuntimeError as exc:
            raise ParameterError(f"bad FAISS index_factory string {factory!r}: {str(exc).splitlines()[0]}") from exc
        if not isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexIVF)):
            index = faiss.IndexIDMap2(index)
        return cls(index, factory)

    @classmethod
    def load(cls, path: Path, factory: str) -> "VectorIndex":
        return cls(faiss.read_index(str(path)), factory)

    def save(self, path: Path) -> None:
        """Write atomically: temp file in the same folder, fsync, rename."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            faiss.write_index(self.index, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @property
    def dim(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    @property
    def needs_training(self) -> bool:
        return not self.index.is_trained

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add ``vectors [n, dim]`` under ``ids [n]`` (int64)."""
        if len(ids) == 0:
            return
        if self.needs_training:
            raise ParameterError(
                f"FAISS index {self.factory!r} needs training before vectors can be added; "
                "use a flat index or train it on a sample first"
            )
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed."""
        if len(ids) == 0:
            return 0
        try:
            return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))
        except RuntimeError as exc:
            raise ParameterError(
                f"FAISS index {self.factory!r} cannot remove vectors; use a flat or IVF index_factory"
            ) from exc

    def ids(self) -> np.ndarray:
        """All ids in the index (int64)."""
        idx = self.index
        if isinstance(idx, (faiss.IndexIDMap, faiss.IndexIDMap2)):
            return faiss.vector_to_array(idx.id_map).astype(np.int64)
        inv = faiss.extract_index_ivf(idx).invlists
        return np.concatenate(
            [faiss.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy() for i in range(inv.nlist)]
            or [np.empty(0, np.int64)]
        )

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest by L2: ``(distances [n, k], ids [n, k])``; distances are Euclidean (not squared);
        missing neighbours have id ``-1``."""
        k = max(1, min(k, len(self)))
        d2, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.sqrt(np.maximum(d2, 0.0)), ids

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids [n]`` -> ``[n, dim]`` (exact for flat indexes)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_batch(ids)
