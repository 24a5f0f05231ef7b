"""The FAISS wrapper: factory strings, ids, removal, exact reconstruction, atomic save."""

from __future__ import annotations

import numpy as np
import pytest

from search_engine.errors import ParameterError
from search_engine.vectors import VectorIndex


def _vectors(n, d=16, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("factory", ["IDMap2,Flat", "Flat"])
def test_add_search_remove_with_ids(factory):
    idx = VectorIndex.create(16, factory)
    v = _vectors(100)
    ids = np.arange(1000, 1100)
    idx.add(v, ids)
    dist, found = idx.search(v[:5], 3)
    assert list(found[:, 0]) == list(ids[:5])
    assert np.allclose(dist[:, 0], 0, atol=1e-3)
    assert set(idx.ids()) == set(ids)
    assert idx.remove(ids[:10]) == 10
    assert len(idx) == 90 and ids[0] not in set(idx.ids())


def test_index_without_removal_says_so():
    idx = VectorIndex.create(16, "HNSW8")
    idx.add(_vectors(20), np.arange(20))
    assert idx.search(_vectors(20)[:1], 1)[1][0, 0] == 0
    with pytest.raises(ParameterError, match="cannot remove"):
        idx.remove(np.arange(3))


def test_reconstruct_is_exact_for_flat():
    idx = VectorIndex.create(16, "IDMap2,Flat")
    v = _vectors(10)
    idx.add(v, np.arange(50, 60))
    assert np.array_equal(idx.reconstruct(np.array([53, 51])), v[[3, 1]])


def test_euclidean_distances():
    idx = VectorIndex.create(2, "IDMap2,Flat")
    idx.add(np.array([[0, 0], [3, 4]], dtype=np.float32), np.array([1, 2]))
    dist, ids = idx.search(np.array([[0, 0]], dtype=np.float32), 2)
    assert list(ids[0]) == [1, 2] and np.allclose(dist[0], [0, 5])


def test_bad_factory_is_a_parameter_error():
    with pytest.raises(ParameterError, match="index_factory"):
        VectorIndex.create(16, "NoSuchIndex")


def test_atomic_save_and_load(tmp_path):
    idx = VectorIndex.create(16, "IDMap2,Flat")
    idx.add(_vectors(20), np.arange(20))
    path = tmp_path / "v.faiss"
    idx.save(path)
    idx.add(_vectors(5, seed=1), np.arange(20, 25))
    idx.save(path)
    back = VectorIndex.load(path, "IDMap2,Flat")
    assert len(back) == 25
    assert [p.name for p in tmp_path.iterdir()] == ["v.faiss"]  # no temp files left
