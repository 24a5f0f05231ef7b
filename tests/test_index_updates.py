"""Adding, re-indexing, removing and failing mid-write keep rows and vectors in step."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from indexer import Indexer
from search_engine import SearchEngine
from search_engine.catalog import Segment
from synth import SR, tune


def _consistent(engine):
    with engine.catalog.Session() as s:
        seg_ids = set(s.scalars(select(Segment.id)))
    assert seg_ids == set(engine.segments.ids())
    assert engine.catalog.counts()["files"] == len(engine.wholes)


@pytest.fixture()
def lib(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(3):
        sf.write(root / f"t{i}.wav", tune(200 + i, 8.0), SR)
    return root


def test_reindex_skips_unchanged_and_reembeds_changed(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        first = Indexer(engine).add([lib], show_progress_bar=False)
        assert (first.added, first.unchanged) == (3, 0)
        again = Indexer(engine).add([lib], show_progress_bar=False)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
        new = tune(300, 9.0)
        sf.write(lib / "t1.wav", new, SR)
        os.utime(lib / "t1.wav", ns=(1, 1))
        changed = Indexer(engine).add([lib], show_progress_bar=False)
        assert (changed.updated, changed.unchanged) == (1, 2)
        _consistent(engine)
        m = engine.query((new[2 * SR : 6 * SR], SR), k=1)[0]
        assert m.path.endswith("t1.wav") and abs(m.offset_s - 2.0) <= 0.5
        assert engine.stats()["files"] == 3


def test_remove_deletes_rows_and_vectors(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib], show_progress_bar=False)
        removed = engine.remove([lib / "t0.wav"])
        assert [os.path.basename(p) for p in removed] == ["t0.wav"]
        _consistent(engine)
        assert engine.stats()["files"] == 2
        m = engine.query((tune(200, 8.0)[SR : 5 * SR], SR), k=5)
        assert all(not x.path.endswith("t0.wav") for x in m)
        assert len(engine.remove([lib])) == 2 and engine.stats()["files"] == 0
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.suffix == ".faiss") == ["files.3.faiss", "segments.3.faiss"]


def test_failure_mid_write_keeps_last_committed_state(tmp_path, lib, monkeypatch):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib / "t0.wav"], show_progress_bar=False)
        before = engine.stats()
        from search_engine.catalog import Catalog

        def boom(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Catalog, "put_settings", staticmethod(boom))
        with pytest.raises(OSError):
            Indexer(engine).add([lib], show_progress_bar=False)
        monkeypatch.undo()
        _consistent(engine)
        assert engine.stats()["files"] == before["files"]
    with SearchEngine.open(tmp_path / "idx") as engine:
        _consistent(engine)
        assert engine.stats()["generation"] == before["generation"]
        assert Indexer(engine).add([lib], show_progress_bar=False).added == 2


def test_bad_files_are_reported_and_skipped(tmp_path, lib):
    (lib / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (lib / "empty.mp3").write_bytes(b"")
    sf.write(lib / "quiet.flac", np.zeros(SR * 2, dtype=np.float32), SR)
    errors = []
    with SearchEngine.create(tmp_path / "idx") as engine:
        report = Indexer(engine, on_error=lambda p, m: errors.append(m)).add([lib], show_progress_bar=False)
        assert report.added == 3 and len(report.failed) == 3
        assert sorted(os.path.basename(p) for p, _ in report.failed) == ["broken.wav", "empty.mp3", "quiet.flac"]
        assert all("\n" not in m and str(lib) in m for m in errors)
        _consistent(engine)
        assert engine.stats()["files"] == 3


def test_moved_index_folder_still_opens(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib], show_progress_bar=False)
    shutil.move(tmp_path / "idx", tmp_path / "moved")
    with SearchEngine.open(tmp_path / "moved") as engine:
        assert engine.stats()["files"] == 3
        _consistent(engine)
