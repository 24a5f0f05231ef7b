"""SearchEngine: one object that owns an index (vectors + catalog + model) and answers queries.

On-disk layout of an index folder::

    catalog.sqlite            files, segments, settings (unless catalog_url points elsewhere)
    segments.<gen>.faiss      segment vectors, ids = segment ids
    files.<gen>.faiss         whole-recording vectors, ids = file ids
    segments.vectors          the exact segment vectors (:class:`~search_engine.vectors.VectorStore`)
    index.lock                held by the one process that writes (readers never take it); with a
                              PostgreSQL catalog a PostgreSQL advisory lock instead (locks.py)

The engine is one object; its jobs live in their own modules:

- here: opening or creating an index, its geometry, embedding waveforms for it;
- :mod:`~search_engine.compatibility`: which model and settings an index was built with;
- :mod:`~search_engine.generations`: the committed state on disk, the writer lock, writes
  (``<gen>`` above is the generation the catalog names; a crash never loses a committed one);
- :mod:`~search_engine.searching`: ``query``, ``query_batch``, ``similar_to``, ``compare``, ``classify``;
- :mod:`~search_engine.inspection`: ``check`` and ``stats``.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .catalog import Catalog
from .compatibility import check_compatible, initial_settings, whole_encoder
from .config import Settings, load_config
from .errors import IndexNotFoundError, result_or_raise
from .generations import STORE_FILE, Generations, IndexedFile, holding
from .inspection import Inspection
from .query import pool
from .searching import Searching

__all__ = ["IndexedFile", "SearchEngine"]


class SearchEngine(Generations, Searching, Inspection):
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
        self.whole_encoder = whole_encoder(stored, encoder, settings.index_dir)
        self._factories = (stored["index_factory"], stored["similar_index_factory"])
        self._lock = lock  # the writer lock (locks.writer_lock)
        from .vectors import VectorStore

        self.store = VectorStore(self.dir / STORE_FILE, encoder.dim)
        self._exact = False  # whether the store holds every committed segment's vector
        self._batch_files: dict | None = None  # catalog rows read during one query_batch
        self._calibration, self._calibration_stamp = None, 0  # the index's calibration.json and its mtime
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
        from .audio2vec import Encoder
        from .locks import writer_lock

        d = settings.index_dir
        missing = f"no index at {d} (create one with `audio2vec index PATH --index {d}`)"
        if not settings.catalog_url and not (d / "catalog.sqlite").exists() and not create:
            raise IndexNotFoundError(missing)
        if create:
            d.mkdir(parents=True, exist_ok=True)  # the vector files live here whatever the catalog
        catalog = Catalog(settings.resolved_catalog_url)
        try:
            if catalog.revision() is None and not create:
                raise IndexNotFoundError(missing)
            lock = writer_lock(catalog, d)
            if catalog.needs_upgrade():
                with holding(lock, d):
                    if catalog.needs_upgrade():
                        catalog.upgrade()
            stored = catalog.settings()
            if not stored:
                if not create:
                    raise IndexNotFoundError(missing)
                encoder = Encoder.load(settings.model)
                with holding(lock, d), catalog.Session.begin() as s:
                    stored = catalog.settings(s) or initial_settings(settings, encoder)
                    Catalog.put_settings(s, stored)
            else:
                encoder = check_compatible(settings, stored)
            return cls(settings, catalog, encoder, stored, lock)
        except BaseException:
            catalog.close()
            raise

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


def _settings(index, settings: Settings | None, overrides: dict) -> Settings:
    base = settings or load_config()
    return base.replace(index=str(index) if index is not None else None, **overrides)
