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
    def load(cls, path: Path, factory: str, *, nprobe: int | None = None) -> "VectorIndex":
        """Read an index written by :meth:`save`; ``nprobe`` applies to IVF indexes."""
        out = cls(faiss.read_index(str(path)), factory)
        out.set_nprobe(nprobe)
        return out

    @classmethod
    def build(cls, dim: int, factory: str, ids: np.ndarray, rows, *, nprobe: int | None = None,
              train_size: int = 256 * 1024, chunk: int = 65536, seed: int = 0) -> "VectorIndex":
        """A new index of ``factory`` holding ``rows(ids)`` (exact vectors) under ``ids``.

        An index that needs training (IVF, PQ) is trained first on a random sample of at most
        ``train_size`` of these vectors: the library's own. Vectors are read ``chunk`` at a time.
        """
        out = cls.create(dim, factory)
        ids = np.asarray(ids, dtype=np.int64)
        if out.needs_training:
            sample = np.sort(np.random.default_rng(seed).choice(ids, size=min(len(ids), train_size), replace=False))
            out.index.train(np.ascontiguousarray(rows(sample), dtype=np.float32))
        for i in range(0, len(ids), chunk):
            out.add(rows(ids[i : i + chunk]), ids[i : i + chunk])
        out.set_nprobe(nprobe)
        return out

    def set_nprobe(self, nprobe: int | None) -> None:
        """Inverted lists visited per query vector (IVF indexes; ignored by others)."""
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is not None and nprobe:
            ivf.nprobe = min(int(nprobe), ivf.nlist)

    @property
    def _inner(self) -> faiss.Index:
        """The index inside the id map (or the index itself)."""
        wrapped = isinstance(self.index, (faiss.IndexIDMap, faiss.IndexIDMap2))
        return faiss.downcast_index(self.index.index) if wrapped else self.index

    @property
    def is_flat(self) -> bool:
        """Whether vectors are stored exactly (a flat index: ``reconstruct`` returns them as added)."""
        return isinstance(self._inner, faiss.IndexFlat)

    def describe(self) -> dict:
        """Type, size and memory of the index, for ``stats``."""
        out = {"type": type(self._inner).__name__, "vectors": len(self), "exact": self.is_flat}
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is not None:
            out.update(nlist=int(ivf.nlist), nprobe=int(ivf.nprobe), code_bytes=int(ivf.code_size))
        return out

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

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """k nearest by L2: ``(distances [n, k], ids [n, k])``; distances are Euclidean (not squared);
        missing neighbours have id ``-1``.

        ``allowed``: boolean mask over ids (id ``i`` may be returned where ``allowed[i]``; ids past
        its end may not; a missing neighbour has distance ``inf``). FAISS searches with it as an id
        selector (a bitmap), so each query gets ``min(k, allowed ids)`` neighbours: an IVF index
        whose probed lists hold too few allowed vectors is searched again over all its lists, and
        for an index whose selector search stops early (HNSW) the allowed vectors are compared with
        the queries one by one.
        """
        k = max(1, min(k, len(self)))
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            d2, ids = self.index.search(q, k)
            return np.sqrt(np.maximum(d2, 0.0)), ids
        allowed = np.asarray(allowed, dtype=bool)
        want = min(k, int(np.count_nonzero(allowed)))
        if want == 0 or len(q) == 0:
            return np.full((len(q), k), np.inf, dtype=np.float32), np.full((len(q), k), -1, dtype=np.int64)
        d2, ids = self._search_selected(q, k, allowed)
        short = (ids >= 0).sum(axis=1) < want
        ivf = faiss.try_extract_index_ivf(self.index)
        if short.any() and ivf is not None and ivf.nprobe < ivf.nlist:
            d2[short], ids[short] = self._search_selected(q[short], k, allowed, nprobe=ivf.nlist)
            short = (ids >= 0).sum(axis=1) < want
        if short.any():
            d2[short], ids[short] = self._search_exact(q[short], k, allowed)
        return np.where(ids >= 0, np.sqrt(np.maximum(d2, 0.0)), np.inf).astype(np.float32), ids

    def _search_selected(self, q: np.ndarray, k: int, allowed: np.ndarray, *, nprobe: int | None = None):
        bitmap = np.packbits(allowed, bitorder="little")  # bit i of byte i >> 3 is id i, as FAISS reads it
        sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        if isinstance(self.index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or self.index.nprobe)
        else:
            params = faiss.SearchParameters(sel=sel)
        d2, ids = self.index.search(q, k, params=params)
        del bitmap  # FAISS read it through the selector until here
        return d2, ids

    def _search_exact(self, q: np.ndarray, k: int, allowed: np.ndarray):
        """Last resort, for an index whose selector search stops early (a graph: HNSW): squared
        distances to every allowed vector it holds (reconstructed), the ``k`` nearest."""
        held = self.ids()
        held = held[(held < len(allowed)) & allowed[np.clip(held, 0, len(allowed) - 1)]]
        v = self.reconstruct(held).astype(np.float64)
        qq = q.astype(np.float64)
        d2 = np.maximum((qq**2).sum(1)[:, None] + (v**2).sum(1)[None, :] - 2 * qq @ v.T, 0.0)
        n = min(k, len(held))
        order = np.argsort(d2, axis=1, kind="stable")[:, :n]
        out_d = np.full((len(q), k), np.inf, dtype=np.float32)
        out_i = np.full((len(q), k), -1, dtype=np.int64)
        out_d[:, :n], out_i[:, :n] = np.take_along_axis(d2, order, axis=1), held[order]
        return out_d, out_i

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids [n]`` -> ``[n, dim]`` (exact for flat indexes)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_batch(ids)


