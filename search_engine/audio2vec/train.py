"""Train an Audio2Vec model on log-mel windows, with one of three objectives (``TrainConfig.objective``):

- ``autoencoder`` (the seed): the encoder reads a window of a *noisy* version of the audio
  (synthetic coloured noise and, when given, noise recordings such as speech, mixed at 0-20 dB SNR
  in the mel power domain) and the decoder must reconstruct the *clean* window;
- ``cbow``: Audio2Vec context prediction, the slice rebuilt from its neighbours' bottlenecks;
- ``contrastive``: NT-Xent on (clean, degraded view) pairs, as in neural audio fingerprinting
  (see :mod:`.objectives` and :mod:`.views`);
- ``similarity``: supervised contrastive (SupCon) on labelled sounds, the label of a file being the
  name of the folder it is in (``kinds/piano/*.wav``): the ``similar`` space;
- ``distill``: reproduce a pretrained teacher's vectors of the same windows (``teacher_vectors``, a
  folder made by ``teacher/aisfx_teacher.py``): cosine distillation onto the teacher's PCA space
  (optionally whitened), a relational term on the batch's similarity matrix, optionally SupCon on folder labels.

For the first two, g() is fitted after training: centre the bottlenecks of clean training windows
and project them onto their ``embedding_dim`` principal axes, then L2-normalise. The contrastive
and similarity objectives train g() (dense projection + L2 normalisation) with the encoder.

Run it as ``audio2vec train PATH... --out DIR`` (see ``--help``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import find_audio_files, load
from ..errors import DecodeError, ParameterError
from ..features import FeatureSettings, log_mel, normalize_windows, window_starts
from .encoder import MODEL_FORMAT, WEIGHT_FILES, WHOLE_HOP_FRAMES, weights_id
from .export import export
from .model import Architecture
from .views import NoiseBank, noise_weights, waveform_views

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read when TensorFlow loads

#: less training audio than this (seconds) is refused
MIN_TRAIN_AUDIO_S = 30.0


#: the objectives :func:`train` knows
OBJECTIVES = ("autoencoder", "cbow", "contrastive", "similarity", "distill")
#: objectives whose g() is trained with the encoder (no decoder)
_EMBEDDING_OBJECTIVES = ("contrastive", "similarity", "distill")


@dataclass
class TrainConfig:
    """A complete, reproducible training recipe (saved in the model folder)."""

    objective: str = "contrastive"
    epochs: int = 30
    steps_per_epoch: int = 300
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    #: probability that a training window gets noise added
    noise_probability: float = 0.8
    snr_db: tuple[float, float] = (0.0, 20.0)
    #: the input window is shifted by up to this many frames against the target (time-shift robustness)
    jitter_frames: int = 2
    validation_fraction: float = 0.05
    #: clean windows used to fit g()'s projection (autoencoder, cbow)
    projection_windows: int = 20000
    #: contrastive: NT-Xent temperature, SNR of the noise added to positives, share of positives
    #: cut from the clean audio (not a waveform view), EQ range
    temperature: float = 0.05
    pair_snr_db: tuple[float, float] = (0.0, 10.0)
    clean_view_probability: float = 0.2
    eq_db: float = 6.0
    #: contrastive: weight of a term pulling each degraded view towards its clean anchor in
    #: squared Euclidean distance (beside NT-Xent, whose gradient fades once the positive leads
    #: the batch, however far it still lies: the claim reads absolute distances); 0: NT-Xent alone
    align_weight: float = 0.0
    #: contrastive: anchors drawn per track in a batch (1: each from a random track; k: k apart
    #: windows of each of batch / k tracks, so other passages of the same piece are negatives)
    windows_per_track: int = 1
    #: contrastive: waveform views drawn per training file (each a new random set), and whether
    #: they are the wider, longer list (:func:`.views.waveform_views` ``varied``)
    view_sets: int = 1
    varied_views: bool = False
    #: draw noise source by source (each noise path, and the synthetic noises, equally often)
    #: rather than file by file (a folder of many short files would crowd out the others)
    noise_by_source: bool = False
    #: synthetic pitched noise beds added to the noise (:func:`pitched_noise`: hums, horns,
    #: squeals, beeps, drones); 0: none. Each counts as one noise file in the draw.
    pitched_noise: int = 0
    #: similarity: SupCon temperature, SNR of the noise added, sounds per label in a batch (whose
    #: size then counts sounds), windows pooled per sound (1: single windows trained best),
    #: largest shift of a sound in mel bands
    similarity_temperature: float = 0.1
    label_snr_db: tuple[float, float] = (10.0, 30.0)
    sounds_per_label: int = 4
    clip_windows: int = 1
    band_shift: int = 4
    #: cbow: windows of context on each side
    context_windows: int = 2
    #: distill: folder of teacher vectors; whether their PCA is whitened (unwhitened kept the
    #: teacher's own ranking better, measured on the select half of similar_sounds); loss weights of the cosine,
    #: relational (similarity matrix) and SupCon (folder labels) terms; band shift of the student's view
    teacher_vectors: str | None = None
    distill_whiten: bool = False
    distill_cosine_weight: float = 1.0
    distill_relation_weight: float = 1.0
    distill_supcon_weight: float = 0.0
    distill_band_shift: int = 0
    features: FeatureSettings = field(default_factory=FeatureSettings)
    architecture: Architecture = field(default_factory=Architecture)
    #: numbers per vector of the model written; None: the init model's (else the architecture's).
    #: Another size than the init model's starts g() afresh and keeps the encoder's weights.
    embedding_dim: int | None = None


def _mel_power(y: np.ndarray, features: FeatureSettings) -> np.ndarray:
    """Mel power spectrogram ``[frames, mels]`` (linear) of a waveform: what the samplers mix."""
    return np.power(10.0, log_mel(y, settings=features) / 10.0, dtype=np.float32)


def _power_mels(files, features: FeatureSettings, log, *, loop_short: bool = False):
    """Decode files to mel power spectrograms ``[(frames, mels)]``, skipping (and reporting) bad ones.

    A file shorter than one window is skipped, or with ``loop_short`` (noise: a click, a beep, a
    door slam) repeated end to end until it fills one, as a noise bed loops its recording."""
    mels, names, seconds = [], [], 0.0
    window = round(features.window_s * features.sample_rate_hz)  # samples in one window
    looped = 0
    for path in files:
        try:
            y, _ = load(path, sr=features.sample_rate_hz)
        except DecodeError as exc:
            log(f"skipped {exc}")
            continue
        n = len(y)
        if loop_short and 0 < n < window:
            y, looped = np.tile(y, -(-window // n)), looped + 1
        m = _mel_power(y, features)
        if len(m) < features.window_frames:
            log(f"skipped {path}: shorter than one window")
            continue
        mels.append(m)
        names.append(str(path))
        seconds += n / features.sample_rate_hz
    if looped:
        log(f"{looped} file(s) shorter than one window repeated to fill one")
    return mels, names, seconds


def _views(path: str, features: FeatureSettings, seed: tuple[int, int], codecs: tuple[str, ...], sets: int, varied: bool, cache: str | None = None):
    """The degraded views of one file as ``[(mel power, rate)]`` (contrastive): ``sets`` random
    draws of :func:`.views.waveform_views`. With ``cache`` (a folder), they are read from there when
    an earlier call made them from the same file, settings and damage code
    (:func:`_views_key`), else made and kept there."""
    kept = Path(cache) / f"{_views_key(path, features, seed, codecs, sets, varied)}.npz" if cache else None
    if kept is not None and kept.exists():
        with np.load(kept) as z:
            return [(z[f"view{i}"], float(r)) for i, r in enumerate(z["rates"])]
    y, sr = load(path, sr=features.sample_rate_hz)
    out = []
    for k in range(sets):
        rng = np.random.default_rng(seed if k == 0 else (*seed, k))
        out += [(_mel_power(v.y, features), v.rate) for v in waveform_views(y, sr=sr, rng=rng, codecs=codecs, varied=varied)]
    out = [(m, r) for m, r in out if len(m) >= features.window_frames]
    if kept is not None:  # written whole, then renamed: a crash leaves no half file
        kept.parent.mkdir(parents=True, exist_ok=True)
        part = kept.with_name(f"{kept.stem}.{os.getpid()}.part.npz")
        np.savez(part, rates=np.array([r for _, r in out], dtype=np.float64), **{f"view{i}": m for i, (m, _) in enumerate(out)})
        os.replace(part, kept)
    return out


def _views_key(path: str, features: FeatureSettings, seed: tuple[int, int], codecs: tuple[str, ...], sets: int, varied: bool) -> str:
    """Name of one file's kept views: a hash of the file (path, size, modification time), the
    features, the seed and view settings, and the source of the code that makes the damage."""
    st = os.stat(path)
    key = [str(Path(path).resolve()), st.st_size, st.st_mtime_ns, features.as_dict(), list(seed), list(codecs), sets, varied, _damage_code()]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]


@functools.cache
def _damage_code() -> str:
    """Hash of the source of :mod:`.views` and :mod:`.augment` (read once per process)."""
    from . import augment, views

    return hashlib.sha256(Path(views.__file__).read_bytes() + Path(augment.__file__).read_bytes()).hexdigest()


def _tracks(names, mels, cfg: TrainConfig, log, workers: int = 2, cache: Path | None = None):
    """``[(clean mel power, views)]`` per file: :func:`_views` in ``workers`` processes (they cost
    ~1/20 of real time per set; kept in ``cache``, if given, and read from there next time); the
    clean spectrograms are the ones already made."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from . import augment

    wanted = ("mp3", "aac") if cfg.varied_views else ("mp3",)
    codecs = tuple(c for c in wanted if c in augment.available_codecs())
    if codecs != wanted:
        log(f"this FFmpeg build lacks {', '.join(sorted(set(wanted) - set(codecs)))}: training without those codec views")
    out = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        futures = [pool.submit(_views, n, cfg.features, (cfg.seed, i), codecs, cfg.view_sets, cfg.varied_views, str(cache) if cache else None)
                   for i, n in enumerate(names)]
        for k, (fut, clean) in enumerate(zip(futures, mels), 1):
            out.append((clean, fut.result()))
            if k % 16 == 0 or k == len(futures):
                log(f"degraded views: {k}/{len(futures)} files")
    return out


