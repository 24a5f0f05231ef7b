"""Alembic migrations of the catalog schema.

Every change to the tables in :mod:`search_engine.catalog` comes with a revision in ``versions/``;
:meth:`search_engine.catalog.Catalog.upgrade` applies the missing ones when an index is opened.
To write a new one after changing the models::

    alembic -x url=sqlite:///path/to/catalog.sqlite -c search_engine/migrations/alembic.ini revision --autogenerate -m "what changed"

(``tests/test_migrations.py`` fails while the migrations and the models disagree.)
"""

from pathlib import Path

#: the revision files: ``versions/NNNN_what.py`` holds revision ``"NNNN"`` (its down_revision is the one before)
_VERSIONS = Path(__file__).parent / "versions"


def revisions() -> list[str]:
    """This code's catalog revisions, oldest first; the last is the head. Read from the file names,
    so that opening an index does not import Alembic (``tests/test_migrations.py`` checks that
    Alembic sees the same chain)."""
    return sorted(p.name.split("_", 1)[0] for p in _VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
