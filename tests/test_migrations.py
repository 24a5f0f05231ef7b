"""The catalog's schema is versioned with Alembic: migrations build exactly the models' tables,
catalogs from before migrations are adopted (after a backup), newer ones are refused."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from search_engine import IndexMismatchError
from search_engine.catalog import Base, Catalog


def test_migrations_build_exactly_the_models_schema(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    assert catalog.revision() is None and catalog.needs_upgrade()
    assert catalog.upgrade() is None  # nothing to back up in a new catalog
    assert not catalog.needs_upgrade()
    with catalog.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    catalog.close()


def _first_release_tables(catalog: Catalog) -> None:
    """The tables as the first release made them: revision 0001, no alembic_version table."""
    from alembic import command

    cfg, _ = catalog._alembic()
    with catalog.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql("DROP TABLE alembic_version")


def test_catalog_from_before_migrations_is_backed_up_and_adopted(tmp_path):
    db = tmp_path / "c.sqlite"
    catalog = Catalog(f"sqlite:///{db}")
    _first_release_tables(catalog)
    with catalog.Session.begin() as s:
        Catalog.put_settings(s, {"generation": 7})
    assert catalog.revision() == "0001" and catalog.needs_upgrade()
    backup = catalog.upgrade()
    assert not catalog.needs_upgrade() and catalog.generation() == 7
    assert catalog.revision() == catalog._alembic()[1].get_current_head() and catalog.labelled()[1] == []
    with sqlite3.connect(backup) as old:
        assert old.execute("select value from settings where key='generation'").fetchone() == ("7",)
    catalog.close()


def test_catalog_from_a_newer_release_is_refused(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    catalog.upgrade()
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("update alembic_version set version_num = '9999'")
    with pytest.raises(IndexMismatchError, match="newer audio2vec"):
        catalog.needs_upgrade()
    catalog.close()


def test_revisions_read_from_file_names_are_alembics_chain():
    """Opening an index reads the revisions from the file names (no Alembic import): the same
    chain, in order, as Alembic's own."""
    from search_engine.migrations import revisions

    _, script = Catalog._alembic()
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions() == chain and revisions()[-1] == script.get_current_head()