class VectorStore:
    """Exact segment vectors on disk: row ``i`` of a float32 file is the vector of segment id ``i``.

    Append-only: a writer appends the rows of new ids (ids are handed out in increasing order) and
    fsyncs them *before* the catalog commit that makes them visible; rows past the committed
    ``next_segment_id`` are leftovers of an interrupted writer and are cut off by the next one.
    Removed segments leave their rows behind (they are never read again). Readers map the
    committed prefix read-only, so RAM holds only the pages a query touches.

    Compressed FAISS indexes (IVF-PQ) find candidates; these rows score them exactly and retrain
    the index when the library grows.
    """

    def __init__(self, path: Path, dim: int):
        self.path, self.dim = Path(path), int(dim)
        self._rows = np.empty((0, self.dim), dtype=np.float32)

    @property
    def row_bytes(self) -> int:
        return 4 * self.dim

    def rows_on_disk(self) -> int:
        try:
            return os.stat(self.path).st_size // self.row_bytes
        except FileNotFoundError:
            return 0

    def map(self, n_rows: int) -> bool:
        """Map the first ``n_rows`` rows for reading; False if the file holds fewer."""
        if self.rows_on_disk() < n_rows:
            self._rows = np.empty((0, self.dim), dtype=np.float32)
            return False
        self._rows = (
            np.memmap(self.path, dtype=np.float32, mode="r", shape=(n_rows, self.dim))
            if n_rows
            else np.empty((0, self.dim), dtype=np.float32)
        )
        return True

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, ids) -> np.ndarray:
        """Vectors of ``ids`` (int array) as a new ``[n, dim]`` float32 array."""
        return np.asarray(self._rows[np.asarray(ids, dtype=np.int64)], dtype=np.float32)

    def write(self, first_id: int, vectors: np.ndarray) -> None:
        """Put ``vectors`` at rows ``first_id...`` (cutting off anything from there on), and fsync.

        Rows before ``first_id`` that the file lacks (ids never stored) are left as zeros.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with open(self.path, "ab+") as f:
            f.truncate(first_id * self.row_bytes)
            f.seek(first_id * self.row_bytes)
            f.write(vectors.tobytes())
            f.flush()
            os.fsync(f.fileno())


def nlist_for(n: int) -> int:
    """Inverted lists for an IVF index of ``n`` vectors: the power of two nearest ``4 * sqrt(n)``,
    at most ``n / 39`` (FAISS wants 39+ training vectors per list), between 1 and 65536."""
    target = 2 ** round(np.log2(max(1.0, 4.0 * np.sqrt(n))))
    cap = 2 ** int(np.log2(max(1, n // 39))) if n >= 39 else 1
    return int(max(1, min(target, cap, 65536)))


def choose_factory(n: int, settings, *, active: str, trained_on: int) -> str | None:
    """The segment index a library of ``n`` vectors should have, or None to keep ``active``.

    Below ``settings.large_index_min_segments``: ``settings.index_factory`` (exact). From there:
    ``settings.large_index_factory`` with ``{nlist}`` filled in by :func:`nlist_for`, rebuilt and
    retrained whenever the library has grown ``settings.retrain_growth`` times since it was trained.
    Back to exact when the library shrinks below half the threshold.
    """
    small, threshold = settings.index_factory, settings.large_index_min_segments
    large = active != small
    if not large:
        return settings.large_index_factory.format(nlist=nlist_for(n)) if threshold and n >= threshold else None
    if n < threshold // 2:
        return small
    if n >= settings.retrain_growth * max(1, trained_on):
        return settings.large_index_factory.format(nlist=nlist_for(n))
    return None
