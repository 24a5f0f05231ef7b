"""Training objectives: degraded views keep their timing, samplers give aligned pairs, every
objective trains the same encoder shape into a loadable model, and training resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from search_engine.audio2vec import Encoder
from search_engine.audio2vec.objectives import ContextSampler, PairSampler
from search_engine.audio2vec.train import TrainConfig, train
from search_engine.audio2vec.views import add_noise, random_eq, spec_mask, waveform_views
from search_engine.features import FeatureSettings, log_mel
from synth import SR, tune


def _power(y):
    return np.power(10.0, log_mel(y, settings=FeatureSettings()) / 10.0, dtype=np.float32)


def test_views_keep_the_timing_they_claim():
    y = tune(7, 12.0)
    views = {v.name: v for v in waveform_views(y, sr=SR, rng=np.random.default_rng(0))}
    assert set(views) == {"mp3", "room", "speed", "tempo"}
    for v in views.values():
        assert np.isfinite(v.y).all() and v.y.dtype == np.float32
        assert abs(len(v.y) - len(y) / v.rate) <= 0.01 * len(y)  # length follows the time scale
        assert 0.93 <= v.rate <= 1.07
    assert views["mp3"].rate == views["room"].rate == 1.0
    # the codec view is aligned with the original: correlation peaks at lag 0
    a, b = y[SR : 5 * SR], views["mp3"].y[SR : 5 * SR]
    assert np.corrcoef(a, b)[0, 1] > 0.5


def test_mel_degradations_change_windows_as_documented():
    rng = np.random.default_rng(1)
    clean = _power(tune(3, 4.0))[None, :64].repeat(4, axis=0)
    noise = [_power(rng.standard_normal(SR * 3).astype(np.float32))]
    noisy = add_noise(clean.copy(), noise, snr_db=(0.0, 0.0), rng=rng)
    added = noisy - clean
    assert np.allclose(added.sum(axis=(1, 2)), clean.sum(axis=(1, 2)), rtol=1e-3)  # 0 dB: equal power
    eq = random_eq(clean.copy(), max_db=6.0, rng=rng)
    gain_db = 10 * np.log10(eq / clean)
    assert np.abs(gain_db).max() <= 6.0 + 1e-3 and np.abs(gain_db).max() > 1.0
    x = spec_mask(np.ones((3, 64, 64), np.float32), max_frames=6, max_bands=6, rng=rng)
    assert ((x == 0).sum(axis=(1, 2)) <= 6 * 64 + 6 * 64).all()


def test_pair_sampler_pairs_the_same_moment():
    cfg = TrainConfig(clean_view_probability=1.0, noise_probability=0.0, jitter_frames=0)
    mels = [_power(tune(i, 10.0)) for i in range(3)]
    s = PairSampler([(m, []) for m in mels], [mels[0]], cfg, np.random.default_rng(0))
    a, p = s.batch(8)
    assert a.shape == p.shape == (8, 64, 64) and a.dtype == np.float32
    # only EQ and masks touch the positives here: each one is nearest its own anchor
    d = ((a[:, None] - p[None]) ** 2).sum(axis=(2, 3))
    assert (d.argmin(axis=1) == np.arange(8)).all()


def test_context_sampler_cuts_neighbours_around_the_centre():
    cfg = TrainConfig(objective="cbow")
    s = ContextSampler([_power(tune(1, 8.0))], cfg, np.random.default_rng(0))
    neighbours, centre = s.batch(4)
    assert neighbours.shape == (4, 4, 64, 64) and centre.shape == (4, 64, 64)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    for i in range(4):
        sf.write(root / f"t{i}.wav", tune(40 + i, 12.0), SR)
    return root


@pytest.mark.parametrize("objective", ["contrastive", "cbow", "autoencoder"])
def test_each_objective_trains_a_loadable_model_of_the_same_shape(tmp_path, train_dir, objective):
    cfg = TrainConfig(objective=objective, epochs=1, steps_per_epoch=2, batch_size=8, projection_windows=256)
    out = train([train_dir], out=tmp_path / "m", config=cfg, verbose=0, log=lambda m: None)
    record = json.loads((out / "config.json").read_text())
    assert record["objective"] == objective
    enc = Encoder.load(out)
    v = enc.embed(tune(50, 3.0), hop_frames=32).vectors
    assert v.shape[1] == enc.dim == 64 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert not (out / "checkpoints").exists()  # finished: checkpoints removed
    assert (out / "decoder.weights.h5").exists() == (objective != "contrastive")


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, train_dir):
    import keras

    cfg = TrainConfig(objective="contrastive", epochs=3, steps_per_epoch=2, batch_size=8)

    class Crash(keras.callbacks.Callback):  # dies after the first epoch's checkpoint
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train([train_dir], out=tmp_path / "m", config=cfg, verbose=0, log=lambda m: None, callbacks=[Crash()])
    assert (tmp_path / "m" / "checkpoints").exists()
    out = train([train_dir], out=tmp_path / "m", config=cfg, verbose=0, resume=True, log=lambda m: None)
    epochs = (out / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in epochs] == [0, 1, 2]  # epoch 0 once, then 1 and 2
    Encoder.load(out)


def test_an_unknown_objective_is_refused_before_any_work(tmp_path, train_dir):
    from search_engine.errors import ParameterError

    with pytest.raises(ParameterError, match="unknown objective 'triplet'"):
        train([train_dir], out=tmp_path / "m", config=TrainConfig(objective="triplet"), verbose=0, log=lambda m: None)
    assert not (tmp_path / "m").exists()
