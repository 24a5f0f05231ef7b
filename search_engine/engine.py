"""SearchEngine: one object that owns an index (vectors + catalog + model) and answers queries.

On-disk layout of an index folder::

    catalog.sqlite            files, segments, settings (unless catalog_url points elsewhere)
    segments.<gen>.faiss      segment vectors, ids = segment ids
    files.<gen>.faiss         whole-recording vectors, ids = file ids

    index.lock                held by the one process that writes (readers never take it)

``<gen>`` is the generation recorded in the catalog. A write saves the new generation's vector
files first, then commits the rows together with the new generation number, then deletes the old
files; a crash at any point leaves the last committed generation intact and consistent. Readers
read the generation and the rows in one transaction and then load that generation's files, so
they always see one committed state, and :meth:`SearchEngine.refresh` (called by every query)
moves them to the newest one.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .catalog import Catalog, File, FileRecord, path_key
from .config import Settings, load_config
from .errors import Audio2VecError, IndexLockedError, IndexMismatchError, IndexNotFoundError, ParameterError, result_or_raise
from .features import frames_for
from .query import (
    Alignment,
    Classification,
    Comparison,
    Match,
    QueryResult,
    aligned_nearest,
    alignment_support,
    best_alignment_per_recording,
    best_offset,
    best_offsets,
    claim_confidence,
    claim_features,
    claim_threshold,
    clip_level_db,
    neighbour_background,
    pool,
    vote_alignments,
    weighted_vote,
)

INDEX_FORMAT = 1
_VECTOR_FILE = re.compile(r"^(segments|files)\.(\d+)\.faiss$")
#: match threshold of a model without a calibrated one (the seed model's clean/noisy excerpts
#: scored 0.1-0.6, unrelated audio 0.95 and more)
UNCALIBRATED_THRESHOLD = 0.8
#: at most this many query windows per FAISS search of a batch (bounds its distance buffers)
SEARCH_CHUNK = 16384
#: the exact segment vectors (see :class:`~search_engine.vectors.VectorStore`)
STORE_FILE = "segments.vectors"
#: settings whose change makes an index's vectors incomparable with a model's
_GUARDED = ("model_id", "features", "embedding_dim")


@dataclass
class IndexedFile:
    """A decoded and embedded file, ready to be stored by :meth:`SearchEngine.add`."""

    record: FileRecord
    vectors: np.ndarray  # [n, dim]
    starts_s: np.ndarray  # [n]
    whole: np.ndarray  # [dim]: the whole-sound vector (``similar`` space), :meth:`SearchEngine.whole`


class SearchEngine:
    """An open audio index.

    Create with :meth:`create` or :meth:`open`; add files with :class:`indexer.Indexer`; ask with
    :meth:`query` (one clip) or :meth:`query_batch` (many).
    """

    def __init__(self, settings: Settings, catalog: Catalog, encoder, stored: dict, lock):
        self.settings = settings
        self.catalog = catalog
        self.encoder = encoder
        self.dir = settings.index_dir
        self.segment_hop_frames = int(stored["segment_hop_frames"])
        self.model = encoder.name  # the model in use (a bundled name, or a folder)
        self.whole_encoder = _whole_encoder(stored, encoder, settings.index_dir)
        self._factories = (stored["index_factory"], stored["similar_index_factory"])
        self._lock = lock  # filelock.FileLock on index.lock
        from .vectors import VectorStore

        self.store = VectorStore(self.dir / STORE_FILE, encoder.dim)
        self._exact = False  # whether the store holds every committed segment's vector
        self._batch_files: dict | None = None  # catalog rows read during one query_batch
        self.generation = -1
        self.refresh()

    # --- opening ------------------------------------------------------------------------------------
    @classmethod
    def create(cls, index: str | os.PathLike | None = None, *, settings: Settings | None = None, **overrides) -> "SearchEngine":
        """Create a new, empty index (or open it if one already exists with the same settings)."""
        settings = _settings(index, settings, overrides)
        return cls._open(settings, create=True)

    @classmethod
    def open(cls, index: str | os.PathLike | None = None, *, settings: Settings | None = None, **overrides) -> "SearchEngine":
        """Open an existing index; raises :class:`IndexNotFoundError` if there is none."""
        settings = _settings(index, settings, overrides)
        return cls._open(settings, create=False)

    @classmethod
    def _open(cls, settings: Settings, *, create: bool) -> "SearchEngine":
        from filelock import FileLock

        from .audio2vec import Encoder

        d = settings.index_dir
        missing = f"no index at {d} (create one with `audio2vec index PATH --index {d}`)"
        if not settings.catalog_url and not (d / "catalog.sqlite").exists():
            if not create:
                raise IndexNotFoundError(missing)
            d.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(settings.resolved_catalog_url)
        try:
            if catalog.revision() is None and not create:
                raise IndexNotFoundError(missing)
            lock = FileLock(d / "index.lock")
            if catalog.needs_upgrade():
                with _holding(lock, d):
                    if catalog.needs_upgrade():
                        catalog.upgrade()
            stored = catalog.settings()
            if not stored:
                if not create:
                    raise IndexNotFoundError(missing)
                encoder = Encoder.load(settings.model)
                with _holding(lock, d), catalog.Session.begin() as s:
                    stored = catalog.settings(s) or cls._initial_settings(settings, encoder)
                    Catalog.put_settings(s, stored)
            else:
                encoder = cls._check_compatible(settings, stored)
            return cls(settings, catalog, encoder, stored, lock)
        except BaseException:
            catalog.close()
            raise

    @staticmethod
    def _initial_settings(settings: Settings, encoder) -> dict:
        hop = frames_for(settings.segment_hop_s, encoder.features)
        if hop % settings.query_phases:
            raise ParameterError(
                f"segment_hop_s={settings.segment_hop_s} is {hop} frames of "
                f"{encoder.features.frame_s * 1000:.0f} ms, not a multiple of query_phases={settings.query_phases}"
            )
        return {
            "format": INDEX_FORMAT,
            "model": settings.model,
            "model_id": encoder.model_id,
            "similar_model_id": encoder.similar.model_id,
            "features": encoder.features.as_dict(),
            "embedding_dim": encoder.dim,
            "segment_hop_frames": hop,
            "index_factory": settings.index_factory,
            "similar_index_factory": settings.similar_index_factory,
            "generation": 0,
            "next_segment_id": 0,
        }

    @staticmethod
    def _check_compatible(settings: Settings, stored: dict):
        from .audio2vec import Encoder

        if stored.get("format") != INDEX_FORMAT:
            raise IndexMismatchError(
                f"index at {settings.index_dir} has format {stored.get('format')}; this audio2vec reads format {INDEX_FORMAT}"
            )
        # the model the index was built with, unless another one was asked for explicitly
        model = stored["model"] if settings.model == "default" else settings.model
        from .audio2vec.encoder import bundled_model, bundled_models
        from .audio2vec.retired import raise_if_retired

        if model not in bundled_models() and not (Path(model).expanduser() / "config.json").is_file():
            raise_if_retired(settings.index_dir, model)  # a bundled model of an earlier version, by name
        encoder = Encoder.load(model)
        if settings.model == "default" and encoder.model_id != stored.get("model_id"):
            # built with a bundled model that is no longer the default: use it, if still bundled
            folder = bundled_model(stored.get("model_id"))
            if folder is not None:
                encoder = Encoder.load(folder)
            else:
                raise_if_retired(settings.index_dir, stored.get("model_id"))
        now = {"model_id": encoder.model_id, "features": encoder.features.as_dict(), "embedding_dim": encoder.dim}
        differs = _differences({k: stored.get(k) for k in _GUARDED}, now)
        if differs:
            raise IndexMismatchError(
                f"index at {settings.index_dir} was built with model {stored['model']!r} and other settings than "
                f"model {model!r} has ({'; '.join(differs)}). Vectors of different models or features cannot be "
                f"compared: query with the model the index was built with (--model), or rebuild the index with "
                f"this one: `audio2vec index YOUR_FOLDERS --index NEW_FOLDER`"
            )
        return encoder

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
                segments = self._load_vectors("segments", gen, _active_factory(stored))
                wholes = self._load_vectors("files", gen, self._factories[1])
            except FileNotFoundError:
                continue  # a writer committed a newer generation and deleted this one meanwhile: read again
            self.generation, self.segments, self.wholes, self._blocks = gen, segments, wholes, blocks
            self._exact = self.store.map(int(stored["next_segment_id"]))
            return True
        raise IndexMismatchError(f"index at {self.dir} is damaged: {self._vector_path('segments', gen).name} is missing")

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
        with _holding(self._lock, self.dir):
            self.refresh()
            yield self

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "SearchEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- geometry -----------------------------------------------------------------------------------
    @property
    def query_hop_frames(self) -> int:
        return self.segment_hop_frames // self.settings.query_phases

    @property
    def segment_hop_s(self) -> float:
        return self.segment_hop_frames * self.encoder.features.frame_s

    @property
    def sample_rate_hz(self) -> int:
        return self.encoder.features.sample_rate_hz

    @property
    def whole_dim(self) -> int:
        """Length of a whole-sound (``similar``) vector."""
        return self.whole_encoder.dim if self.whole_encoder is not None else self.encoder.dim

    # --- writing ------------------------------------------------------------------------------------
    def embed(self, y: np.ndarray, *, source: object = "<waveform>") -> tuple[np.ndarray, np.ndarray]:
        """Segment vectors of a mono waveform at the model rate, one every segment hop.

        Returns ``(vectors [n, dim], starts_s [n])``.
        """
        e = self.encoder.embed(y, hop_frames=self.segment_hop_frames, batch_size=self.settings.batch_size, source=source)
        return e.vectors, e.starts_s

    def whole(self, mel: np.ndarray, vectors: np.ndarray | None, *, source: object = "<waveform>") -> np.ndarray:
        """The whole-sound (``similar``) vector ``[dim]`` of a file, from its :func:`spectrogram`
        and its segment vectors: the similar model's (:meth:`Encoder.whole`); for an index made
        before there was one, the segment vectors averaged and normalised."""
        return result_or_raise(self.whole_vectors([mel], [vectors], sources=[source])[0])

    def whole_vectors(self, mels: Sequence[np.ndarray], vectors: Sequence[np.ndarray | None], *, sources: Sequence[object]) -> list:
        """:meth:`whole` of many files at once (their windows share encoder calls); per file its
        vector or the :class:`DecodeError` that refuses it."""
        if self.whole_encoder is None:
            return [pool(v) for v in vectors]
        return self.whole_encoder.wholes(mels, batch_size=self.settings.batch_size, sources=sources)

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
        removed = _removed_ids(replace)
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

    def _files(self, paths: Iterable[str | os.PathLike]) -> dict[int, File]:
        files: dict[int, File] = {}
        for p in paths:
            for f in self.catalog.files_under(path_key(p)) or self.catalog.files_under(str(p)):
                files[f.id] = f
        return files

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

        active = _active_factory(stored)
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

    # --- reading ------------------------------------------------------------------------------------
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
                segments = self._load_vectors("segments", gen, _active_factory(stored))
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

    def load_clip(self, clip) -> tuple[str, np.ndarray]:
        """A clip (path, or ``(waveform, sample_rate)``) as ``(name, mono waveform at the model rate)``."""
        from .audio import load_clip

        return load_clip(clip, sr=self.sample_rate_hz)

    def vector(self, clip) -> np.ndarray:
        """A clip's whole-sound vector in the ``similar`` space, made exactly as an indexed file's
        (:meth:`whole`). ``[dim]`` float32."""
        return self._whole_of(*self.load_clip(clip))

    def _whole_of(self, name: str, y: np.ndarray) -> np.ndarray:
        """:meth:`whole` of a mono waveform at the model rate."""
        from .audio2vec.encoder import spectrogram

        mel = spectrogram(y, self.encoder.features, source=name)
        vectors = None
        if self.whole_encoder is None:  # an older index: its whole vectors are made of segment vectors
            e = self.encoder.embed_spectrogram(mel, hop_frames=self.segment_hop_frames, duration_s=len(y) / self.sample_rate_hz, batch_size=self.settings.batch_size, source=name)
            vectors = e.vectors
        return self.whole(mel, vectors, source=name)

    def distance(self, a, b) -> float:
        """Euclidean distance between two clips in the ``similar`` space (0 = same sound; unit
        vectors, so at most 2)."""
        return float(np.linalg.norm(self.vector(a) - self.vector(b)))

    def compare(self, a, b) -> Comparison:
        """How alike two clips are: their ``similar`` distance, and whether the longer one
        contains the shorter and where: the ``match`` decision (:meth:`query_batch`) with the
        longer clip as the whole library (the best exactly aligned mean distance, and the same
        claim features and confidence; without a fitted decision, at or below
        :meth:`match_threshold` for the shorter clip's length in a library as long as the longer)."""
        (na, ya), (nb, yb) = self.load_clip(a), self.load_clip(b)
        similar = float(np.linalg.norm(self._whole_of(na, ya) - self._whole_of(nb, yb)))
        (outer, yo), (inner, y) = ((na, ya), (nb, yb)) if len(ya) >= len(yb) else ((nb, yb), (na, ya))
        seg = self.embed(yo, source=outer)[0]
        q = self.encoder.embed(y, hop_frames=self.query_hop_frames, batch_size=self.settings.batch_size, source=inner).vectors
        phases = self.settings.query_phases

        def distance(qi, s):
            return np.linalg.norm(q[qi] - seg[s], axis=1)

        found = [best_offset(peak, distance, len(q), len(seg), phases=phases) for peak in range(-len(q), len(seg) * phases + phases, phases // 2)]
        offset, match, windows = min((f for f in found if f is not None), key=lambda f: f[1])
        # the k-NN of the match path, the longer clip's segments as the library
        qq, ss = q.astype(np.float64), seg.astype(np.float64)
        full = np.sqrt(np.maximum((qq**2).sum(1)[:, None] + (ss**2).sum(1)[None, :] - 2 * qq @ ss.T, 0.0))
        kn = min(self.settings.neighbours, len(seg))
        within = np.argsort(full, axis=1, kind="stable")[:, :kn]
        dist = np.take_along_axis(full, within, axis=1)
        hop_s = self.segment_hop_s / phases
        duration_s = len(y) / self.sample_rate_hz
        features = claim_features(
            np.array([match]), background=neighbour_background(dist), nearest=[aligned_nearest(dist, offset, phases=phases)],
            support=[alignment_support(np.zeros_like(within), within, 0, offset, phases=phases, hop_s=hop_s)],
            duration_s=duration_s, level_db=clip_level_db(y),
        )
        decided = self._decide([Match(1, outer, match, offset * hop_s, len(yo) / self.sample_rate_hz, 0, windows)], features,
                               duration_s, len(yo) / self.sample_rate_hz / 3600)[0]
        return Comparison(
            a=na, b=nb, distance=round(similar, 6), match_distance=round(match, 6),
            contains=decided.matched, container=outer, contained=inner,
            offset_s=round(offset * hop_s, 3), confidence=decided.confidence,
        )

    def classify(self, clips: Sequence, *, k: int | None = None) -> list[Classification]:
        """Label each clip by its ``k`` nearest labelled recordings (``similar`` space), with a
        distance-weighted vote; ``"unknown"`` when the winning share is below
        ``settings.min_confidence`` or nothing is labelled. A clip that cannot be read gets ``error``."""
        self.refresh()
        k = k or self.settings.classify_k
        ids, labels, paths = self.catalog.labelled()
        known = self.wholes.reconstruct(ids) if len(ids) else np.empty((0, self.whole_dim), np.float32)
        out = []
        for clip in clips:
            res = Classification(query="<waveform>" if isinstance(clip, tuple) else str(clip))
            out.append(res)
            try:
                v = self.vector(clip)
            except Audio2VecError as exc:
                res.error = str(exc)
                continue
            d = np.linalg.norm(known - v, axis=1)
            near = np.argsort(d, kind="stable")[:k]
            res.neighbours = [{"path": paths[i], "label": labels[i], "distance": round(float(d[i]), 6)} for i in near]
            res.label, res.confidence = weighted_vote([labels[i] for i in near], d[near], min_confidence=self.settings.min_confidence)
        return out

    def query(self, clip, *, k: int | None = None, mode: str | None = None) -> list[Match]:
        """Recordings for one clip, nearest first. Raises on a bad clip.

        Parameters
        ----------
        clip : path-like or (np.ndarray, int)
            An audio file, or a waveform and its sample rate in Hz.
        k : int, optional
            Results wanted (default: settings ``k``).
        mode : {"match", "similar"}, optional
        """
        result = self.query_batch([clip], k=k, mode=mode, raise_errors=True)[0]
        return result.matches

    def query_batch(self, clips: Sequence, *, k: int | None = None, mode: str | None = None, raise_errors: bool = False) -> list[QueryResult]:
        """Answer many clips; their windows go through the encoder and FAISS in shared batches.

        A clip that cannot be read gives a :class:`QueryResult` with ``error`` set (or raises, with
        ``raise_errors``); the others are still answered, in the order given.
        """
        k = k or self.settings.k
        mode = mode or self.settings.mode
        if mode not in ("match", "similar"):
            raise ParameterError(f"mode must be 'match' or 'similar', not {mode!r}")
        self.refresh()
        self._batch_files = {}
        try:
            return self._query_batch(clips, k=k, mode=mode, raise_errors=raise_errors)
        finally:
            self._batch_files = None

    def _query_batch(self, clips: Sequence, *, k: int, mode: str, raise_errors: bool) -> list[QueryResult]:
        results, prepared = [], []
        for clip in clips:
            name = "<waveform>" if isinstance(clip, tuple) else str(clip)
            res = QueryResult(query=name)
            results.append(res)
            t0 = time.perf_counter()
            try:
                name, y = self.load_clip(clip)
                t1 = time.perf_counter()
                x, _ = self.encoder.raw_windows(y, hop_frames=self.query_hop_frames, source=name)
                whole = self._whole_of(name, y) if mode == "similar" and self.whole_encoder is not None else None
                prepared.append((res, x, len(y) / self.sample_rate_hz, whole, clip_level_db(y)))
                res.timings = {"decode": t1 - t0, "features": time.perf_counter() - t1}
            except Audio2VecError as exc:
                if raise_errors:
                    raise
                res.error = str(exc)
        if not prepared or len(self.segments) == 0:
            return results
        t0 = time.perf_counter()
        vectors = self.encoder.encode_parts([x for _, x, *_ in prepared], batch_size=self.settings.batch_size)
        t1 = time.perf_counter()
        neighbours = self._neighbours(vectors) if mode == "match" else [None] * len(vectors)
        per_clip = {"encoder": (t1 - t0) / len(prepared), "search": (time.perf_counter() - t1) / len(prepared)}
        for (res, _, duration_s, whole, level_db), vecs, found in zip(prepared, vectors, neighbours):
            res.timings["encoder"] = per_clip["encoder"]
            if mode == "match":
                res.timings["search"] = per_clip["search"]
                res.matches, res.features = self._match(vecs, found, k, res.timings, duration_s=duration_s, level_db=level_db)
                res.matches = self._decide(res.matches, res.features, duration_s)
                res.matched = bool(res.matches) and res.matches[0].matched
                res.confidence = res.matches[0].confidence if res.matches else None
            else:
                res.matches = self._similar(pool(vecs[:: self.settings.query_phases]), whole, k, res.timings)
        return results

    @property
    def match_decision(self) -> dict | None:
        """The model's fitted claim decision (``match_decision`` in its config.json: a logistic
        regression over :func:`~search_engine.query.claim_basis` and the operating point
        ``threshold``, or ``thresholds`` per clip length: :func:`~search_engine.query.claim_threshold`),
        or None for a model calibrated with distance thresholds only."""
        return self.encoder.config.get("match_decision")

    def _decide(self, matches: list[Match], features: list[dict], duration_s: float, library_hours: float | None = None) -> list[Match]:
        """``matched`` and ``confidence`` of each match: confidence from the model's fitted
        decision, matched when it reaches the decision's operating point; a model without one, or
        ``match_threshold`` set in config, decides by :meth:`match_threshold` instead."""
        decision = self.match_decision
        out = []
        for m, f in zip(matches, features):
            conf = round(claim_confidence(f, decision), 4) if decision else None
            if decision and not self.settings.match_threshold:
                ok = conf >= claim_threshold(decision, duration_s)
            else:
                ok = m.distance <= self.match_threshold(duration_s, library_hours)
            out.append(dataclasses.replace(m, matched=bool(ok), confidence=conf))
        return out

    def match_threshold(self, duration_s: float, library_hours: float | None = None) -> float:
        """Largest best-alignment distance that counts as found for a clip of ``duration_s`` seconds.

        ``settings.match_threshold`` when set (not 0); else the model's calibration
        (``match_thresholds`` in its config.json): thresholds measured at a few clip lengths (a
        mean over more windows of unrelated audio varies less, so longer clips get a larger
        threshold) in libraries of a few sizes (``{hours: {seconds: threshold}}``; an unrelated
        clip finds a nearer neighbour in a larger library, so a larger library gets a smaller
        threshold), interpolated in log duration and log hours and held constant outside them;
        else 0.8 (an uncalibrated model). ``library_hours`` defaults to this index's audio.
        """
        if self.settings.match_threshold:
            return self.settings.match_threshold
        table = self.encoder.config.get("match_thresholds")
        if not table:
            return float(self.encoder.config.get("match_threshold", UNCALIBRATED_THRESHOLD))
        if not all(isinstance(t, dict) for t in table.values()):
            table = {"1": table}  # one library size
        hours = len(self.segments) * self.segment_hop_s / 3600 if library_hours is None else library_hours
        return _log_interp(hours, {h: _log_interp(duration_s, by_length) for h, by_length in table.items()})

    def _file_rows(self, ids: Iterable[int]) -> dict:
        """Catalog rows of these file ids; within one :meth:`query_batch` each row is read once
        (hundreds of clips find the same few recordings)."""
        ids = set(ids)
        cache = self._batch_files if self._batch_files is not None else {}
        missing = ids - cache.keys()
        if missing:
            cache.update(self.catalog.files_by_id(missing))
        return {i: cache[i] for i in ids if i in cache}

    def _neighbours(self, vectors: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(distances, segment ids)``, each ``[n_i, neighbours]``, of the segments nearest to each
        clip's window vectors: the clips of a batch are searched together (one FAISS call for up
        to :data:`SEARCH_CHUNK` windows ran twice as fast as one per clip)."""
        out = []
        for part in _chunks(vectors, SEARCH_CHUNK):
            dist, ids = self.segments.search(np.concatenate(part), self.settings.neighbours)
            cuts = np.cumsum([len(v) for v in part])[:-1]
            out += list(zip(np.split(dist, cuts), np.split(ids, cuts)))
        return out

    def _match(
        self, q: np.ndarray, found: tuple[np.ndarray, np.ndarray], k: int, timings: dict, *, duration_s: float, level_db: float
    ) -> tuple[list[Match], list[dict]]:
        """The ``k`` recordings whose best alignment with the clip's windows ``q`` is nearest, from
        each window's nearest segments ``found`` (:meth:`_neighbours`), and each one's claim
        features (:func:`~search_engine.query.claim_features`)."""
        phases = self.settings.query_phases
        dist, ids = found
        t1 = time.perf_counter()
        rows, within = self.blocks.locate(ids)
        voted = vote_alignments(rows, within, phases=phases, candidates=self.settings.candidates)
        firsts = np.array([int(self.blocks.first_ids[row]) for row, _ in voted], dtype=np.int64)

        def distance(cand, qi, seg):
            used, at = np.unique(firsts[cand] + seg, return_inverse=True)  # a few segments, many windows
            return np.linalg.norm(q[qi] - self.segment_vectors(used)[at], axis=1)

        offsets = best_offsets([peak for _, peak in voted], distance, len(q), [int(self.blocks.counts[row]) for row, _ in voted], phases=phases)
        scored = [Alignment(row, *o) for (row, _), o in zip(voted, offsets) if o is not None]
        ranked = best_alignment_per_recording(scored, max(k, 2))  # the second recording gives the margin
        best = ranked[:k]
        files = self._file_rows(int(self.blocks.file_ids[a.row]) for a in best)
        hop_s = self.segment_hop_s / phases
        out = []
        for rank, a in enumerate(best, 1):
            f = files[int(self.blocks.file_ids[a.row])]
            out.append(Match(rank, f.path, round(a.distance, 6), round(a.offset * hop_s, 3), f.duration_s, f.id, a.windows))
        dist = np.where(ids >= 0, dist, np.inf)
        background = neighbour_background(dist)
        nearest = [aligned_nearest(dist, a.offset, phases=phases) for a in ranked]
        support = [alignment_support(rows, within, a.row, a.offset, phases=phases, hop_s=hop_s) for a in ranked]
        features = claim_features(np.array([a.distance for a in ranked]), background=background, nearest=nearest,
                                  support=support, duration_s=duration_s, level_db=level_db)[: len(best)]
        timings["aggregate"] = time.perf_counter() - t1
        return out, features

    def similar_to(self, path: str | os.PathLike, *, k: int | None = None) -> QueryResult:
        """``similar`` answer for an indexed file, from its stored vectors (nothing is decoded): the
        same as ``query_batch([path], mode="similar")`` would give (the file itself first, at
        distance 0). Raises :class:`ParameterError` if ``path`` is not in the index."""
        self.refresh()
        files = self.catalog.files_by_path([path_key(path)]) or self.catalog.files_by_path([str(path)])
        if not files:
            raise ParameterError(f"{path}: not in the index")
        f = next(iter(files.values()))
        res = QueryResult(query=f.path)
        segs = self.segment_vectors(f.first_segment_id + np.arange(f.n_segments))
        v = pool(segs)
        whole = self.wholes.reconstruct(np.array([f.id], dtype=np.int64))[0] if self.whole_encoder is not None else None
        res.matches = self._similar(v, whole, k or self.settings.k, res.timings)
        return res

    def _similar(self, v: np.ndarray, whole: np.ndarray | None, k: int, timings: dict) -> list[Match]:
        """Recordings nearest to the clip's whole-sound vector ``whole`` (None: an older index,
        whose whole vectors are pooled segment vectors); each one's segment nearest to ``v``, the
        clip's pooled segment-hop window vectors (as an indexed file's segments), gives the offset."""
        t0 = time.perf_counter()
        dist, ids = self.wholes.search((v if whole is None else whole)[None], k)
        t1 = time.perf_counter()
        found = [(float(d), int(i)) for d, i in zip(dist[0], ids[0]) if i >= 0]
        files = self._file_rows(i for _, i in found)
        out = []
        for rank, (d, fid) in enumerate(found, 1):
            f = files[fid]
            segs = self.segment_vectors(f.first_segment_id + np.arange(f.n_segments))
            nearest = int(np.argmin(np.linalg.norm(segs - v, axis=1))) if len(segs) else 0
            out.append(Match(rank, f.path, round(d, 6), round(nearest * self.segment_hop_s, 3), f.duration_s, f.id, 0))
        timings.update(search=t1 - t0, aggregate=time.perf_counter() - t1)
        return out


@contextmanager
def _holding(lock, folder: Path):
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


def _differences(stored: dict, now: dict, prefix: str = "") -> list[str]:
    """``"key: index has A, now B"`` for every (nested) key whose value differs."""
    out = []
    for key in sorted(set(stored) | set(now)):
        a, b = stored.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: index has {a!r}, now {b!r}")
    return out


def _log_interp(x: float, points: dict) -> float:
    """Piecewise-linear in log ``x`` through ``{x_i: y_i}`` (keys may be strings), constant outside."""
    xs, ys = zip(*sorted((float(k), float(v)) for k, v in points.items()))
    return float(np.interp(np.log(max(x, 1e-6)), np.log(xs), ys))


def _whole_encoder(stored: dict, encoder, index_dir: Path):
    """The model of an index's whole-sound vectors: ``encoder.similar`` when the index was made
    with it, else the bundled model with the recorded id; None for an index made before whole
    vectors had their own model (they are its pooled segment vectors)."""
    wanted = stored.get("similar_model_id")
    if wanted is None:
        return None
    if encoder.similar.model_id == wanted:
        return encoder.similar
    from .audio2vec import Encoder
    from .audio2vec.encoder import bundled_model

    folder = bundled_model(wanted)
    if folder is None:
        from .audio2vec.retired import raise_if_retired

        raise_if_retired(index_dir, wanted, space="similar")
        raise IndexMismatchError(
            f"index at {index_dir} was built with similar model {wanted}, which neither model {encoder.name!r} "
            "nor this audio2vec's bundled models are: rebuild the index (`audio2vec index YOUR_FOLDERS --index NEW_FOLDER`)"
        )
    return Encoder.load(folder)


def _active_factory(stored: dict) -> str:
    """The index_factory of the committed segment index (it changes with the library's size)."""
    return stored.get("active_index_factory", stored["index_factory"])


def _removed_ids(files: list[File]) -> tuple[np.ndarray, np.ndarray]:
    seg = [f.first_segment_id + np.arange(f.n_segments, dtype=np.int64) for f in files]
    return (
        np.concatenate(seg) if seg else np.empty(0, np.int64),
        np.array([f.id for f in files], dtype=np.int64),
    )


def _settings(index, settings: Settings | None, overrides: dict) -> Settings:
    base = settings or load_config()
    return base.replace(index=str(index) if index is not None else None, **overrides)


def _chunks(arrays: Sequence[np.ndarray], rows: int) -> Iterable[list[np.ndarray]]:
    """Consecutive groups of ``arrays`` of about ``rows`` rows in all (an array is never split)."""
    group, n = [], 0
    for a in arrays:
        if group and n + len(a) > rows:
            yield group
            group, n = [], 0
        group.append(a)
        n += len(a)
    if group:
        yield group
