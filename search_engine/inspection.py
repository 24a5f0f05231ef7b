"""Looking at an index without changing it: a consistency check, counts, duplicate recordings."""

from __future__ import annotations

import numpy as np

from .errors import IndexMismatchError
from .generations import active_factory


class Inspection:
    """Part of :class:`~search_engine.engine.SearchEngine`: :meth:`check`, :meth:`stats` and
    :meth:`duplicates`."""

    def check(self) -> dict:
        """Verify that the vectors and the rows of the last committed state agree.

        Returns ``{"ok", "generation", "files", "segments", "problems": [...]}``; ``problems`` names
        each disagreement: a segment row without a vector, a vector without a row, a file whose
        rows are not its block of segment ids, a whole-recording vector without a file (or the
        reverse), a non-finite vector.
        """
        while True:
            with self.catalog.Session() as s:  # one read transaction: one committed state
                stored = self.catalog.settings(s)
                seg_rows = self.catalog.segment_ids(s)
                blocks = self.catalog.file_blocks(s)
            gen = int(stored["generation"])
            try:
                segments = self._load_vectors("segments", gen, active_factory(stored))
                wholes = self._load_vectors("files", gen, self._factories[1])
                break
            except FileNotFoundError:
                if self.catalog.generation() == gen:
                    raise IndexMismatchError(f"index at {self.dir} is damaged: {self._vector_path('segments', gen).name} is missing")
        problems = []

        def differ(what: str, expected: np.ndarray, found: np.ndarray, a: str, b: str) -> None:
            for name, ids in ((a, np.setdiff1d(expected, found)), (b, np.setdiff1d(found, expected))):
                if len(ids):
                    problems.append(f"{len(ids)} {what} {name} (ids {', '.join(map(str, ids[:5]))}{', ...' if len(ids) > 5 else ''})")

        owned = np.concatenate([f + np.arange(n) for f, n in zip(blocks.first_ids, blocks.counts)] or [np.empty(0, np.int64)])
        differ("segment rows", owned, seg_rows, "missing from their file's block", "outside any file's block")
        differ("segments", seg_rows, segments.ids(), "have a row but no vector", "have a vector but no row")
        differ("files", blocks.file_ids, wholes.ids(), "have a row but no recording vector", "have a recording vector but no row")
        if len(owned) != len(np.unique(owned)):
            problems.append("file blocks overlap")
        from .vectors import VectorStore

        store = VectorStore(self.store.path, self.encoder.dim)
        exact = store.map(int(stored["next_segment_id"]))
        if not exact and (store.rows_on_disk() or not segments.is_flat):
            problems.append(f"the exact vector store {store.path.name} holds {store.rows_on_disk()} rows, the catalog needs {stored['next_segment_id']}")
        present = np.intersect1d(seg_rows, segments.ids())  # rows missing either side are reported above
        for i in range(0, len(present), 65536):
            ids = present[i : i + 65536]
            rows = store[ids] if exact else segments.reconstruct(ids)
            if not np.isfinite(rows).all():
                problems.append("non-finite segment vectors")
                break
            if exact and segments.is_flat and not np.array_equal(rows, segments.reconstruct(ids)):
                problems.append("the exact vector store and the FAISS index disagree")
                break
        ids = wholes.ids()
        if len(ids) and not np.isfinite(wholes.reconstruct(ids)).all():
            problems.append("non-finite recording vectors")
        return {"ok": not problems, "generation": gen, "files": len(blocks.file_ids), "segments": len(seg_rows), "problems": problems}

    def stats(self) -> dict:
        """Counts and settings of the index, as a JSON-ready dict."""
        c = self.catalog.counts()
        files_bytes = sum(p.stat().st_size for p in self.dir.glob(f"*.{self.generation}.faiss"))
        return {
            "index": str(self.dir),
            "catalog": self.catalog.url,
            "files": c["files"],
            "hours": round(c["hours"], 4),
            "segments": c["segments"],
            "vectors": len(self.segments),
            "model": self.model,
            "model_id": self.encoder.model_id,
            "embedding_dim": self.encoder.dim,
            "segment_hop_s": round(self.segment_hop_s, 4),
            "index_factory": self.segments.factory,
            "index_type": self.segments.describe(),
            "similar_index_factory": self._factories[1],
            # the model of the whole-sound vectors; "pooled segments": an index made before it had one
            "similar_model": self.whole_encoder.name if self.whole_encoder is not None else "pooled segments",
            "similar_model_id": self.whole_encoder.model_id if self.whole_encoder is not None else None,
            "vector_bytes": files_bytes,
            "bytes_per_segment": round(files_bytes / max(1, c["segments"]), 1),
            "exact_store_bytes": self.store.path.stat().st_size if self.store.path.exists() else 0,
            "generation": self.generation,
        }

    def duplicates(self, *, min_overlap_s: float | None = None, neighbours: int = 20) -> list:
        """Groups of indexed recordings that hold the same audio (transcodes, resamples, trims, one
        contained in another, another intro, a few percent faster), from the stored segment vectors
        (nothing is decoded): :func:`search_engine.duplicates.find_duplicates`. Each
        :class:`~search_engine.duplicates.DuplicateGroup` names every file with the span it shares
        with the others (seconds); ``min_overlap_s`` (default 10) is the least shared span."""
        from .duplicates import MIN_OVERLAP_S, DuplicateGroup, find_duplicates

        self.refresh()
        b = self.blocks
        files = self.catalog.files_by_id(b.file_ids.tolist())
        durations = np.array([files[int(f)].duration_s for f in b.file_ids], dtype=np.float64)

        def search(q, k):
            dist, ids = self.segments.search(np.ascontiguousarray(q, dtype=np.float32), k)
            rows, within = b.locate(ids)
            return rows, within, np.where(ids >= 0, dist, np.inf)

        groups = find_duplicates(
            search, lambda row: self.segment_vectors(int(b.first_ids[row]) + np.arange(int(b.counts[row]))), b.counts, durations,
            hop_s=self.segment_hop_s, window_s=self.encoder.features.window_s,
            min_overlap_s=MIN_OVERLAP_S if min_overlap_s is None else min_overlap_s, neighbours=neighbours,
        )
        out = []
        for rows, spans in groups:
            members = [{"path": files[int(b.file_ids[r])].path, "start_s": spans[r][0], "end_s": spans[r][1]} for r in rows]
            out.append(DuplicateGroup(sorted(members, key=lambda m: (-(m["end_s"] - m["start_s"]), m["path"]))))
        return sorted(out, key=lambda g: g.files[0]["path"])