def pitched_noise(rng: np.random.Generator, *, sr: int, seconds: float = 10.0) -> np.ndarray:
    """One synthetic pitched noise bed (a hum, horn, squeal, beep or drone), peak 1.

    A harmonic tone at a random pitch (80-2000 Hz, log-uniform) with 1-8 harmonics falling off as
    ``k ** -a`` (``a`` 0.5-2), gliding by up to an octave either way over the bed, with vibrato
    (0-3 %, 3-8 Hz) and, half the time, gated on and off (period 0.1-1 s) as a beep or an alarm.
    ``sr`` in Hz, ``seconds`` long; returns float32 ``[samples]``.
    """
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = np.exp(rng.uniform(np.log(80.0), np.log(2000.0))) * 2.0 ** (rng.uniform(-1, 1) * t / seconds)
    f *= 1 + rng.uniform(0, 0.03) * np.sin(2 * np.pi * rng.uniform(3, 8) * t)
    phase = 2 * np.pi * np.cumsum(f) / sr
    tilt = rng.uniform(0.5, 2.0)
    y = sum(k**-tilt * np.sin(k * phase) * (k * f < sr / 2) for k in range(1, int(rng.integers(1, 9)) + 1))
    if rng.random() < 0.5:
        period = rng.uniform(0.1, 1.0)
        y = y * ((t / period) % 1.0 < rng.uniform(0.3, 0.8))
    return (y / max(float(np.abs(y).max()), 1e-9)).astype(np.float32)


