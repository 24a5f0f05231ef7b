"""Building an index: walk a library, decide what changed, decode and embed, store in batches.

``indexer`` uses ``search_engine``; ``search_engine`` never imports ``indexer``.
"""

from .indexer import Indexer, IndexReport

__all__ = ["Indexer", "IndexReport"]
