"""The segment index changes type with the library's size; exact vectors stay on disk."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from indexer import Indexer
from search_engine import SearchEngine
from search_engine.config import Settings
from search_engine.errors import ParameterError
from search_engine.vectors import VectorIndex, VectorStore, choose_factory, nlist_for
from synth import SR, tune

SMALL = dict(large_index_factory="IVF{nlist},PQ8x4", large_index_min_segments=120, nprobe=4, retrain_growth=2.0)


def _library(root, n, seconds=20.0, seed=0):
    root.mkdir(exist_ok=True)
    for i in range(n):
        sf.write(root / f"t{seed + i}.wav", tune(500 + seed + i, seconds), SR)
    return root


def test_nlist_grows_with_the_library_and_respects_training_needs():
    assert nlist_for(1_000_000) == 4096
    assert nlist_for(100_000) == 1024
    assert nlist_for(200) <= 200 // 39
    assert nlist_for(10) == 1


def test_choose_factory_switches_retrains_and_falls_back():
    s = Settings(**SMALL)
    flat = s.index_factory
    assert choose_factory(100, s, active=flat, trained_on=0) is None
    assert choose_factory(120, s, active=flat, trained_on=0) == "IVF2,PQ8x4"
    assert choose_factory(200, s, active="IVF2,PQ8x4", trained_on=120) is None  # grown < 2x
    assert choose_factory(240, s, active="IVF2,PQ8x4", trained_on=120) == "IVF4,PQ8x4"
    assert choose_factory(50, s, active="IVF4,PQ8x4", trained_on=240) == flat
    with pytest.raises(ParameterError):
        Settings().replace(large_index_factory="IVF{n},PQ8")


def test_store_appends_cuts_leftovers_and_maps_the_committed_prefix(tmp_path):
    store = VectorStore(tmp_path / "s.vectors", 4)
    store.write(0, np.ones((3, 4)))
    store.write(3, 2 * np.ones((2, 4)))
    store.write(5, 9 * np.ones((4, 4)))  # an interrupted writer's rows, never committed
    store.write(5, 3 * np.ones((1, 4)))  # the next writer starts at the committed end
    assert store.rows_on_disk() == 6
    assert store.map(6) and not store.map(7)
    assert store.map(6)
    assert np.array_equal(store[[5, 0, 3]][:, 0], [3, 1, 2])


def test_library_past_the_threshold_gets_a_trained_ivf_pq_index_and_still_matches(tmp_path):
    lib = _library(tmp_path / "lib", 4)  # 4 x 20 s: about 150 segments
    with SearchEngine.create(tmp_path / "idx", **SMALL) as engine:
        Indexer(engine).add([lib / "t0.wav", lib / "t1.wav"])
        assert engine.segments.is_flat and len(engine.segments) < 120
        Indexer(engine).add([lib])
        n = len(engine.segments)
        assert n >= 120 and not engine.segments.is_flat
        info = engine.stats()
        assert info["index_factory"] == f"IVF{nlist_for(n)},PQ8x4" and info["index_type"]["nprobe"] == min(4, nlist_for(n))
        assert info["bytes_per_segment"] < 64 and info["exact_store_bytes"] >= n * 64 * 4
        report = engine.check()
        assert report["ok"], report["problems"]
        y = tune(502, 20.0)
        m = engine.query((y[5 * SR : 10 * SR], SR), k=1)[0]
        assert m.path.endswith("t2.wav") and abs(m.offset_s - 5.0) <= 0.5
        assert m.distance < 0.3  # scored with the exact vectors, not the PQ codes
    with SearchEngine.open(tmp_path / "idx", **SMALL) as reopened:  # the type survives a reopen
        assert reopened.stats()["index_factory"] == info["index_factory"]
        removed = reopened.remove([lib / "t1.wav", lib / "t2.wav", lib / "t3.wav"])
        assert len(removed) == 3 and reopened.segments.is_flat  # shrank below half the threshold
        assert reopened.check()["ok"]


def test_an_index_made_before_the_store_gets_it_on_the_next_write(tmp_path):
    lib = _library(tmp_path / "lib", 2, seconds=8.0)
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib / "t0.wav"])
        before = engine.segment_vectors(np.arange(len(engine.segments)))
    os.unlink(tmp_path / "idx" / "segments.vectors")  # as an index from before the store
    with SearchEngine.open(tmp_path / "idx") as engine:
        assert engine.check()["ok"]  # a flat index without a store is still whole
        assert np.array_equal(engine.segment_vectors(np.arange(len(before))), before)  # read from FAISS
        Indexer(engine).add([lib])
        assert engine.store.rows_on_disk() == len(engine.segments)
        assert np.array_equal(engine.store[np.arange(len(before))], before)
        assert engine.check()["ok"]


def test_check_finds_a_store_that_disagrees_with_the_index(tmp_path):
    lib = _library(tmp_path / "lib", 1, seconds=8.0)
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([lib])
        with open(tmp_path / "idx" / "segments.vectors", "r+b") as f:
            f.write(np.full(64, 0.5, np.float32).tobytes())
        assert "disagree" in " ".join(engine.check()["problems"])


def test_build_trains_on_the_given_vectors_and_keeps_ids():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((2000, 16)).astype(np.float32)
    ids = np.arange(2000, dtype=np.int64) * 3
    rows = lambda i: v[np.asarray(i) // 3]  # noqa: E731
    idx = VectorIndex.build(16, "IVF16,PQ4", ids, rows, nprobe=16)
    assert len(idx) == 2000 and sorted(idx.ids()) == list(ids)
    _, found = idx.search(v[:50], 1)
    assert (found[:, 0] == ids[:50]).mean() > 0.5


def test_an_index_that_cannot_be_trained_yet_keeps_the_exact_one(tmp_path):
    lib = _library(tmp_path / "lib", 4)
    settings = {**SMALL, "large_index_factory": "IVF{nlist},PQ8"}  # 256 centroids: more than the vectors
    with SearchEngine.create(tmp_path / "idx", **settings) as engine:
        with pytest.warns(UserWarning, match="kept the IDMap2,Flat index"):
            report = Indexer(engine).add([lib])
        assert report.added == 4 and engine.segments.is_flat and engine.check()["ok"]