def _synthetic_noises(features: FeatureSettings, rng: np.random.Generator, seconds: float = 30.0, *, pitched: int = 0):
    """White, pink and brown noise, then ``pitched`` beds of :func:`pitched_noise`, as mel power
    spectrograms."""
    n = int(seconds * features.sample_rate_hz)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / features.sample_rate_hz)
    freqs[0] = freqs[1]
    out = []
    for exponent in (0.0, 0.5, 1.0):  # white, pink (1/f power), brown (1/f^2 power)
        y = np.fft.irfft(spectrum / freqs**exponent, n).astype(np.float32)
        y /= np.abs(y).max()
        out.append(_mel_power(y, features))
    return out + [_mel_power(pitched_noise(rng, sr=features.sample_rate_hz), features) for _ in range(pitched)]


class WindowSampler:
    """Random (noisy input, clean target) window pairs from mel power spectrograms."""

    def __init__(self, mels, noises, cfg: TrainConfig, rng: np.random.Generator):
        self.mels, self.noises, self.cfg, self.rng = mels, noises, cfg, rng
        lengths = np.array([len(m) - cfg.features.window_frames + 1 for m in mels], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def _take(self, arrays, p=None, jitter: int = 0):
        """A random window (and the same window shifted by up to ``jitter`` frames)."""
        w = self.cfg.features.window_frames
        a = arrays[self.rng.choice(len(arrays), p=p)]
        start = self.rng.integers(0, len(a) - w + 1)
        shifted = int(np.clip(start + self.rng.integers(-jitter, jitter + 1), 0, len(a) - w)) if jitter else start
        return a[start : start + w], a[shifted : shifted + w]

    def clean(self, n: int) -> np.ndarray:
        return np.stack([self._take(self.mels, self.p)[0] for _ in range(n)])

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        pairs = [self._take(self.mels, self.p, cfg.jitter_frames) for _ in range(n)]
        clean = np.stack([target for target, _ in pairs])
        noisy = np.stack([shifted for _, shifted in pairs])
        lo, hi = cfg.snr_db
        for i in range(n):
            if self.rng.random() < cfg.noise_probability:
                noise = self._take(self.noises, noise_weights(self.noises))[0]
                snr = self.rng.uniform(lo, hi)
                scale = clean[i].sum() / max(noise.sum(), 1e-12) / 10 ** (snr / 10)
                noisy[i] += scale * noise
        top = cfg.features.top_db
        to_db = lambda p: 10.0 * np.log10(np.maximum(p, 1e-10))  # noqa: E731
        return normalize_windows(to_db(noisy), top_db=top), normalize_windows(to_db(clean), top_db=top)


def _split(names, fraction: float):
    """Stable train/validation split of files by a hash of their name."""
    val = [int(hashlib.sha1(Path(n).name.encode()).hexdigest(), 16) % 1000 < fraction * 1000 for n in names]
    if all(val) or not any(val):
        val = [i == len(names) - 1 for i in range(len(names))] if len(names) > 1 else [False]
    return val


def train(
    paths,
    *,
    out: str | Path,
    noise_paths=(),
    config: TrainConfig | None = None,
    init: str | Path | None = None,
    resume: bool = False,
    verbose: int = 1,
    log=None,
    callbacks=(),
    views_cache: str | Path | None = None,
) -> Path:
    """Train a model and write a complete model folder to ``out``.

    Parameters
    ----------
    paths : list of path-like
        Audio files and folders to learn from.
    out : path-like
        Model folder to write (``config.json`` + weights + ``history.csv``); checkpoints go to
        ``out/checkpoints`` and let an interrupted run continue with ``resume=True``.
    noise_paths : list of path-like
        Recordings mixed in as background noise (e.g. speech); synthetic noise is always used.
    config : TrainConfig
    init : path-like, optional
        Model folder to start from (fine-tuning); its feature settings and architecture are kept.
    resume : bool
        Continue from the last checkpoint in ``out``.
    callbacks : list of keras.callbacks.Callback
        Extra callbacks for ``fit`` (after the checkpointing and logging ones).
    views_cache : path-like, optional
        Contrastive: folder where each training file's degraded views are kept and found again by
        later runs with the same files, seed and view settings. By default they are kept in
        ``out/checkpoints`` until the run finishes, so a resumed run does not make them again.
    """
    import keras

    from .model import build_autoencoder, build_decoder, build_encoder, build_projection
    from .objectives import (
        ContextSampler, DistillSampler, LabelSampler, PairSampler, context_model, contrastive_model, distill_model,
        load_teacher_vectors, similarity_model, target_space, teacher_targets,
    )

    log = log or (lambda msg: None)
    cfg = config or TrainConfig()
    out = Path(out)
    if init is not None:
        from .encoder import resolve_model_dir

        init_dir = resolve_model_dir(init)
        init_cfg = json.loads((init_dir / "config.json").read_text())
        cfg.features = FeatureSettings(**init_cfg["features"])
        cfg.architecture = Architecture(**{**init_cfg["architecture"], "filters": tuple(init_cfg["architecture"]["filters"])})
    init_dim = cfg.architecture.embedding_dim
    if cfg.embedding_dim is not None:
        cfg.architecture = dataclasses.replace(cfg.architecture, embedding_dim=cfg.embedding_dim)
    if cfg.objective not in OBJECTIVES:
        raise ParameterError(f"unknown objective {cfg.objective!r} (one of {', '.join(OBJECTIVES)})")
    if (cfg.objective == "distill") != (cfg.teacher_vectors is not None):
        raise ParameterError("the distill objective needs teacher vectors (--teacher-vectors DIR), and only it uses them")
    teacher = load_teacher_vectors(cfg.teacher_vectors) if cfg.teacher_vectors is not None else None
    ckpt = out / "checkpoints"
    if not resume and ckpt.exists():
        shutil.rmtree(ckpt)
    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    f, arch = cfg.features, cfg.architecture

    files = list(find_audio_files(paths))
    mels, names, seconds = _power_mels(files, f, log)
    if seconds < MIN_TRAIN_AUDIO_S or not mels:
        raise ParameterError(
            f"too little training audio: {seconds:.1f} s in {len(mels)} usable files "
            f"(at least {MIN_TRAIN_AUDIO_S:.0f} s is needed; a few hours trains a useful model)"
        )
    log(f"training on {len(mels)} files, {seconds / 3600:.2f} h of audio")
    groups = [_synthetic_noises(f, rng, pitched=cfg.pitched_noise)]
    sources = [[p] for p in noise_paths] if cfg.noise_by_source else ([list(noise_paths)] if noise_paths else [])
    for source in sources:  # one group per noise path, or all of them as one
        extra, _, noise_s = _power_mels(list(find_audio_files(source)), f, log, loop_short=True)
        groups.append(extra)
        log(f"noise: {len(extra)} files, {noise_s / 60:.1f} min" + (f" from {source[0]}" if cfg.noise_by_source else ""))
    log("noise: synthetic white, pink and brown" + (f", {cfg.pitched_noise} pitched" if cfg.pitched_noise else "")
        + (", drawn as often as each noise path" if cfg.noise_by_source else ""))
    noise_mels = NoiseBank(groups) if cfg.noise_by_source else [m for g in groups for m in g]
    is_val = _split(names, cfg.validation_fraction)
    train_mels = [m for m, v in zip(mels, is_val) if not v]
    val_mels = [m for m, v in zip(mels, is_val) if v]

    encoder = build_encoder(f.window_frames, f.n_mels, arch)
    decoder = build_decoder(f.window_frames, f.n_mels, arch) if cfg.objective not in _EMBEDDING_OBJECTIVES else None
    g = build_projection(arch)
    if init is not None:
        from .encoder import Encoder
        from .model import set_network_weights

        # Keras or ONNX files; g() of another size than the init model's starts afresh
        set_network_weights(encoder, g if arch.embedding_dim == init_dim else None, Encoder.load(init_dir).network())
        if decoder is not None and (init_dir / WEIGHT_FILES["decoder"]).exists():
            decoder.load_weights(init_dir / WEIGHT_FILES["decoder"])
    val_rng = np.random.default_rng(cfg.seed + 1)
    val_n = max(cfg.batch_size, 512)
    if cfg.objective == "autoencoder":
        model = build_autoencoder(encoder, decoder)
        sampler = WindowSampler(train_mels, noise_mels, cfg, rng)
        validation = WindowSampler(val_mels, noise_mels, cfg, val_rng).batch(val_n)
    elif cfg.objective == "cbow":
        model = context_model(encoder, decoder)
        sampler = ContextSampler(train_mels, cfg, rng)
        validation = ContextSampler(val_mels, cfg, val_rng).batch(val_n)
    elif cfg.objective == "similarity":
        model = similarity_model(encoder, g, temperature=cfg.similarity_temperature)
        labels = [Path(n).parent.name for n in names]
        part = lambda val: ([m for m, v in zip(mels, is_val) if v == val], [lab for lab, v in zip(labels, is_val) if v == val])  # noqa: E731
        kw = {"k": cfg.sounds_per_label, "hop": WHOLE_HOP_FRAMES}
        sampler = LabelSampler(*part(False), noise_mels, cfg, rng, **kw)
        held_out = part(True)
        if len(set(held_out[1])) >= 2:
            validation = LabelSampler(*held_out, noise_mels, cfg, val_rng, **kw).batch(val_n)
        else:
            validation = None
            log("no validation: the held-out files are of fewer than two kinds")
    elif cfg.objective == "distill":
        model = distill_model(
            encoder, g, cosine_weight=cfg.distill_cosine_weight, relation_weight=cfg.distill_relation_weight,
            supcon_weight=cfg.distill_supcon_weight, temperature=cfg.similarity_temperature,
        )
        where = {str(Path(n).resolve()): i for i, n in enumerate(names)}
        spec_of = np.array([where.get(str(Path(p).resolve()), -1) for p in teacher["paths"]])[teacher["file_index"]]
        have = spec_of >= 0
        if not have.any():
            raise ParameterError(f"none of the teacher's {len(teacher['paths'])} files is among the training files")
        mean, proj, kept = target_space(teacher["vectors"][have], arch.embedding_dim, whiten=cfg.distill_whiten)
        targets = teacher_targets(teacher["vectors"], mean, proj)
        log(
            f"teacher {teacher['meta'].get('teacher', '?')}: {int(have.sum())} of {len(have)} windows in the training files; "
            f"PCA to {arch.embedding_dim} keeps {kept:.3f} of their variance"
        )
        labels = [Path(n).parent.name for n in names]
        rows = [(int(spec_of[i]), int(teacher["start_frame"][i]), targets[i]) for i in np.flatnonzero(have)]
        if cfg.distill_supcon_weight:  # files the teacher did not embed still teach their labels (SupCon only)
            zero, embedded = np.zeros(arch.embedding_dim, np.float32), set(spec_of[have].tolist())
            for j in sorted(set(range(len(mels))) - embedded):
                for t0 in window_starts(len(mels[j]), window_frames=f.window_frames, hop_frames=WHOLE_HOP_FRAMES)[:2]:
                    rows.append((j, int(t0), zero))
            log(f"SupCon only (no teacher vector): {len(mels) - len(embedded)} files")

        def part(val: bool):
            keep = [r for r in rows if is_val[r[0]] == val]
            local = {j: i for i, j in enumerate(sorted({r[0] for r in keep}))}
            return [mels[j] for j in local], [labels[j] for j in local], [(local[a], b, t) for a, b, t in keep]

        sampler = DistillSampler(*part(False), noise_mels, cfg, rng, k=cfg.sounds_per_label)
        held_out = part(True)
        validation = DistillSampler(*held_out, noise_mels, cfg, val_rng, k=cfg.sounds_per_label).batch(val_n) if held_out[2] else None
        if validation is None:
            log("no validation: no teacher vectors in the held-out files")
        distilled = {"teacher": teacher["meta"], "windows": int(have.sum()), "pca_variance_kept": round(kept, 4)}
    else:
        model = contrastive_model(encoder, g, temperature=cfg.temperature, align_weight=cfg.align_weight)
        tracks = _tracks(names, mels, cfg, log, cache=Path(views_cache) if views_cache else ckpt / "views")
        sampler = PairSampler([t for t, v in zip(tracks, is_val) if not v], noise_mels, cfg, rng)
        validation = PairSampler([t for t, v in zip(tracks, is_val) if v], noise_mels, cfg, val_rng).batch(val_n)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total_steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse" if cfg.objective == "autoencoder" else None)
    example = validation if validation is not None else sampler.batch(cfg.batch_size)
    model(keras.tree.map_structure(lambda a: a[:1], example[0]))  # build it: checkpoints need the variables

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return cfg.steps_per_epoch

        def __getitem__(self, i):
            return sampler.batch(cfg.batch_size)

    out.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(ckpt / "backup")),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=resume),
        *callbacks,
    ]
    history = model.fit(
        Batches(), epochs=cfg.epochs, validation_data=validation, validation_batch_size=cfg.batch_size,
        callbacks=callbacks, verbose=verbose,
    )

    explained = None
    if cfg.objective not in _EMBEDDING_OBJECTIVES:  # g(): principal axes of clean training bottlenecks
        clean = normalize_windows(10.0 * np.log10(np.maximum(WindowSampler(train_mels, noise_mels, cfg, rng).clean(cfg.projection_windows), 1e-10)), top_db=f.top_db)
        h = encoder.predict(clean, batch_size=512, verbose=0)
        mean = h.mean(axis=0)
        _, s, vt = np.linalg.svd(h - mean, full_matrices=False)
        axes = vt[: arch.embedding_dim].T.astype(np.float32)  # (bottleneck, dim)
        g.get_layer("g_project").set_weights([axes, (-mean @ axes).astype(np.float32)])
        explained = round(float((s[: arch.embedding_dim] ** 2).sum() / (s**2).sum()), 4)

    for key, part in (("encoder", encoder), ("g", g), ("decoder", decoder)):
        if part is not None:
            part.save_weights(out / WEIGHT_FILES[key])
    final = {k: float(v[-1]) for k, v in history.history.items()} if history.history else {}
    record = {
        "format": MODEL_FORMAT,
        "model_id": weights_id(out),
        "objective": cfg.objective,
        "features": f.as_dict(),
        "architecture": arch.as_dict(),
        "training": {
            "recipe": {k: (v if not hasattr(v, "as_dict") else v.as_dict()) for k, v in vars(cfg).items()},
            "files": len(names),
            "validation_files": int(sum(is_val)),
            "hours": round(seconds / 3600, 3),
            "noise_files": [str(p) for p in noise_paths],
            "init": str(init) if init is not None else None,
            # a name such as "default" points at other weights once a new default ships
            "init_model_id": init_cfg["model_id"] if init is not None else None,
            "final": final,
            "projection_variance_explained": explained,
            "distilled": distilled if cfg.objective == "distill" else None,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": {"python": platform.python_version(), "keras": keras.__version__},
        },
    }
    (out / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    export(out)  # the network the engine runs (ONNX Runtime, no TensorFlow)
    shutil.rmtree(ckpt, ignore_errors=True)
    log(f"wrote model {record['model_id']} to {out}")
    return out


__all__ = ["TrainConfig", "train"]
