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
from search_engine.audio2vec.views import add_noise, band_shift, random_eq, random_lowpass, spec_mask, waveform_views
from search_engine.features import FeatureSettings, log_mel
from synth import SR, tune


def _power(y):
    return np.power(10.0, log_mel(y, settings=FeatureSettings()) / 10.0, dtype=np.float32)


@pytest.mark.parametrize("varied", [False, True])
def test_views_keep_the_timing_they_claim(varied):
    y = tune(7, 12.0)
    views = {v.name: v for v in waveform_views(y, sr=SR, rng=np.random.default_rng(0), codecs=("mp3", "aac"), varied=varied)}
    assert set(views) == {"codec", "room", "speed", "tempo"} | ({"pitch", "chain"} if varied else set())
    for v in views.values():
        assert np.isfinite(v.y).all() and v.y.dtype == np.float32
        assert abs(len(v.y) - len(y) / v.rate) <= 0.01 * len(y)  # length follows the time scale
        assert (0.91 if varied else 0.93) <= v.rate <= (1.09 if varied else 1.07)
    assert views["codec"].rate == views["room"].rate == 1.0
    # the codec view is aligned with the original: correlation peaks at lag 0
    a, b = y[SR : 5 * SR], views["codec"].y[SR : 5 * SR]
    assert np.corrcoef(a, b)[0, 1] > 0.5
    if varied:  # pitch moved, tempo kept: same length, the spectrum's peak moved
        assert views["pitch"].rate == 1.0 and len(views["pitch"].y) == len(y)
        peak = lambda x: np.argmax(np.abs(np.fft.rfft(x[SR : 5 * SR])))  # noqa: E731
        assert peak(views["pitch"].y) != peak(y)
    assert not waveform_views(y, sr=SR, rng=np.random.default_rng(0), codecs=())[0].name == "codec"


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
    ramp = np.broadcast_to(np.arange(1, 65, dtype=np.float32), (8, 64, 64)).copy()  # band b has power b + 1
    shifted = band_shift(ramp.copy(), max_bands=3, rng=rng)
    moved = shifted[:, 0, 10] - ramp[:, 0, 10]  # the whole spectrum moved by a whole number of bands
    assert np.all(np.abs(moved) <= 3) and np.any(moved != 0)
    assert np.allclose(shifted[:, :, 10:50] - ramp[:, :, 10:50], moved[:, None, None])
    dull = random_lowpass(ramp.copy(), lowest_band=32, rng=rng)
    assert np.allclose(dull[:, :, :32], ramp[:, :, :32]) and (dull[:, :, -1] < ramp[:, :, -1]).any()


def test_a_noise_recording_shorter_than_a_window_is_looped_not_skipped(tmp_path):
    from search_engine.audio2vec.train import _power_mels

    f = FeatureSettings()
    click = np.zeros(int(0.3 * SR), np.float32)
    click[:200] = 0.5  # a 0.3 s sound: a click, then silence
    sf.write(tmp_path / "click.wav", click, SR)
    sf.write(tmp_path / "tune.wav", tune(3, 2.0), SR)
    files = [tmp_path / "click.wav", tmp_path / "tune.wav"]
    said = []
    mels, names, _ = _power_mels(files, f, said.append)
    assert names == [str(files[1])] and any("click.wav: shorter than one window" in s for s in said)
    mels, names, seconds = _power_mels(files, f, said.append, loop_short=True)
    assert names == [str(p) for p in files] and len(mels[0]) >= f.window_frames
    hop_frames = int(0.3 * SR) // f.hop_length  # the click comes back every 0.3 s
    loud = mels[0].sum(axis=1)
    assert loud[0] > 100 * np.median(loud) and loud[hop_frames] > 100 * np.median(loud)
    assert seconds == pytest.approx(2.3) and said[-1] == "1 file(s) shorter than one window repeated to fill one"  # the click's own 0.3 s


