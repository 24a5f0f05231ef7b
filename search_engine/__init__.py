"""audio2vec: a search engine for sound.

The public API::

    from search_engine import SearchEngine
    engine = SearchEngine.open("data/index")
    for m in engine.query("clip.wav", k=5):
        print(m.path, m.distance, m.offset_s)

Heavy modules (TensorFlow, FAISS) load on first use, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Settings, load_config
from .errors import Audio2VecError, DecodeError, IndexLockedError, IndexMismatchError, IndexNotFoundError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from .engine import SearchEngine
    from .query import Match, QueryResult

__version__ = "0.1.0"

_LAZY = {"SearchEngine": "engine", "Match": "query", "QueryResult": "query"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Audio2VecError",
    "DecodeError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "Match",
    "ParameterError",
    "QueryResult",
    "SearchEngine",
    "Settings",
    "load_config",
    "__version__",
]
