"""The bundled Audio2Vec model: loads offline, deterministic, unit-length vectors."""

from __future__ import annotations

import json

import numpy as np

from search_engine.audio2vec import DEFAULT_MODEL_DIR
from search_engine.audio2vec.encoder import weights_id
from synth import tune


def test_bundled_model_is_complete_and_small():
    cfg = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert cfg["model_id"] == weights_id(DEFAULT_MODEL_DIR)
    assert cfg["training"]["hours"] > 1.0
    assert sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()) < 8 * 2**20


def test_inference_is_deterministic_and_normalised(encoder):
    y = tune(21, 6.0)
    a = encoder.embed(y, hop_frames=8)
    b = encoder.embed(y, hop_frames=8)
    assert np.array_equal(a.vectors, b.vectors)
    assert np.allclose(np.linalg.norm(a.vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.diff(a.starts_s), 8 * encoder.features.frame_s)


def test_vectors_of_the_same_window_under_noise_stay_near(encoder):
    from synth import add_noise

    y = tune(22, 6.0)
    clean = encoder.embed(y, hop_frames=32).vectors
    noisy = encoder.embed(add_noise(y, snr_db=10), hop_frames=32).vectors
    other = encoder.embed(tune(23, 6.0), hop_frames=32).vectors
    same = np.linalg.norm(clean - noisy, axis=1).mean()
    diff = np.linalg.norm(clean - other, axis=1).mean()
    assert same < diff