def test_pitched_noise_is_a_tone_with_its_harmonics_at_one_pitch_at_a_time():
    from search_engine.audio2vec.train import pitched_noise

    beds = [pitched_noise(np.random.default_rng(seed), sr=SR, seconds=4.0) for seed in range(12)]
    assert all(b.shape == (4 * SR,) and b.dtype == np.float32 and np.abs(b).max() == pytest.approx(1.0) for b in beds)
    assert not np.array_equal(beds[0], beds[1])
    def top_bins_share(y):  # median over sounding 64 ms frames of the power share in the 40 strongest FFT bins
        frames = y[: len(y) // 1024 * 1024].reshape(-1, 1024)
        power = np.abs(np.fft.rfft(frames * np.hanning(1024), axis=1)) ** 2
        sounding = power.sum(axis=1) > 1e-3 * power.sum(axis=1).max()
        top = np.sort(power[sounding], axis=1)[:, ::-1]
        return np.median(top[:, :40].sum(axis=1) / top.sum(axis=1))

    # pitched, unlike the white/pink/brown beds: in each frame that sounds, nearly all power sits
    # in a few FFT bins (the tone and its harmonics), where white noise spreads it over all 513
    assert all(top_bins_share(b) > 0.9 for b in beds)
    assert top_bins_share(np.random.default_rng(0).standard_normal(1024 * 16)) < 0.3
    # the pitch moves: the strongest bin of the first and last second differ in some beds (glides)
    peaks = [(np.argmax(np.abs(np.fft.rfft(b[:SR]))), np.argmax(np.abs(np.fft.rfft(b[-SR:])))) for b in beds]
    assert sum(a != z for a, z in peaks) >= 6


def test_pair_sampler_pairs_the_same_moment():
    cfg = TrainConfig(clean_view_probability=1.0, noise_probability=0.0, jitter_frames=0)
    mels = [_power(tune(i, 10.0)) for i in range(3)]
    s = PairSampler([(m, []) for m in mels], [mels[0]], cfg, np.random.default_rng(0))
    a, p = s.batch(8)
    assert a.shape == p.shape == (8, 64, 64) and a.dtype == np.float32
    # only EQ and masks touch the positives here: each one is nearest its own anchor
    d = ((a[:, None] - p[None]) ** 2).sum(axis=(2, 3))
    assert (d.argmin(axis=1) == np.arange(8)).all()


def test_pair_sampler_draws_apart_windows_of_each_track_in_groups():
    """``windows_per_track`` k: a batch holds k non-overlapping windows of each track it draws (other
    passages of the same piece as negatives), and a track too short for two gives one window."""
    cfg = TrainConfig(windows_per_track=4)
    w = cfg.features.window_frames
    tracks = [(np.zeros((n, 64), np.float32), []) for n in (40 * w, 12 * w, w + 5)]
    s = PairSampler(tracks, [tracks[0][0] + 1], cfg, np.random.default_rng(0))
    picks = s.moments(64)
    assert len(picks) == 64
    by_track: dict[int, list[int]] = {}
    for j, t in picks:
        assert 0 <= t <= len(tracks[j][0]) - w
        by_track.setdefault(j, []).append(t)
    assert len(by_track[0]) >= 8 and len(by_track[1]) >= 4  # groups of 4, drawn by length
    # consecutive picks of one draw come from one track, at least a window apart
    runs = [picks[i:i + 4] for i in range(0, 64, 4) if len({j for j, _ in picks[i:i + 4]}) == 1 and picks[i][0] != 2]
    assert runs
    for run in runs:
        starts = sorted(t for _, t in run)
        assert min(np.diff(starts)) >= w
    a, p = s.batch(16)
    assert a.shape == p.shape == (16, w, 64)


def test_context_sampler_cuts_neighbours_around_the_centre():
    cfg = TrainConfig(objective="cbow")
    s = ContextSampler([_power(tune(1, 8.0))], cfg, np.random.default_rng(0))
    neighbours, centre = s.batch(4)
    assert neighbours.shape == (4, 4, 64, 64) and centre.shape == (4, 64, 64)


def test_the_align_term_adds_its_weight_times_the_pairs_squared_distance():
    """``align_weight`` adds weight x mean squared distance between anchor and positive vectors to
    NT-Xent, so a pair that leads its batch but lies far still costs (and 0 leaves NT-Xent alone)."""
    from search_engine.audio2vec.model import Architecture, build_encoder, build_projection
    from search_engine.audio2vec.objectives import contrastive_model

    rng = np.random.default_rng(0)
    f = FeatureSettings()
    anchors = rng.normal(size=(6, f.window_frames, f.n_mels)).astype(np.float32)
    positives = (anchors + rng.normal(scale=0.5, size=anchors.shape)).astype(np.float32)
    arch = Architecture()
    encoder, g = build_encoder(f.window_frames, f.n_mels, arch), build_projection(arch)
    plain = contrastive_model(encoder, g, temperature=0.05)
    pulled = contrastive_model(encoder, g, temperature=0.05, align_weight=0.5)
    za, zp = (np.asarray(plain(x)) for x in (anchors, positives))
    nt_xent, _ = plain._step((anchors, positives), False)
    both, _ = pulled._step((anchors, positives), False)
    sq = float(np.mean(np.sum((za - zp) ** 2, axis=1)))
    assert sq > 0.01
    assert float(both) == pytest.approx(float(nt_xent) + 0.5 * sq, rel=1e-4)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    for i in range(4):
        sf.write(root / f"t{i}.wav", tune(40 + i, 12.0), SR)
    return root


@pytest.mark.parametrize("objective", ["contrastive", "cbow", "autoencoder"])
def test_each_objective_trains_a_loadable_model_of_the_same_shape(tmp_path, train_dir, objective):
    pitched = 2 if objective == "contrastive" else 0  # synthetic pitched noise beds join the noise
    cfg = TrainConfig(objective=objective, epochs=1, steps_per_epoch=2, batch_size=8, projection_windows=256, pitched_noise=pitched)
    said = []
    out = train([train_dir], out=tmp_path / "m", config=cfg, verbose=0, log=said.append)
    record = json.loads((out / "config.json").read_text())
    assert record["objective"] == objective
    assert ("noise: synthetic white, pink and brown, 2 pitched" in said) == bool(pitched)
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
    # the degraded views were kept with the checkpoints (one file per training file) ...
    kept = {p: p.stat().st_mtime_ns for p in (tmp_path / "m" / "checkpoints" / "views").glob("*.npz")}
    assert len(kept) == 4
    seen = {}

    class Look(keras.callbacks.Callback):  # the views as the resumed run starts training
        def on_train_begin(self, logs=None):
            seen.update({p: p.stat().st_mtime_ns for p in (tmp_path / "m" / "checkpoints" / "views").glob("*.npz")})

    out = train([train_dir], out=tmp_path / "m", config=cfg, verbose=0, resume=True, log=lambda m: None, callbacks=[Look()])
    assert seen == kept  # ... and read back, not made again, by the resumed run
    epochs = (out / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in epochs] == [0, 1, 2]  # epoch 0 once, then 1 and 2
    Encoder.load(out)


def test_an_unknown_objective_is_refused_before_any_work(tmp_path, train_dir):
    from search_engine.errors import ParameterError

    with pytest.raises(ParameterError, match="unknown objective 'triplet'"):
        train([train_dir], out=tmp_path / "m", config=TrainConfig(objective="triplet"), verbose=0, log=lambda m: None)
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def kinds_dir(tmp_path_factory):
    """Labelled sounds, one sub-folder per kind: tunes and noise bursts of several lengths."""
    root = tmp_path_factory.mktemp("kinds")
    rng = np.random.default_rng(3)
    for kind in ("tune", "noise"):
        (root / kind).mkdir()
        for i, seconds in enumerate((1.2, 2.5, 6.0, 8.0)):
            y = tune(60 + i, seconds) if kind == "tune" else (0.2 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
            sf.write(root / kind / f"{kind}{i}.wav", y, SR)
    return root


def test_label_sampler_takes_whole_sounds_k_per_label():
    from search_engine.audio2vec.objectives import LabelSampler

    cfg = TrainConfig(objective="similarity", clip_windows=3)
    mels = [_power(tune(1, 0.5)), _power(tune(2, 2.2)), _power(tune(3, 9.0)), _power(tune(4, 2.2))]
    s = LabelSampler(mels, ["a", "a", "b", "b"], [_power(tune(9, 4.0))], cfg, np.random.default_rng(0), k=2, hop=64)
    (x, mask), y = s.batch(4)
    assert x.shape == (4, 3, 64, 64) and mask.shape == (4, 3)
    assert sorted(np.bincount(y).tolist()) == [2, 2]  # two labels, k=2 sounds each
    # windows every 64 frames (1.024 s) while they fit: 0.5 s is one padded window, 2.2 s two, 9 s more than clip_windows
    used = {int(lab): sorted(mask[y == lab].sum(axis=1).tolist()) for lab in set(y.tolist())}
    assert used == {0: [1.0, 2.0], 1: [2.0, 3.0]}
    assert np.isfinite(x).all()
    with pytest.raises(Exception, match="at least two kinds"):
        LabelSampler(mels, ["a"] * 4, [], cfg, np.random.default_rng(0))


def test_the_similarity_objective_trains_the_similar_model_of_another(tmp_path, kinds_dir):
    """--objective similarity learns from sub-folder labels; a model whose config names it as
    ``similar_model`` makes whole-sound vectors with it, in the API and in an index."""
    import shutil

    from indexer import Indexer
    from search_engine import SearchEngine

    cfg = TrainConfig(objective="similarity", epochs=1, steps_per_epoch=2, batch_size=8, clip_windows=2)
    sim = train([kinds_dir], out=tmp_path / "sim", config=cfg, init="default", verbose=0, log=lambda m: None)
    record = json.loads((sim / "config.json").read_text())
    assert record["objective"] == "similarity" and not (sim / "decoder.weights.h5").exists()
    assert record["training"]["init"] == "default" and record["training"]["init_model_id"] == Encoder.load("default").model_id
    match = tmp_path / "match"
    shutil.copytree(Encoder.load("default").folder, match)
    config = json.loads((match / "config.json").read_text())
    (match / "config.json").write_text(json.dumps({**config, "similar_model": "../sim"}))
    enc = Encoder.load(match)
    assert enc.similar.model_id == record["model_id"] != enc.model_id
    clip = tune(70, 3.0)
    whole = enc.encode([clip])[0]
    assert np.allclose(whole, enc.similar.encode([clip])[0])
    with SearchEngine.create(tmp_path / "idx", model=str(match)) as engine:
        Indexer(engine).add([kinds_dir])
        assert engine.catalog.settings()["similar_model_id"] == record["model_id"]
        f = engine.catalog.files_by_path([str(kinds_dir / "tune" / "tune1.wav")])
        stored = engine.wholes.reconstruct([next(iter(f.values())).id])[0]
        y, _ = sf.read(kinds_dir / "tune" / "tune1.wav", dtype="float32")
        assert np.allclose(stored, enc.encode([y])[0], atol=1e-5)
        assert np.allclose(engine.vector((y, SR)), stored, atol=1e-5)


def test_a_list_of_similar_models_is_one_ensemble_model(tmp_path, kinds_dir):
    """``similar_model: [a, b]``: window vectors side by side over sqrt(2) (unit length), one
    model id made from theirs, and the index stores and compares those whole vectors."""
    import shutil

    from indexer import Indexer
    from search_engine import SearchEngine

    match = tmp_path / "match"
    shutil.copytree(Encoder.load("default").folder, match)
    config = json.loads((match / "config.json").read_text())
    (match / "config.json").write_text(json.dumps({**config, "similar_model": ["similar", "default"]}))
    enc = Encoder.load(match)
    a, b, ens = Encoder.load("similar"), Encoder.load("default"), enc.similar
    assert ens.name == "similar+default" and ens.dim == a.dim + b.dim
    assert len({ens.model_id, a.model_id, b.model_id}) == 3 and ens.model_id == Encoder.load(match).similar.model_id
    x = a.windows(tune(64, 3.0), hop_frames=64)[0]
    z = ens.encode_windows(x)
    assert np.allclose(z, np.hstack([a.encode_windows(x), b.encode_windows(x)]) / np.sqrt(2), atol=1e-6)
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    with SearchEngine.create(tmp_path / "idx", model=str(match)) as engine:
        Indexer(engine).add([kinds_dir])
        assert engine.catalog.settings()["similar_model_id"] == ens.model_id
        y, _ = sf.read(kinds_dir / "noise" / "noise2.wav", dtype="float32")
        best = engine.query((y, SR), mode="similar", k=2)[0]
        assert best.path.endswith("noise2.wav") and best.distance < 1e-3
        assert np.allclose(engine.vector((y, SR)), ens.encode([y])[0], atol=1e-5)


def test_a_long_recording_s_whole_vector_averages_windows_spread_over_it():
    from search_engine.audio2vec.encoder import WHOLE_MAX_WINDOWS, whole_windows

    assert whole_windows(7).tolist() == list(range(7))
    spread = whole_windows(1000)
    assert len(spread) == WHOLE_MAX_WINDOWS and spread[0] == 0 and spread[-1] == 999
    assert np.ptp(np.diff(spread)) <= 1  # evenly spread


def _fake_teacher(folder, files, dim: int = 96, seed: int = 0):
    """A teacher-vector folder as ``teacher/aisfx_teacher.py`` writes it: random vectors per window,
    nearer within a sub-folder (a fake "kind"), one window every 8 frames of each file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    centres = {}
    paths, fidx, starts, vecs = [], [], [], []
    for i, p in enumerate(files):
        n = max(1, 1 + (len(sf.read(p)[0]) - 512) // 256 - 64 + 1)
        st = np.arange(0, n, 8)
        c = centres.setdefault(p.parent.name, rng.standard_normal(dim))
        paths.append(str(p.resolve()))
        fidx.append(np.full(len(st), i))
        starts.append(st)
        vecs.append(c + 0.3 * rng.standard_normal((len(st), dim)))
    np.savez(folder / "vectors.npz", paths=np.asarray(paths), file_index=np.concatenate(fidx),
             start_frame=np.concatenate(starts), vectors=np.concatenate(vecs).astype(np.float32))
    (folder / "teacher.json").write_text(json.dumps({"teacher": "fake", "sha256": "0" * 64, "dim": dim}))
    return folder


def test_teacher_targets_are_unit_vectors_of_a_whitened_pca():
    from search_engine.audio2vec.objectives import target_space, teacher_targets

    rng = np.random.default_rng(0)
    v = rng.standard_normal((500, 32)) * np.linspace(5, 0.1, 32)  # very unequal variances
    mean, proj, kept = target_space(v, 8, whiten=True)
    assert proj.shape == (32, 8) and 0 < kept < 1
    t = teacher_targets(v, mean, proj)
    assert t.shape == (500, 8) and np.allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    white = (unit - mean) @ proj
    assert np.allclose(np.cov(white.T), np.eye(8), atol=0.05)  # whitened: unit variance on every axis
    with pytest.raises(Exception, match="principal axes"):
        target_space(v[:4], 8)


def test_distill_sampler_gives_teacher_aligned_windows_k_per_label():
    from search_engine.audio2vec.objectives import DistillSampler

    cfg = TrainConfig(objective="distill", noise_probability=0.0, jitter_frames=0)
    mels = [_power(tune(1, 0.8)), _power(tune(2, 3.0)), _power(tune(3, 3.0))]
    targets = np.eye(4, 8, dtype=np.float32)
    windows = [(0, 0, targets[0]), (1, 0, targets[1]), (1, 64, targets[2]), (2, 64, targets[3])]
    s = DistillSampler(mels, ["a", "a", "b"], windows, [_power(tune(9, 4.0))], cfg, np.random.default_rng(0), k=2)
    (x, t), y = s.batch(4)
    assert x.shape == (4, 64, 64) and t.shape == (4, 8) and np.isfinite(x).all()
    assert sorted(np.bincount(y).tolist()) == [2, 2]
    for xi, ti, yi in zip(x, t, y):  # each window's target is the teacher's vector of that window
        row = int(np.argmax(ti))
        assert (yi == 1) == (row == 3)
    with pytest.raises(Exception, match="no teacher vectors"):
        DistillSampler(mels, ["a", "a", "b"], [], [], cfg, np.random.default_rng(0))


def test_the_distill_objective_trains_a_loadable_model_from_teacher_vectors(tmp_path, kinds_dir):
    """--objective distill with --teacher-vectors DIR (fake teacher vectors, no torch): a loadable
    model whose config records the teacher; the loss falls on its own training batches."""
    files = sorted(kinds_dir.rglob("*.wav"))
    teacher = _fake_teacher(tmp_path / "teacher", files)
    cfg = TrainConfig(objective="distill", epochs=2, steps_per_epoch=4, batch_size=8, teacher_vectors=str(teacher),
                      distill_supcon_weight=0.5, learning_rate=3e-3)
    out = train([kinds_dir], out=tmp_path / "d", config=cfg, init="default", verbose=0, log=lambda m: None)
    record = json.loads((out / "config.json").read_text())
    assert record["objective"] == "distill" and record["training"]["distilled"]["teacher"]["teacher"] == "fake"
    assert record["training"]["distilled"]["windows"] > 0 and not (out / "decoder.weights.h5").exists()
    enc = Encoder.load(out)
    v = enc.embed(tune(50, 3.0), hop_frames=32).vectors
    assert v.shape[1] == enc.dim == 64 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    # a student of another size than the model it starts from: its encoder, a new projection
    cfg.embedding_dim, cfg.epochs = 32, 1
    wide = train([kinds_dir], out=tmp_path / "d32", config=cfg, init="default", verbose=0, log=lambda m: None)
    record = json.loads((wide / "config.json").read_text())
    assert record["architecture"]["embedding_dim"] == 32 and Encoder.load(wide).embed(tune(50, 3.0), hop_frames=32).vectors.shape[1] == 32
    with pytest.raises(Exception, match="teacher vectors"):
        train([kinds_dir], out=tmp_path / "x", config=TrainConfig(objective="distill"), verbose=0, log=lambda m: None)
    other = _fake_teacher(tmp_path / "other", [tmp_path / "elsewhere.wav"] if (sf.write(tmp_path / "elsewhere.wav", tune(5, 2.0), SR) or True) else [])
    with pytest.raises(Exception, match="none of the teacher"):
        train([kinds_dir], out=tmp_path / "y", config=TrainConfig(objective="distill", teacher_vectors=str(other)), verbose=0, log=lambda m: None)


def test_a_model_teacher_embeds_the_windows_another_teacher_chose_and_teachers_combine(tmp_path, kinds_dir):
    """teachers.model_teacher_vectors: the shipped similar space's vectors of the windows a teacher
    folder chose (aligned), others spread over each file; combine_teachers: weighted unit vectors
    side by side, a missing window filled with that teacher's mean; the trainer reads the result."""
    from search_engine.audio2vec.objectives import load_teacher_vectors
    from search_engine.audio2vec.teachers import combine_teachers, model_teacher_vectors, spread_starts
    from search_engine.features import normalize_windows

    files = sorted(kinds_dir.rglob("*.wav"))
    fake = _fake_teacher(tmp_path / "fake", files[:-1], dim=16)
    own = load_teacher_vectors(model_teacher_vectors(files, tmp_path / "own", model="default", like=fake, per_file=2, log=lambda m: None))
    ft = load_teacher_vectors(fake)
    enc = Encoder.load("default").similar
    assert own["vectors"].shape[1] == enc.dim and own["meta"]["teacher"].startswith("audio2vec:default")
    for i, p in enumerate(files):
        key = str(p.resolve())
        mine = own["start_frame"][own["file_index"] == own["paths"].index(key)]
        mel = log_mel(sf.read(p)[0].astype(np.float32), settings=enc.features)
        if i < len(files) - 1:  # aligned with the other teacher's windows of the same file
            assert mine.tolist() == ft["start_frame"][ft["file_index"] == ft["paths"].index(key)].tolist()
        else:
            assert mine.tolist() == spread_starts(len(mel), window_frames=64, hop_frames=64, n=2).tolist()
    # a window's vector is the similar space's vector of that clean window
    j = own["paths"].index(str(files[-1].resolve()))
    s0 = int(own["start_frame"][own["file_index"] == j][-1])
    mel = log_mel(sf.read(files[-1])[0].astype(np.float32), settings=enc.features)
    want = enc.encode_windows(normalize_windows(mel[None, s0 : s0 + 64], top_db=enc.features.top_db))[0]
    assert np.allclose(own["vectors"][own["file_index"] == j][-1], want, atol=1e-4)
    assert spread_starts(64 * 10 + 63, window_frames=64, hop_frames=64, n=2).tolist() == [0, 576]

    both = load_teacher_vectors(combine_teachers([(tmp_path / "own", 1.0), (fake, 0.5)], tmp_path / "both"))
    assert both["vectors"].shape == (len(own["vectors"]) + len(ft["vectors"]) - len(set(
        zip([own["paths"][i] for i in own["file_index"]], own["start_frame"].tolist())) & set(
        zip([ft["paths"][i] for i in ft["file_index"]], ft["start_frame"].tolist()))), enc.dim + 16)
    norms = np.linalg.norm(both["vectors"][:, enc.dim:], axis=1)
    unit_f = ft["vectors"] / np.linalg.norm(ft["vectors"], axis=1, keepdims=True)
    filled = np.linalg.norm(0.5 * unit_f.mean(axis=0))
    assert np.all(np.isclose(norms, 0.5, atol=1e-4) | np.isclose(norms, filled, atol=1e-4))  # own or the mean
    assert np.isclose(norms, filled, atol=1e-4).sum() == len(both["vectors"]) - len(ft["vectors"])
    cfg = TrainConfig(objective="distill", epochs=1, steps_per_epoch=2, batch_size=8, teacher_vectors=str(tmp_path / "both"))
    out = train([kinds_dir], out=tmp_path / "d", config=cfg, init="default", verbose=0, log=lambda m: None)
    assert json.loads((out / "config.json").read_text())["training"]["distilled"]["windows"] == len(both["vectors"])


def test_runs_of_one_teacher_merge_into_one_folder(tmp_path, kinds_dir):
    from search_engine.audio2vec.objectives import load_teacher_vectors
    from search_engine.audio2vec.teachers import merge_teachers

    files = sorted(kinds_dir.rglob("*.wav"))
    a = load_teacher_vectors(_fake_teacher(tmp_path / "a", files[:3], dim=8, seed=1))
    b = load_teacher_vectors(_fake_teacher(tmp_path / "b", files[2:], dim=8, seed=2))
    m = load_teacher_vectors(merge_teachers([tmp_path / "a", tmp_path / "b"], tmp_path / "m"))
    assert m["paths"] == [str(p.resolve()) for p in files]  # file 2 once, from the last folder
    assert len(m["vectors"]) == (a["file_index"] < 2).sum() + len(b["vectors"])
    j = m["paths"].index(str(files[2].resolve()))
    assert np.array_equal(m["vectors"][m["file_index"] == j], b["vectors"][b["file_index"] == 0])
    assert m["meta"]["merged_from"] == [str(tmp_path / "a"), str(tmp_path / "b")] and m["meta"]["files"] == len(files)
    (tmp_path / "b" / "teacher.json").write_text(json.dumps({"teacher": "other", "sha256": "1" * 64, "dim": 8}))
    with pytest.raises(Exception, match="differ"):
        merge_teachers([tmp_path / "a", tmp_path / "b"], tmp_path / "x")


def test_a_model_teacher_of_several_models_is_their_ensemble(tmp_path, kinds_dir):
    """``model=[a, b]``: each window's teacher vector is the two models' unit vectors side by
    side over sqrt(2), as an index built with the ensemble stores them."""
    from pathlib import Path

    from search_engine.audio2vec.objectives import load_teacher_vectors
    from search_engine.audio2vec.teachers import model_teacher_vectors
    from search_engine.features import normalize_windows

    files = sorted(kinds_dir.rglob("*.wav"))[:3]
    seed = str(Path(__file__).resolve().parents[1] / "models" / "autoencoder")
    t = load_teacher_vectors(model_teacher_vectors(files, tmp_path / "t", model=["similar", seed], log=lambda m: None))
    a, b = Encoder.load("similar"), Encoder.load(seed)
    assert t["vectors"].shape[1] == a.dim + b.dim and f"similar+{seed}" in t["meta"]["teacher"]
    mel = log_mel(sf.read(files[0])[0].astype(np.float32), settings=a.features)
    s0 = int(t["start_frame"][t["file_index"] == 0][0])
    x = normalize_windows(mel[None, s0 : s0 + 64], top_db=a.features.top_db)
    want = np.hstack([a.encode_windows(x), b.encode_windows(x)]) / np.sqrt(2)
    assert np.allclose(t["vectors"][t["file_index"] == 0][0], want[0], atol=1e-4)


def test_kept_views_are_read_back_unchanged_and_only_for_the_same_settings(tmp_path, train_dir, monkeypatch):
    """``_views`` with a cache folder: the second call with the same file, seed and settings reads
    what the first kept (identical arrays and rates, no new damage made); another seed makes its own."""
    from search_engine.audio2vec import train as train_module

    f, path = FeatureSettings(), str(train_dir / "t0.wav")
    made = train_module._views(path, f, (0, 0), (), 1, False, cache=str(tmp_path))
    assert len(list(tmp_path.glob("*.npz"))) == 1 and not list(tmp_path.glob("*.part*"))

    def no_damage(*a, **k):
        raise AssertionError("views made again")

    monkeypatch.setattr(train_module, "waveform_views", no_damage)
    again = train_module._views(path, f, (0, 0), (), 1, False, cache=str(tmp_path))
    assert len(again) == len(made) == 3  # room, speed, tempo (no codec asked for)
    for (a, ra), (b, rb) in zip(made, again):
        assert ra == rb and a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
    with pytest.raises(AssertionError, match="views made again"):
        train_module._views(path, f, (1, 0), (), 1, False, cache=str(tmp_path))

