"""Synthetic test music: random melodies over chords and drums, different for every seed."""

from __future__ import annotations

import numpy as np

SR = 16000


def tune(seed: int, seconds: float, *, sr: int = SR) -> np.ndarray:
    """A few seconds of random 'music' (float32 mono, peak 0.8), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n, dtype=np.float64)
    beat = rng.uniform(0.25, 0.5)
    harmonics = rng.uniform(0.1, 1.0, size=6) / np.arange(1, 7)
    pos = 0.0
    while pos < seconds:
        dur = beat * rng.choice([0.5, 1, 1, 2])
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        i0, i1 = int(pos * sr), min(n, int((pos + dur) * sr))
        tt = t[i0:i1] - pos
        env = np.exp(-tt * rng.uniform(2, 8)) * np.minimum(1, tt * 200)
        for h, a in enumerate(harmonics, 1):
            y[i0:i1] += a * env * np.sin(2 * np.pi * f0 * h * tt)
        pos += dur
    # drums: noise bursts on the beat
    for k in range(int(seconds / beat)):
        i0 = int(k * beat * sr)
        length = min(n - i0, int(0.08 * sr))
        if length > 0 and rng.random() < 0.7:
            burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.015 * sr))
            y[i0 : i0 + length] += 0.5 * burst
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def add_noise(y: np.ndarray, *, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at ``snr_db`` dB SNR."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(y))
    noise *= np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (y + noise).astype(np.float32)
