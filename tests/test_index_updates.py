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
    report = engine.check()
    assert report["ok"], report["problems"]
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
        first = Indexer(engine).add([lib])
        assert (first.added, first.unchanged) == (3, 0)
        again = Indexer(engine).add([lib])
        assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
        new = tune(300, 9.0)
        sf.write(lib / "t1.wav", new, SR)
        os.utime(lib / "t1.wav", ns=(1, 1))
        changed = Indexer(engine).add([lib])
        assert (changed.updated, changed.unchanged) == (1, 2)
        _consistent(engine)
        m = engine.query((new[2 * SR : 6 * SR], SR), k=1)[0]
        assert m.path.endswith("t1.wav") and abs(m.offset_s - 2.0) <= 0.5
        assert engine.stats()["files"] == 3


def test_remove_deletes_rows_and_vectors(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib])
        removed = engine.remove([lib / "t0.wav"])
        assert [os.path.basename(p) for p in removed] == ["t0.wav"]
        _consistent(engine)
        assert engine.stats()["files"] == 2
        m = engine.query((tune(200, 8.0)[SR : 5 * SR], SR), k=5)
        assert all(not x.path.endswith("t0.wav") for x in m)
        assert len(engine.remove([lib])) == 2 and engine.stats()["files"] == 0
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.suffix == ".faiss") == ["files.3.faiss", "segments.3.faiss"]


def _disk_full(*a, **k):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["vectors", "catalog"])
def test_failure_mid_write_keeps_last_committed_state(tmp_path, lib, monkeypatch, where):
    from search_engine.catalog import Catalog
    from search_engine.vectors import VectorIndex

    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib / "t0.wav"])
        before = engine.stats()
        if where == "vectors":  # the disk fills while the new vector files are written
            real_save = VectorIndex.save
            monkeypatch.setattr(VectorIndex, "save", lambda self, path: (real_save(self, path), _disk_full()))
        else:  # the catalog commit fails after the vector files were written
            monkeypatch.setattr(Catalog, "put_settings", staticmethod(_disk_full))
        with pytest.raises(OSError):
            Indexer(engine).add([lib])
        monkeypatch.undo()
        _consistent(engine)
        assert engine.stats()["files"] == before["files"]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if ".faiss" in p.name) == ["files.1.faiss", "segments.1.faiss"]
    with SearchEngine.open(tmp_path / "idx") as engine:
        _consistent(engine)
        assert engine.stats()["generation"] == before["generation"]
        assert Indexer(engine).add([lib]).added == 2


def test_bad_files_are_reported_and_skipped(tmp_path, lib):
    (lib / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (lib / "empty.mp3").write_bytes(b"")
    sf.write(lib / "quiet.flac", np.zeros(SR * 2, dtype=np.float32), SR)
    errors = []
    with SearchEngine.create(tmp_path / "idx") as engine:
        report = Indexer(engine, on_error=lambda p, m: errors.append(m)).add([lib])
        assert report.added == 3 and len(report.failed) == 3
        assert sorted(os.path.basename(p) for p, _ in report.failed) == ["broken.wav", "empty.mp3", "quiet.flac"]
        assert all("\n" not in m and str(lib) in m for m in errors)
        _consistent(engine)
        assert engine.stats()["files"] == 3


def test_moved_index_folder_still_opens(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib])
    shutil.move(tmp_path / "idx", tmp_path / "moved")
    with SearchEngine.open(tmp_path / "moved") as engine:
        assert engine.stats()["files"] == 3
        _consistent(engine)


