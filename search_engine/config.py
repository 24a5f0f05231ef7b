"""Settings: built-in defaults < ``config.yaml`` < environment (``AUDIO2VEC_*``) < explicit arguments.

Every setting is a field of :class:`Settings`; the repository's ``config.yaml`` lists each one with
its default and a comment (a test keeps the two equal).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ParameterError

ENV_PREFIX = "AUDIO2VEC_"


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one engine. Names carry their unit."""

    #: folder holding the vector index and (by default) the SQLite catalog
    index: str = "data/index"
    #: SQLAlchemy URL of the catalog; empty means ``sqlite:///<index>/catalog.sqlite``
    catalog_url: str = ""
    #: Audio2Vec model: ``default`` (bundled weights) or a path to a model folder
    model: str = "default"
    #: FAISS ``index_factory`` string for the segment vectors (L2 metric; ids added by IDMap2)
    index_factory: str = "IDMap2,Flat"
    #: past this many segment vectors the segment index becomes ``large_index_factory`` (0: never)
    large_index_min_segments: int = 200_000
    #: FAISS ``index_factory`` string for large libraries; ``{nlist}`` is chosen from the size
    #: (about 4 * sqrt(vectors)). Trained on the library's own vectors; candidates it finds are
    #: scored with the exact vectors kept on disk (``segments.vectors``)
    large_index_factory: str = "IVF{nlist},PQ32x4fs"
    #: inverted lists searched per query vector (IVF indexes)
    nprobe: int = 32
    #: a large index is rebuilt and retrained once the library has grown this many times since
    retrain_growth: float = 4.0
    #: FAISS ``index_factory`` string for the whole-recording vectors used by ``similar``
    similar_index_factory: str = "IDMap2,Flat"
    #: time between the starts of two indexed segments (seconds; rounded to the model's frames)
    segment_hop_s: float = 0.512
    #: query windows per indexed segment hop: a clip is embedded at hop ``segment_hop_s / query_phases``
    query_phases: int = 16
    #: neighbours fetched per query window when looking for alignments (match mode)
    neighbours: int = 10
    #: candidate (recording, offset) alignments scored exactly per clip (match mode)
    candidates: int = 50
    #: results returned per clip
    k: int = 5
    #: ``match`` queries and ``compare``: 0 decides ``matched`` by the model's fitted decision
    #: (``match_decision``, its ``confidence``); non-zero: a best aligned distance at or below this
    #: means the clip is in that recording instead
    match_threshold: float = 0.0
    #: ``match`` queries and ``compare``: check the first match against the recording's own audio
    #: (:mod:`search_engine.verification`, read from its file) before deciding the claim; false, or
    #: a file that cannot be read, decides on the vectors alone
    verify: bool = True
    #: ``classify``: labelled neighbours that vote for a clip's label
    classify_k: int = 5
    #: ``classify``: below this share of the (distance-weighted) vote the answer is "unknown"
    min_confidence: float = 0.5
    #: query mode: ``match`` (where does this clip come from) or ``similar`` (what sounds like it)
    mode: str = "match"
    #: windows per encoder batch
    batch_size: int = 512
    #: indexing commits the catalog and saves the vectors after this many files
    commit_every_files: int = 64
    #: indexing processes that decode files while the main one runs the encoder (1: no extra
    #: process; 0: one per core)
    workers: int = 0
    #: ``audio2vec serve``: uploads larger than this many megabytes (MiB) are refused (413)
    max_upload_mb: float = 50.0
    #: ``audio2vec serve``: a token every request must carry (``Authorization: Bearer TOKEN``, or
    #: ``?token=``); empty: none, and then the server only binds to a loopback address
    serve_token: str = ""

    def replace(self, **changes: Any) -> "Settings":
        """Return a copy with some fields changed (``None`` values are ignored)."""
        return _validated(dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}))

    @property
    def index_dir(self) -> Path:
        return Path(self.index).expanduser()

    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{(self.index_dir / 'catalog.sqlite').resolve()}"


def _coerce(name: str, value: Any, kind: type) -> Any:
    try:
        if kind is bool and isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"setting {name!r}: cannot read {value!r} as {kind.__name__}") from exc


def _validated(settings: Settings) -> Settings:
    if settings.mode not in ("match", "similar"):
        raise ParameterError(f"mode must be 'match' or 'similar', not {settings.mode!r}")
    for name in ("query_phases", "neighbours", "candidates", "k", "classify_k", "batch_size", "commit_every_files", "nprobe"):
        if getattr(settings, name) < 1:
            raise ParameterError(f"setting {name!r} must be >= 1, got {getattr(settings, name)}")
    if settings.workers < 0:
        raise ParameterError(f"setting 'workers' must be >= 0 (0: one per core), got {settings.workers}")
    if settings.large_index_min_segments < 0 or settings.retrain_growth <= 1:
        raise ParameterError("large_index_min_segments must be >= 0 and retrain_growth > 1")
    try:
        settings.large_index_factory.format(nlist=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ParameterError(f"large_index_factory {settings.large_index_factory!r}: the only placeholder is {{nlist}} ({exc})") from None
    if not 0 <= settings.min_confidence <= 1:
        raise ParameterError(f"min_confidence must be within 0..1, got {settings.min_confidence}")
    if settings.max_upload_mb <= 0:
        raise ParameterError(f"max_upload_mb must be > 0, got {settings.max_upload_mb}")
    if settings.segment_hop_s <= 0:
        raise ParameterError(f"segment_hop_s must be > 0 seconds, got {settings.segment_hop_s}")
    return settings


def default_config_file() -> Path | None:
    """``$AUDIO2VEC_CONFIG`` if set, else ``./config.yaml`` if it exists."""
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        return Path(env)
    here = Path("config.yaml")
    return here if here.is_file() else None


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Resolve the settings.

    Parameters
    ----------
    path : path-like, optional
        YAML file; default :func:`default_config_file`.
    **overrides
        Explicit values (e.g. from CLI options); ``None`` means "not given".
    """
    types = {f.name: type(f.default) for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = Path(path) if path is not None else default_config_file()
    if path is not None:
        if not path.is_file():
            raise ParameterError(f"config file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ParameterError(f"{path}: expected a mapping of settings")
        unknown = set(loaded) - set(types)
        if unknown:
            raise ParameterError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(types)}")
        values.update(loaded)
    for name in types:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(types)
    if unknown:
        raise ParameterError(f"unknown settings {sorted(unknown)}")
    return _validated(Settings(**{k: _coerce(k, v, types[k]) for k, v in values.items()}))
