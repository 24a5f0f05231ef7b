"""Training objectives beyond the seed autoencoder; all train the same encoder shape.

- ``contrastive`` (neural audio fingerprinting): a clean window and a degraded view of the same
  moment (codec, room, speed or tempo change from :mod:`.views`, plus noise at 0-10 dB, EQ, a small
  time offset and SpecAugment masks) must be each other's nearest vector among the batch (NT-Xent,
  both directions). The encoder and g() train together; the vector is g's output.
- ``cbow`` (Audio2Vec context prediction): the encoder reads the two windows before and the two
  after a slice; the decoder must rebuild the slice from the mean of their bottlenecks (MSE).
  g() is then fitted by PCA, as for the autoencoder.

Batches come from the samplers here (numpy, on the CPU, alongside training); the Keras models
define ``train_step``/``test_step`` so ``fit`` gives progress, checkpoints and resume.
"""

from __future__ import annotations

import numpy as np

from ..features import normalize_windows
from .views import add_noise, random_eq, spec_mask


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

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        w = cfg.features.window_frames
        anchors = np.empty((n, w, cfg.features.n_mels), dtype=np.float32)
        positives = np.empty_like(anchors)
        for i in range(n):
            clean, views = self.tracks[rng.choice(len(self.tracks), p=self.p)]
            t = rng.integers(0, len(clean) - w + 1)
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


def contrastive_model(encoder, g, *, temperature: float):
    """A Keras model whose ``fit`` trains ``encoder`` and ``g`` with NT-Xent on (anchor, positive)."""
    import keras
    import tensorflow as tf

    class Contrastive(keras.Model):
        def __init__(self):
            super().__init__(name="contrastive")
            self.encoder, self.g = encoder, g
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.top1 = keras.metrics.Mean(name="top1")

        def call(self, x, training=False):
            return self.g(self.encoder(x, training=training), training=training)

        def _step(self, data, training):
            anchors, positives = data
            za, zp = self(anchors, training=training), self(positives, training=training)
            logits = tf.matmul(za, zp, transpose_b=True) / temperature
            labels = tf.range(tf.shape(logits)[0])
            ce = keras.losses.sparse_categorical_crossentropy
            loss = 0.5 * tf.reduce_mean(ce(labels, logits, from_logits=True) + ce(labels, tf.transpose(logits), from_logits=True))
            hit = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32)
            return loss, tf.reduce_mean(hit)

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

    return Contrastive()


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


__all__ = ["PairSampler", "ContextSampler", "contrastive_model", "context_model"]
