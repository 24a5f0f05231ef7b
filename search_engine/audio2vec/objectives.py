"""Training objectives beyond the seed autoencoder; all train the same encoder shape.

- ``contrastive`` (neural audio fingerprinting): a clean window and a degraded view of the same
  moment (codec, room, speed or tempo change from :mod:`.views`, plus noise at 0-10 dB, EQ, a small
  time offset and SpecAugment masks) must be each other's nearest vector among the batch (NT-Xent,
  both directions). The encoder and g() train together; the vector is g's output.
- ``cbow`` (Audio2Vec context prediction): the encoder reads the two windows before and the two
  after a slice; the decoder must rebuild the slice from the mean of their bottlenecks (MSE).
  g() is then fitted by PCA, as for the autoencoder.

- ``similarity`` (supervised contrastive, SupCon): windows of sounds of the same *kind* (their
  folder's name: an instrument family, a drum, a sentence in other voices) must lie nearer each
  other than windows of any other kind in the batch. It trains the ``similar`` space, whose
  whole-sound vectors answer "what sounds like this"; fine-tuned from a match model.

- ``distill`` (knowledge distillation from a pretrained teacher, e.g. aisfx): each window's
  vector must point where the teacher's vector of the same window points, after the teacher's
  vectors are reduced to the student's dimension by PCA (optionally whitened) and L2-normalised (cosine
  distillation, as tinyCLAP), and the batch's similarity matrix must match the teacher's
  (relational term); optionally plus SupCon on the windows' folder labels. The teacher's vectors
  are computed beforehand (``teacher/aisfx_teacher.py``) and read from a folder; the student
  sees the window degraded (noise, EQ, masks), the teacher saw it clean.

Batches come from the samplers here (numpy, on the CPU, alongside training); the Keras models
define ``train_step``/``test_step`` so ``fit`` gives progress, checkpoints and resume.
"""

from __future__ import annotations

import numpy as np

from ..features import normalize_windows, window_starts
from .views import add_noise, band_shift, random_eq, random_lowpass, spec_mask


def _to_input(power: np.ndarray, top_db: float) -> np.ndarray:
    """Mel power windows -> normalised encoder input."""
    return normalize_windows(10.0 * np.log10(np.maximum(power, 1e-10)), top_db=top_db)


