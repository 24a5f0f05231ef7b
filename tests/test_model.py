"""The bundled Audio2Vec model: loads offline, deterministic, unit-length vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search_engine.audio2vec import DEFAULT_MODEL_DIR
from search_engine.audio2vec.encoder import BUNDLED_DIR, ONNX_FILE, bundled_models
from search_engine.features import normalize_windows
from synth import tune


def test_bundled_models_are_complete_and_small():
    """Each bundled model is its config.json and the ONNX file made from its weights (one copy:
    no Keras files), and all of them together stay under 10 MB."""
    import onnxruntime as ort

    cfg = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert cfg["training"]["hours"] > 1.0
    for name, folder in bundled_models().items():
        model_id = json.loads((folder / "config.json").read_text())["model_id"]
        meta = ort.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"]).get_modelmeta()
        assert meta.custom_metadata_map["model_id"] == model_id, name
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", ONNX_FILE], name
    assert sum(p.stat().st_size for p in BUNDLED_DIR.rglob("*") if p.is_file()) <= 10 * 2**20


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


@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_runtime_vectors_equal_the_keras_vectors(name):
    """Every bundled model runs through ONNX Runtime, and the numpy forward pass (for folders
    without an ONNX file) and the Keras network (training), both given the weights read back from
    the ONNX file, give the same vectors to 1e-5."""
    from search_engine.audio2vec import Encoder
    from search_engine.audio2vec.forward import forward

    enc = Encoder.load(name)
    rng = np.random.default_rng(0)
    x = normalize_windows(rng.normal(-40.0, 15.0, size=(300, enc.features.window_frames, enc.features.n_mels)).astype(np.float32), top_db=80.0)
    keras = enc.keras_model().predict(x, batch_size=128, verbose=0)
    assert enc.backend == "onnxruntime"
    assert np.abs(enc.encode_windows(x, batch_size=128) - keras).max() < 1e-5
    assert np.abs(forward(enc.network(), x) - keras).max() < 1e-5


def test_a_stale_onnx_file_is_not_used(tmp_path):
    """A folder whose encoder.onnx was made from other weights runs the numpy forward pass."""
    import shutil

    from search_engine.audio2vec import Encoder
    from search_engine.audio2vec.encoder import ONNX_FILE

    from search_engine.audio2vec.encoder import WEIGHT_FILES
    from search_engine.audio2vec.model import build_encoder, build_projection, set_network_weights
    from search_engine.errors import ParameterError

    folder = tmp_path / "m"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    default = Encoder.load("default")
    enc, g = build_encoder(64, 64, default.architecture), build_projection(default.architecture)
    set_network_weights(enc, g, default.network())
    enc.save_weights(folder / WEIGHT_FILES["encoder"])  # the Keras files training writes
    g.save_weights(folder / WEIGHT_FILES["g"])
    shutil.copy(DEFAULT_MODEL_DIR.parent / "similar" / ONNX_FILE, folder / ONNX_FILE)
    stale = Encoder.load(folder)
    y = tune(3, 4.0)
    assert stale.backend == "numpy"
    assert np.abs(stale.embed(y, hop_frames=32).vectors - default.embed(y, hop_frames=32).vectors).max() < 1e-5
    for key in ("encoder", "g"):  # without Keras files, a stale ONNX file is refused, never run
        (folder / WEIGHT_FILES[key]).unlink()
    with pytest.raises(ParameterError, match="made from other weights"):
        Encoder.load(folder).embed(y, hop_frames=32)


def test_very_short_sounds_are_embedded(encoder, tmp_path):
    """A 19 ms hi-hat tick (shorter than one 32 ms STFT frame) and a 2-sample click give vectors."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    tick = (rng.standard_normal(304) * np.exp(-np.arange(304) / 60.0) * 0.5).astype(np.float32)  # 19 ms
    for y in (tick, np.array([0.5, -0.5], np.float32)):
        e = encoder.embed(y, hop_frames=32)
        assert e.vectors.shape == (1, encoder.dim) and np.isfinite(e.vectors).all()
    sf.write(tmp_path / "tick.wav", np.interp(np.arange(838) / 44100 * 16000, np.arange(304), tick), 44100)
    z = encoder.encode([tmp_path / "tick.wav", tick])  # whole-sound vectors
    assert z.shape == (2, encoder.similar.dim) and np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-3)
    assert np.linalg.norm(z[0] - z[1]) < 0.5  # the file and the waveform are the same tick
