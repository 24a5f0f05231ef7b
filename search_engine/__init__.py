"""audio2vec: a search engine for sound.

The public API::

    from search_engine import SearchEngine
    engine = SearchEngine.open("data/index")
    for m in engine.query("clip.wav", k=5):
        print(m.path, m.distance, m.offset_s)

Heavy modules (TensorFlow, FAISS) load on first use, so importing this package is cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# OpenMP threads (FAISS) that busy-wait after a search take the cores from TensorFlow's next call:
# a 3 s query took 39 ms instead of 32 ms on 2 cores. Read when OpenMP loads, so set it first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
