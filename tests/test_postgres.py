"""A PostgreSQL catalog (``catalog_url: postgresql+psycopg://...``) on a real server that the tests
start themselves (tests/pgserver.py): every command works on it, no catalog.sqlite is written,
the schema is the models' (Alembic), and the writer lock holds across processes that share only
the database (an advisory lock), even when its holder is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import distributed
import numpy as np
import pytest
import soundfile as sf
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from indexer import Indexer
from search_engine import IndexLockedError, SearchEngine
from search_engine.catalog import Base, Catalog
from search_engine.cli import app
from synth import SR, tune

runner = CliRunner()


def test_migrations_build_exactly_the_models_schema_on_postgres(postgres):
    catalog = Catalog(postgres.create_database())
    assert catalog.engine.dialect.name == "postgresql"
    assert catalog.revision() is None and catalog.needs_upgrade()
    assert catalog.upgrade() is None  # no file to back up
    assert not catalog.needs_upgrade() and catalog.revision() == catalog._alembic()[1].get_current_head()
    with catalog.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    catalog.close()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_command_on_a_postgres_catalog(postgres, library, engine, tmp_path, monkeypatch):
    """index, query, label, classify, stats, check, remove through AUDIO2VEC_CATALOG_URL: the
    answers are the SQLite index's (``engine``: the same library), and no SQLite file appears."""
    url = postgres.create_database()
    monkeypatch.setenv("AUDIO2VEC_CATALOG_URL", url)
    folder = tmp_path / "index"
    lib = os.path.dirname(next(iter(library)))
    summary = _json(runner.invoke(app, ["index", lib, "--index", str(folder), "--json", "--workers", "1"]))
    assert summary["added"] == len(library) and summary["index"]["catalog"] == url
    paths = list(library)
    clip = tmp_path / "clip.wav"
    sf.write(clip, library[paths[3]][4 * SR : 9 * SR], SR)
    line = _json(runner.invoke(app, ["query", str(clip), "--index", str(folder), "--json", "-k", "3"]))
    assert line["matched"] and line["results"][0]["path"] == paths[3]
    [expected] = engine.query_batch([str(clip)], k=3)
    assert [r["path"] for r in line["results"]] == [m.path for m in expected.matches]
    assert np.allclose([r["distance"] for r in line["results"]], [m.distance for m in expected.matches], atol=1e-5)

    result = runner.invoke(app, ["label", paths[3], paths[1], "--label", "kept", "--index", str(folder)])
    assert result.exit_code == 0 and "labelled 2 files" in result.stderr
    runner.invoke(app, ["label", *paths[4:], "--label", "other", "--index", str(folder)])
    answer = _json(runner.invoke(app, ["classify", str(clip), "--index", str(folder), "--json", "-k", "1"]))
    assert answer["label"] == "kept" and answer["neighbours"][0]["path"] == paths[3]

    stats = _json(runner.invoke(app, ["stats", "--index", str(folder), "--json"]))
    assert stats["files"] == len(library) and stats["catalog"].startswith("postgresql+psycopg://")
    assert _json(runner.invoke(app, ["check", "--index", str(folder), "--json"]))["ok"]
    removed = _json(runner.invoke(app, ["remove", paths[0], "--index", str(folder), "--json"]))
    assert removed["removed"] == [paths[0]]
    assert _json(runner.invoke(app, ["stats", "--index", str(folder), "--json"]))["files"] == len(library) - 1
    assert _json(runner.invoke(app, ["check", "--index", str(folder), "--json"]))["ok"]
    assert not list(tmp_path.rglob("*.sqlite*")), "a PostgreSQL catalog writes no SQLite file"
    # the rows are in PostgreSQL: a catalog opened on the URL alone sees them, labels included
    catalog = Catalog(url)
    assert sorted(catalog.labelled()[1]) == ["kept", "kept", "other", "other"] and catalog.counts()["files"] == len(library) - 1
    catalog.close()


_HOLD = """
import sys, time
from search_engine.catalog import Catalog
from search_engine.locks import AdvisoryLock
lock = AdvisoryLock(Catalog(sys.argv[1]).engine)
lock.acquire(timeout=0)
print("held", flush=True)
time.sleep(600)
"""


def test_writer_lock_holds_across_machines_and_dies_with_its_holder(postgres, tmp_path):
    """Two engines that share only the database (each its own folder, as on two machines, where
    lock files could not see each other): one writes, the other is refused at once; a holder
    killed with -9 leaves no stale lock."""
    url = postgres.create_database()
    with SearchEngine.create(tmp_path / "a", catalog_url=url) as a, SearchEngine.open(tmp_path / "b", catalog_url=url) as b:
        assert not (tmp_path / "a" / "index.lock").exists()
        with a.writing():
            with a.writing():  # re-entrant
                pass
            with pytest.raises(IndexLockedError, match="advisory lock"):
                with b.writing():
                    pass
        with b.writing():  # free again once released
            with pytest.raises(IndexLockedError):
                with a.writing():
                    pass

        holder = subprocess.Popen([sys.executable, "-c", _HOLD, url], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(IndexLockedError):
                with a.writing():
                    pass
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        deadline = time.monotonic() + 20  # the server notices the dropped connection
        while True:
            try:
                with a.writing():
                    break
            except IndexLockedError:
                assert time.monotonic() < deadline, "the killed holder's lock was never released"
                time.sleep(0.2)


def test_dask_workers_index_into_one_postgres_catalog_read_by_another_host(postgres, tmp_path):
    """Two Dask worker processes decode and embed, the writer stores into PostgreSQL; a second
    engine (a query host sharing the vector folder) sees every file."""
    url = postgres.create_database()
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(4):
        sf.write(lib / f"t{i}.wav", tune(400 + i, 6.0), SR)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, SearchEngine.create(tmp_path / "index", catalog_url=url) as writer, \
            SearchEngine.open(tmp_path / "index", catalog_url=url) as reader:
        assert len(reader.segments) == 0
        report = Indexer(writer, client=client).add([lib])
        assert report.added == 4 and not report.failed and writer.check()["ok"]
        found = reader.query((tune(402, 6.0)[SR : 5 * SR], SR), k=1)  # refresh() catches up with the commit
        assert found[0].path.endswith("t2.wav") and found[0].matched
    assert not list(tmp_path.rglob("*.sqlite*"))


def test_a_read_transaction_is_one_committed_state(postgres):
    """As with SQLite's WAL, the SELECTs of one read session see one commit (REPEATABLE READ):
    ``snapshot()`` cannot pair one generation's settings with another's file blocks."""
    url = postgres.create_database()
    reader, writer = Catalog(url), Catalog(url)
    reader.upgrade()
    with writer.Session.begin() as s:
        Catalog.put_settings(s, {"generation": 1})
    with reader.Session() as s:
        assert reader.settings(s)["generation"] == 1
        with writer.Session.begin() as w:
            Catalog.put_settings(w, {"generation": 2})
        assert reader.settings(s)["generation"] == 1  # still the state the session began with
    assert reader.generation() == 2
    reader.close()
    writer.close()


def test_a_query_host_with_the_wrong_vector_folder_is_told_so(postgres, library, tmp_path):
    url = postgres.create_database()
    with SearchEngine.create(tmp_path / "shared", catalog_url=url) as writer:
        Indexer(writer, workers=1).add([next(iter(library))])
    result = runner.invoke(app, ["query", next(iter(library)), "--index", str(tmp_path / "local"), "--catalog-url", url])
    assert result.exit_code == 1 and "--index must name the folder its writer keeps the vector files in" in result.stderr