class PairSampler:
    """(clean anchor, degraded positive) window pairs for the contrastive objective.

    Parameters
    ----------
    tracks : list of (clean [t, mels], [(view [t', mels], rate), ...]), mel power
    noises : list of [t, mels] mel power noise recordings
    """

    def __init__(self, tracks, noises, cfg, rng: np.random.Generator):
        self.tracks, self.noises, self.cfg, self.rng = tracks, noises, cfg, rng
        w = cfg.features.window_frames
        lengths = np.array([len(clean) - w + 1 for clean, _ in tracks], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def moments(self, n: int) -> list[tuple[int, int]]:
        """``n`` (track, start frame) anchors: every one from a random track, or, with
        ``cfg.windows_per_track`` k > 1, k from each of ``n / k`` random tracks, at least a window
        apart (other passages of the same piece: same instruments, key and style, so the batch's
        hardest negatives differ in the notes, not the sound). A track too short for k apart
        windows gives what it can; the rest of the batch is filled with random tracks' windows."""
        rng, w, k = self.rng, self.cfg.features.window_frames, self.cfg.windows_per_track
        out: list[tuple[int, int]] = []
        while len(out) < n:
            j = int(rng.choice(len(self.tracks), p=self.p))
            span = len(self.tracks[j][0]) - w + 1
            # k starts on a grid of whole windows shifted at random: never two overlapping
            slots = span // w
            if slots >= 2:
                picks = rng.choice(slots, size=min(k, slots, n - len(out)), replace=False)
                offset = rng.integers(0, span - (slots - 1) * w)
                out += [(j, int(offset + s * w)) for s in picks]
            else:
                out.append((j, int(rng.integers(0, span))))
        return out

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        w = cfg.features.window_frames
        anchors = np.empty((n, w, cfg.features.n_mels), dtype=np.float32)
        positives = np.empty_like(anchors)
        grouped = self.moments(n) if cfg.windows_per_track > 1 else None
        for i in range(n):
            if grouped is None:  # one random track per window (the draws of every earlier recipe)
                clean, views = self.tracks[rng.choice(len(self.tracks), p=self.p)]
                t = rng.integers(0, len(clean) - w + 1)
            else:
                clean, views = self.tracks[grouped[i][0]]
                t = grouped[i][1]
            anchors[i] = clean[t : t + w]
            if views and rng.random() >= cfg.clean_view_probability:
                view, rate = views[rng.integers(len(views))]
            else:
                view, rate = clean, 1.0
            s = int(round(t / rate)) + int(rng.integers(-cfg.jitter_frames, cfg.jitter_frames + 1))
            s = min(max(s, 0), len(view) - w)
            positives[i] = view[s : s + w]
        noisy = rng.random(n) < cfg.noise_probability
        if noisy.any():
            positives[noisy] = add_noise(positives[noisy], self.noises, snr_db=cfg.pair_snr_db, rng=rng)
        eq = rng.random(n) < 0.5
        if eq.any():
            positives[eq] = random_eq(positives[eq], max_db=cfg.eq_db, rng=rng)
        top = cfg.features.top_db
        anchors, positives = _to_input(anchors, top), _to_input(positives, top)
        masked = rng.random(n) < 0.5
        if masked.any():
            positives[masked] = spec_mask(positives[masked], max_frames=6, max_bands=6, rng=rng)
        return anchors, positives


class ContextSampler:
    """(neighbour windows [n, 2c, frames, mels], centre window [n, frames, mels]) for ``cbow``."""

    def __init__(self, mels, cfg, rng: np.random.Generator):
        w, c = cfg.features.window_frames, cfg.context_windows
        self.mels = [m for m in mels if len(m) >= (2 * c + 1) * w]
        if not self.mels:
            from ..errors import ParameterError

            raise ParameterError(f"cbow needs files of at least {(2 * c + 1) * w * cfg.features.frame_s:.1f} s")
        lengths = np.array([len(m) - (2 * c + 1) * w + 1 for m in self.mels], dtype=np.float64)
        self.p = lengths / lengths.sum()
        self.cfg, self.rng = cfg, rng

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        w, c = cfg.features.window_frames, cfg.context_windows
        slices = np.empty((n, 2 * c + 1, w, cfg.features.n_mels), dtype=np.float32)
        for i in range(n):
            m = self.mels[rng.choice(len(self.mels), p=self.p)]
            t = rng.integers(0, len(m) - (2 * c + 1) * w + 1)
            slices[i] = m[t : t + (2 * c + 1) * w].reshape(2 * c + 1, w, -1)
        x = _to_input(slices.reshape(-1, w, slices.shape[-1]), cfg.features.top_db).reshape(slices.shape)
        return np.delete(x, c, axis=1), x[:, c]


class LabelSampler:
    """Labelled sounds, ``k`` per label, for the ``similarity`` objective.

    Each sample is what the ``similar`` space compares: up to ``clip_windows`` consecutive windows
    of one file, every ``hop`` frames, as :meth:`Encoder.whole` takes them (a sound shorter than
    one window is padded with silence; a sound with fewer windows has the rest masked out).
    Labels are drawn as their files are (a label with many files comes up more often); the ``k``
    samples of a label come from as many of its files as it has, up to ``k``. Every sound gets light degradations
    (noise at ``label_snr_db``, EQ, a shift by up to ``band_shift`` mel bands, a low-pass,
    SpecAugment masks), so that the kind of sound, not the recording or the instrument maker, is
    what the samples of a label share.

    Parameters
    ----------
    mels : list of [t, mels] mel power spectrograms
    labels : label of each
    noises : list of [t, mels] mel power noise recordings
    """

    def __init__(self, mels, labels, noises, cfg, rng: np.random.Generator, *, k: int = 4, hop: int = 64):
        self.mels, self.noises, self.cfg, self.rng, self.k, self.hop = mels, noises, cfg, rng, k, hop
        names = sorted(set(labels))
        if len(names) < 2:
            from ..errors import ParameterError

            raise ParameterError("the similarity objective needs sounds of at least two kinds (one sub-folder per kind)")
        self.labels = np.array([names.index(lab) for lab in labels])
        self.by_label = [np.flatnonzero(self.labels == i) for i in range(len(names))]

    def _clip(self, m: np.ndarray) -> tuple[np.ndarray, int]:
        """Up to ``clip_windows`` consecutive windows of one spectrogram, those an index would take
        (:func:`window_starts`), from a random one: ``([M, W, mels], windows used)``."""
        w, most = self.cfg.features.window_frames, self.cfg.clip_windows
        starts = window_starts(len(m), window_frames=w, hop_frames=self.hop)
        if len(m) < w:  # one window, the sound then silence
            m = np.concatenate([m, np.zeros((w - len(m), m.shape[1]), m.dtype)])
        used = min(len(starts), most)
        first = int(self.rng.integers(0, len(starts) - used + 1))
        out = np.zeros((most, w, m.shape[1]), dtype=np.float32)
        for j, t in enumerate(starts[first : first + used]):
            out[j] = m[t : t + w]
        return out, used

    def batch(self, n: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """``((windows [n', M, frames, mels], mask [n', M]), label ids [n'])``, ``n'`` = ``n``
        rounded down to a multiple of ``k``."""
        cfg, rng, k = self.cfg, self.rng, self.k
        chosen: list[int] = []
        while len(chosen) < n // k:
            lab = int(self.labels[rng.integers(len(self.labels))])
            if lab not in chosen or len(chosen) >= len(self.by_label):
                chosen.append(lab)
        most, w = cfg.clip_windows, cfg.features.window_frames
        x = np.empty((len(chosen) * k, most, w, cfg.features.n_mels), dtype=np.float32)
        mask = np.zeros((len(x), most), dtype=np.float32)
        for i, lab in enumerate(chosen):
            files = self.by_label[lab]
            for j, f in enumerate(rng.choice(files, k, replace=len(files) < k)):
                x[i * k + j], used = self._clip(self.mels[f])
                mask[i * k + j, :used] = 1.0
        # one condition per sound: its windows in a row are degraded as one long window
        seq = x.reshape(len(x), most * w, x.shape[-1])
        for apply, p in (
            (lambda v: add_noise(v, self.noises, snr_db=cfg.label_snr_db, rng=rng), cfg.noise_probability),
            (lambda v: random_eq(v, max_db=cfg.eq_db, rng=rng), 0.5),
            (lambda v: band_shift(v, max_bands=cfg.band_shift, rng=rng), 0.5 if cfg.band_shift else 0.0),
            (lambda v: random_lowpass(v, lowest_band=x.shape[-1] // 2, rng=rng), 0.3),
        ):
            some = rng.random(len(seq)) < p
            if some.any():
                seq[some] = apply(seq[some])
        flat = _to_input(seq.reshape(-1, w, x.shape[-1]), cfg.features.top_db)
        masked = rng.random(len(flat)) < 0.3
        if masked.any():
            flat[masked] = spec_mask(flat[masked], max_frames=6, max_bands=6, rng=rng)
        return (flat.reshape(x.shape), mask), np.repeat(np.array(chosen), k)


def load_teacher_vectors(folder) -> dict:
    """A teacher-vector folder (``teacher.json`` + ``vectors.npz``, see ``teacher/aisfx_teacher.py``):
    ``{"meta": dict, "paths": [str], "file_index": [n], "start_frame": [n], "vectors": [n, d]}``."""
    import json
    from pathlib import Path

    from ..errors import ParameterError

    folder = Path(folder)
    meta_path, vec_path = folder / "teacher.json", folder / "vectors.npz"
    if not (meta_path.exists() and vec_path.exists()):
        raise ParameterError(f"{folder} is not a teacher-vector folder (teacher.json and vectors.npz are needed)")
    z = np.load(vec_path)
    out = {k: z[k] for k in ("file_index", "start_frame", "vectors")}
    out["paths"] = [str(p) for p in z["paths"]]
    out["meta"] = json.loads(meta_path.read_text())
    if not (len(out["file_index"]) == len(out["start_frame"]) == len(out["vectors"])) or out["vectors"].ndim != 2:
        raise ParameterError(f"{vec_path}: file_index, start_frame and vectors differ in length")
    return out


def target_space(vectors: np.ndarray, dim: int, *, whiten: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """PCA of the teacher's (L2-normalised) vectors: ``(mean [d], projection [d, dim], variance kept)``;
    with ``whiten`` each axis is divided by its standard deviation. Targets are
    ``l2_normalize((unit(v) - mean) @ projection)`` (:func:`teacher_targets`)."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = v.mean(axis=0)
    _, s, vt = np.linalg.svd(v - mean, full_matrices=False)
    if dim > len(s):
        from ..errors import ParameterError

        raise ParameterError(f"the teacher's vectors have {len(s)} principal axes, fewer than the student's {dim} dimensions")
    proj = vt[:dim].T
    if whiten:
        proj = proj / np.maximum(s[:dim] / np.sqrt(max(len(v) - 1, 1)), 1e-12)
    return mean.astype(np.float32), proj.astype(np.float32), float((s[:dim] ** 2).sum() / (s**2).sum())


def teacher_targets(vectors: np.ndarray, mean: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """Unit target vectors ``[n, dim]`` of teacher vectors in the space of :func:`target_space`."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    t = (v - mean) @ proj
    return (t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class DistillSampler:
    """Teacher-aligned windows for the ``distill`` objective, ``k`` per label (folder).

    Parameters
    ----------
    mels : list of [t, mels] mel power spectrograms
    labels : label of each spectrogram
    windows : list of (spectrogram index, start frame, target [dim]): the windows the teacher embedded
        (a target of zeros: a window the teacher did not embed, used by the SupCon term only)
    noises : list of [t, mels] mel power noise recordings

    A batch is ``((windows [n, W, mels], targets [n, dim]), label ids [n])``. Each window is taken
    at its start frame moved by up to ``jitter_frames``, then degraded like :class:`LabelSampler`'s
    sounds (noise at ``label_snr_db``, EQ, a shift by up to ``distill_band_shift`` bands, a low-pass,
    SpecAugment masks); its target is the teacher's vector of the clean window.
    """

    def __init__(self, mels, labels, windows, noises, cfg, rng: np.random.Generator, *, k: int = 4):
        from ..errors import ParameterError

        if not windows:
            raise ParameterError("no teacher vectors for any training file (are the teacher's paths these files?)")
        self.mels, self.noises, self.cfg, self.rng, self.k = mels, noises, cfg, rng, k
        names = sorted(set(labels))
        lab = np.array([names.index(x) for x in labels])
        self.spec = np.array([w[0] for w in windows], dtype=np.int64)
        self.start = np.array([w[1] for w in windows], dtype=np.int64)
        self.targets = np.stack([w[2] for w in windows]).astype(np.float32)
        self.labels = lab[self.spec]
        self.by_label = [np.flatnonzero(self.labels == i) for i in range(len(names))]
        self.by_label = [b for b in self.by_label if len(b)]
        self.label_of = np.array([int(self.labels[b[0]]) for b in self.by_label])
        self.cum = np.cumsum([len(b) for b in self.by_label])

    def batch(self, n: int):
        cfg, rng, k = self.cfg, self.rng, self.k
        w, m = cfg.features.window_frames, cfg.features.n_mels
        groups = max(1, n // k)
        chosen: list[int] = []
        while len(chosen) < groups:
            # labels come up as often as their windows: draw a window, take its label
            j = int(np.searchsorted(self.cum, rng.integers(len(self.spec)), side="right"))
            if j not in chosen or len(chosen) >= len(self.by_label):
                chosen.append(j)
        idx = np.concatenate([rng.choice(self.by_label[j], k, replace=len(self.by_label[j]) < k) for j in chosen])
        x = np.zeros((len(idx), w, m), dtype=np.float32)
        for i, t in enumerate(idx):
            spec = self.mels[self.spec[t]]
            s = int(self.start[t]) + int(rng.integers(-cfg.jitter_frames, cfg.jitter_frames + 1))
            s = min(max(s, 0), max(len(spec) - w, 0))
            part = spec[s : s + w]
            x[i, : len(part)] = part
        for apply, p in (
            (lambda v: add_noise(v, self.noises, snr_db=cfg.label_snr_db, rng=rng), cfg.noise_probability),
            (lambda v: random_eq(v, max_db=cfg.eq_db, rng=rng), 0.5),
            (lambda v: band_shift(v, max_bands=cfg.distill_band_shift, rng=rng), 0.5 if cfg.distill_band_shift else 0.0),
            (lambda v: random_lowpass(v, lowest_band=m // 2, rng=rng), 0.3),
        ):
            some = rng.random(len(x)) < p
            if some.any():
                x[some] = apply(x[some])
        x = _to_input(x, cfg.features.top_db)
        masked = rng.random(len(x)) < 0.3
        if masked.any():
            x[masked] = spec_mask(x[masked], max_frames=6, max_bands=6, rng=rng)
        return (x, self.targets[idx]), self.label_of[np.repeat(np.array(chosen), k)].astype(np.int32)


def distill_model(encoder, g, *, cosine_weight: float, relation_weight: float, supcon_weight: float, temperature: float):
    """A Keras model whose ``fit`` trains ``encoder`` and ``g`` to reproduce a teacher's geometry.

    Loss on a batch of unit student vectors ``z`` and unit teacher targets ``t``:
    ``cosine_weight * mean(1 - z·t)`` + ``relation_weight * mean((z zᵀ - t tᵀ)²)`` (off the
    diagonal) + ``supcon_weight * SupCon(z, labels)``; windows whose target is zero (no teacher
    vector) count in SupCon only. ``top1``: the share of windows whose nearest target in the batch
    is their own.
    """
    import tensorflow as tf

    class Distill(_embedding_model_base()):
        def call(self, inputs, training=False):
            x = inputs[0] if isinstance(inputs, (tuple, list)) else inputs  # (windows, targets) or windows
            return self.g(self.encoder(x, training=training), training=training)

        def _step(self, data, training):
            (x, t), y = data
            z = self(x, training=training)
            has = tf.cast(tf.reduce_sum(t * t, axis=1) > 0, tf.float32)  # a zero target: a labelled window only
            cos = tf.reduce_sum(z * t, axis=1)
            loss = cosine_weight * tf.reduce_sum(has * (1.0 - cos)) / tf.maximum(tf.reduce_sum(has), 1.0)
            n = tf.shape(z)[0]
            self_mask = tf.eye(n, dtype=tf.bool)
            if relation_weight:
                diff = tf.matmul(z, z, transpose_b=True) - tf.matmul(t, t, transpose_b=True)
                off = (1.0 - tf.cast(self_mask, tf.float32)) * has[:, None] * has[None, :]
                loss += relation_weight * tf.reduce_sum(tf.square(diff) * off) / tf.maximum(tf.reduce_sum(off), 1.0)
            if supcon_weight:
                logits = tf.where(self_mask, -1e9, tf.matmul(z, z, transpose_b=True) / temperature)
                pos = tf.cast(tf.logical_and(tf.equal(y[:, None], y[None, :]), tf.logical_not(self_mask)), tf.float32)
                log_p = logits - tf.reduce_logsumexp(logits, axis=1, keepdims=True)
                loss += supcon_weight * tf.reduce_mean(-tf.reduce_sum(pos * log_p, axis=1) / tf.maximum(tf.reduce_sum(pos, axis=1), 1.0))
            nearest = tf.argmax(tf.matmul(z, t, transpose_b=True), axis=1, output_type=tf.int32)
            return loss, tf.reduce_mean(tf.cast(tf.equal(nearest, tf.range(n)), tf.float32))

    return Distill(encoder, g, "distill")


def similarity_model(encoder, g, *, temperature: float):
    """A Keras model whose ``fit`` trains ``encoder`` and ``g`` with SupCon on (windows, labels)."""
    import tensorflow as tf

    class Similarity(_embedding_model_base()):
        def call(self, inputs, training=False):
            """``(windows [n, M, W, mels], mask [n, M])`` -> whole-sound vectors ``[n, dim]``:
            the window vectors averaged over the mask, L2-normalised (as :func:`query.pool`)."""
            x, mask = inputs
            shape = tf.shape(x)
            z = self.g(self.encoder(tf.reshape(x, [-1, shape[2], shape[3]]), training=training), training=training)
            z = tf.reduce_sum(tf.reshape(z, [shape[0], shape[1], -1]) * mask[:, :, None], axis=1)
            return tf.math.l2_normalize(z, axis=1)

        def _step(self, data, training):
            inputs, y = data
            z = self(inputs, training=training)
            self_mask = tf.eye(tf.shape(z)[0], dtype=tf.bool)
            logits = tf.where(self_mask, -1e9, tf.matmul(z, z, transpose_b=True) / temperature)
            pos = tf.cast(tf.logical_and(tf.equal(y[:, None], y[None, :]), tf.logical_not(self_mask)), tf.float32)
            log_p = logits - tf.reduce_logsumexp(logits, axis=1, keepdims=True)
            loss = tf.reduce_mean(-tf.reduce_sum(pos * log_p, axis=1) / tf.maximum(tf.reduce_sum(pos, axis=1), 1.0))
            nearest = tf.argmax(logits, axis=1, output_type=tf.int32)
            return loss, tf.reduce_mean(tf.cast(tf.equal(tf.gather(y, nearest), y), tf.float32))

    return Similarity(encoder, g, "similarity")


def _embedding_model_base():
    """Base of the two contrastive training models: ``encoder`` then ``g``; the subclass's
    ``_step(data, training) -> (loss, top1)`` is the objective; ``fit`` tracks loss and top-1."""
    import keras
    import tensorflow as tf

    class EmbeddingModel(keras.Model):
        def __init__(self, encoder, g, name):
            super().__init__(name=name)
            self.encoder, self.g = encoder, g
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.top1 = keras.metrics.Mean(name="top1")

        def call(self, x, training=False):
            return self.g(self.encoder(x, training=training), training=training)

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss, top1 = self._step(data, True)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return self._track(loss, top1)

        def test_step(self, data):
            return self._track(*self._step(data, False))

        def _track(self, loss, top1):
            self.loss_tracker.update_state(loss)
            self.top1.update_state(top1)
            return {"loss": self.loss_tracker.result(), "top1": self.top1.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.top1]

    return EmbeddingModel


def contrastive_model(encoder, g, *, temperature: float, align_weight: float = 0.0):
    """A Keras model whose ``fit`` trains ``encoder`` and ``g`` with NT-Xent on (anchor, positive),
    plus ``align_weight`` times the pairs' mean squared Euclidean distance (unit vectors: 0 to 4)."""
    import keras
    import tensorflow as tf

    class Contrastive(_embedding_model_base()):
        def _step(self, data, training):
            anchors, positives = data
            za, zp = self(anchors, training=training), self(positives, training=training)
            logits = tf.matmul(za, zp, transpose_b=True) / temperature
            labels = tf.range(tf.shape(logits)[0])
            ce = keras.losses.sparse_categorical_crossentropy
            loss = 0.5 * tf.reduce_mean(ce(labels, logits, from_logits=True) + ce(labels, tf.transpose(logits), from_logits=True))
            if align_weight:
                loss += align_weight * tf.reduce_mean(tf.reduce_sum(tf.square(za - zp), axis=1))
            hit = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32)
            return loss, tf.reduce_mean(hit)

    return Contrastive(encoder, g, "contrastive")


def context_model(encoder, decoder):
    """A Keras model whose ``fit`` trains ``encoder`` and ``decoder`` on (neighbours, centre)."""
    import keras
    import tensorflow as tf

    class ContextPrediction(keras.Model):
        def __init__(self):
            super().__init__(name="cbow")
            self.encoder, self.decoder = encoder, decoder
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, neighbours, training=False):
            shape = tf.shape(neighbours)
            h = self.encoder(tf.reshape(neighbours, [-1, shape[2], shape[3]]), training=training)
            h = tf.reduce_mean(tf.reshape(h, [shape[0], shape[1], -1]), axis=1)
            return self.decoder(h, training=training)

        def _loss(self, data, training):
            neighbours, centre = data
            return tf.reduce_mean(tf.square(self(neighbours, training=training) - centre))

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss = self._loss(data, True)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        def test_step(self, data):
            self.loss_tracker.update_state(self._loss(data, False))
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker]

    return ContextPrediction()


__all__ = [
    "PairSampler", "ContextSampler", "LabelSampler", "DistillSampler", "contrastive_model", "context_model",
    "similarity_model", "distill_model", "load_teacher_vectors", "target_space", "teacher_targets",
]