def test_touched_moved_and_copied_files_are_not_embedded_again(tmp_path, lib, monkeypatch):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib])
        ids = {os.path.basename(f.path): f.id for f in engine.catalog.files_under(str(lib))}
        gen = engine.generation

        def no_embedding(*a, **k):
            raise AssertionError("embedded again")

        monkeypatch.setattr(engine, "embed", no_embedding)
        os.utime(lib / "t0.wav", ns=(5, 5))  # same bytes, new mtime
        os.rename(lib / "t1.wav", lib / "renamed.wav")
        shutil.copy(lib / "t2.wav", lib / "copy.wav")
        report = Indexer(engine).add([lib])
        assert (report.unchanged, report.moved, report.copied, report.added, report.updated) == (2, 1, 1, 0, 0)
        after = {os.path.basename(f.path): f for f in engine.catalog.files_under(str(lib))}
        assert sorted(after) == ["copy.wav", "renamed.wav", "t0.wav", "t2.wav"]
        assert after["renamed.wav"].id == ids["t1.wav"] and after["t0.wav"].mtime_ns == 5
        assert engine.generation == gen + 1  # only the copy wrote vectors
        _consistent(engine)
        aligned = slice(int(1.024 * SR), int(5.024 * SR))  # starts on a segment boundary
        both = {os.path.basename(m.path) for m in engine.query((tune(202, 8.0)[aligned], SR), k=2)}
        assert both == {"t2.wav", "copy.wav"}
        m = engine.query((tune(201, 8.0)[aligned], SR), k=1)[0]
        assert m.path.endswith("renamed.wav") and m.distance < 0.1


def test_prune_drops_vanished_files_only_when_asked(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib])
        (lib / "t0.wav").unlink()
        kept = Indexer(engine).add([lib])
        assert (kept.missing, kept.pruned, engine.stats()["files"]) == (1, 0, 3)
        pruned = Indexer(engine).add([lib], prune=True)
        assert (pruned.missing, pruned.pruned, pruned.unchanged) == (1, 1, 2)
        assert engine.stats()["files"] == 2
        _consistent(engine)


def test_check_finds_a_vector_without_a_row(tmp_path, lib):
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib / "t0.wav"])
        engine.segments.add(np.zeros((1, engine.encoder.dim), np.float32), np.array([10**6]))
        engine.segments.remove(np.array([0]))
        engine._save_vectors(engine.generation)
        problems = engine.check()["problems"]
    assert any("vector but no row" in p and "1000000" in p for p in problems)
    assert any("row but no vector" in p for p in problems)


def test_second_writer_is_refused_while_readers_go_on(tmp_path, lib):
    from search_engine import IndexLockedError

    with SearchEngine.create(tmp_path / "idx") as writer, SearchEngine.open(tmp_path / "idx") as other:
        with writer.writing():
            Indexer(writer).add([lib / "t0.wav"])
            with pytest.raises(IndexLockedError, match="another process"):
                Indexer(other).add([lib])
            # a reader sees the committed file without reopening
            assert other.query((tune(200, 8.0)[SR : 5 * SR], SR), k=1)[0].path.endswith("t0.wav")
        assert Indexer(other).add([lib]).added == 2
        assert writer.query((tune(202, 8.0)[SR : 5 * SR], SR), k=1)[0].path.endswith("t2.wav")


def test_workers_give_the_same_index_as_one_process(tmp_path, lib):
    (lib / "bad.wav").write_text("not audio\n" * 10)
    vectors = []
    for workers in (1, 2):
        errors = []
        with SearchEngine.create(tmp_path / f"idx{workers}") as engine:
            report = Indexer(engine, workers=workers, on_error=lambda p, m: errors.append(m)).add([lib])
            assert report.added == 3 and [os.path.basename(p) for p, _ in report.failed] == ["bad.wav"]
            assert len(errors) == 1 and "not a readable audio file" in errors[0]
            _consistent(engine)
            files = sorted(engine.catalog.files_under(str(lib)), key=lambda f: f.path)
            vectors.append(np.concatenate([engine.segments.reconstruct(f.first_segment_id + np.arange(f.n_segments)) for f in files]))
    # the spectrogram's matrix products may sum in another order in another process (BLAS threads)
    assert np.allclose(vectors[0], vectors[1], atol=1e-5)
