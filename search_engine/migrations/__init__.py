"""Alembic migrations of the catalog schema.

Every change to the tables in :mod:`search_engine.catalog` comes with a revision in ``versions/``;
:meth:`search_engine.catalog.Catalog.upgrade` applies the missing ones when an index is opened.
To write a new one after changing the models::

    alembic -x url=sqlite:///path/to/catalog.sqlite -c search_engine/migrations/alembic.ini revision --autogenerate -m "what changed"

(``tests/test_migrations.py`` fails while the migrations and the models disagree.)
"""
