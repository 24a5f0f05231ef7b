"""Degraded views of training audio, for the contrastive and context objectives.

Two kinds, chosen for speed (training runs on a CPU without starving):

- **Waveform views**, made once per training file before training (:func:`waveform_views`): a
  low-bitrate MP3 round trip, a room (synthetic reverb, then a telephone or random band), a
  tape-speed change (tempo and pitch together) and a phase-vocoder tempo change with a pitch shift.
  Each view knows its time ``rate``: frame ``t`` of the original is near frame ``t / rate`` of
  the view.
- **Mel-domain degradations**, drawn per training pair on mel *power* windows ``(n, frames, mels)``
  (:func:`add_noise`, :func:`random_eq`), and on normalised windows (:func:`spec_mask`).

Everything takes an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import augment


@dataclass(frozen=True)
class View:
    """One degraded version of a waveform."""

    name: str
    y: np.ndarray  #: [shape=(m,), float32] at the same sample rate as the original
    rate: float  #: time scale: original frame ``t`` is near view frame ``t / rate``


def waveform_views(y: np.ndarray, *, sr: int, rng: np.random.Generator, codecs: Sequence[str] = ("mp3",), varied: bool = False) -> list[View]:
    """Degraded versions of ``y`` (mono float32 at ``sr`` Hz) for contrastive pairs.

    - ``codec``: a round trip through one of ``codecs`` (an FFmpeg build may lack one: pass the
      available ones, :func:`augment.available_codecs`) at 24-64 kbps, aligned (:func:`augment.codec`);
      none when ``codecs`` is empty;
    - ``room``: reverb (RT60 0.2-1.0 s, direct-to-reverb -3..+9 dB), then the telephone band
      (300-3400 Hz at 8 kHz) half the time, otherwise a random band-pass;
    - ``speed``: played 3-7 % faster or slower (tempo and pitch together);
    - ``tempo``: tempo changed 3-7 % (phase vocoder), pitch shifted up to +-60 cents.

    ``varied`` widens each kind and adds two (the match model of issue 18): the codec's bitrate
    reaches down to 16 kbps, the room's RT60 reaches 1.5 s, speed and tempo change by 1-9 %, and

    - ``pitch``: pitch shifted 30-150 cents up or down, tempo kept (phase vocoder);
    - ``chain``: a speed change of up to 6 %, a room, and a codec one after another.
    """
    views = []
    rates_kbps = [16, 24, 32, 48, 64] if varied else [24, 32, 48, 64]

    def coded(x):
        name = codecs[0] if len(codecs) == 1 else str(rng.choice(list(codecs)))
        return augment.codec(x, sr=sr, codec=name, bitrate_kbps=int(rng.choice(rates_kbps)))

    def room(x):
        ir = augment.synth_room_ir(sr=sr, rt60_s=float(rng.uniform(0.2, 1.5 if varied else 1.0)), rng=rng,
                                   direct_to_reverb_db=float(rng.uniform(-3, 9)))
        wet = augment.reverb(x, ir)
        if rng.random() < 0.5:
            return augment.telephone(wet, sr=sr)
        lo = float(rng.uniform(50, 500))
        return augment.bandpass(wet, sr=sr, low_hz=lo, high_hz=float(rng.uniform(max(2500.0, 4 * lo), 0.48 * sr)))

    def change(lo: float, hi: float) -> float:
        return 1.0 + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(lo, hi))

    lo, hi = (0.01, 0.09) if varied else (0.03, 0.07)
    if codecs:
        views.append(View("codec", coded(y), 1.0))
    views.append(View("room", room(y), 1.0))
    rate = change(lo, hi)
    views.append(View("speed", augment.speed(y, rate=rate), rate))
    rate = change(lo, hi)
    pitch = 2.0 ** (float(rng.uniform(-60, 60)) / 1200)  # one phase vocoder pass: stretch, then speed
    views.append(View("tempo", augment.speed(augment.time_stretch(y, rate=rate / pitch), rate=pitch), rate))
    if varied:
        cents = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(30, 150))
        views.append(View("pitch", augment.pitch_shift(y, sr=sr, cents=cents), 1.0))
        rate = change(0.0, 0.06)
        wet = room(augment.speed(y, rate=rate))
        views.append(View("chain", coded(wet) if codecs else wet, rate))
    return views


class NoiseBank(list):
    """Noise recordings (mel power ``[t, mels]``) drawn source by source: each group (one
    ``--noise`` folder, or the synthetic noises) is as likely as any other, however many files it
    holds. A plain list of recordings draws file by file."""

    def __init__(self, groups: list[list[np.ndarray]]):
        groups = [g for g in groups if g]
        super().__init__(m for g in groups for m in g)
        self.p = np.concatenate([np.full(len(g), 1.0 / (len(g) * len(groups))) for g in groups]) if groups else np.zeros(0)


def noise_weights(noises: list[np.ndarray]) -> np.ndarray | None:
    """The chance of drawing each noise recording: a :class:`NoiseBank`'s by source, else None
    (every recording alike)."""
    return noises.p if isinstance(noises, NoiseBank) else None


def draw_noise(noises: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One noise recording, drawn with :func:`noise_weights`."""
    p = noise_weights(noises)
    return noises[rng.choice(len(noises), p=p)] if p is not None else noises[rng.integers(len(noises))]


def add_noise(power: np.ndarray, noises: list[np.ndarray], *, snr_db: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Mix a random noise window into each window of ``power`` at a random SNR (in place).

    Parameters
    ----------
    power : np.ndarray [shape=(n, frames, mels)], mel power (linear)
    noises : list of np.ndarray [shape=(t, mels)], mel power of noise recordings (``t >= frames``),
        or a :class:`NoiseBank` (drawn source by source)
    snr_db : (low, high)
        SNR range in dB, measured on the window's total mel power.
    """
    n, frames, _ = power.shape
    for i in range(n):
        a = draw_noise(noises, rng)
        start = rng.integers(0, len(a) - frames + 1)
        noise = a[start : start + frames]
        snr = rng.uniform(*snr_db)
        power[i] += noise * (power[i].sum() / max(float(noise.sum()), 1e-12) / 10 ** (snr / 10))
    return power


def random_eq(power: np.ndarray, *, max_db: float, rng: np.random.Generator) -> np.ndarray:
    """Multiply each window by a random smooth gain curve over the mel bands, within +-``max_db``."""
    n, _, mels = power.shape
    x = np.linspace(-1.0, 1.0, mels)
    coef = rng.uniform(-1.0, 1.0, size=(n, 3))
    curve = coef[:, :1] * x + coef[:, 1:2] * (2 * x**2 - 1) + coef[:, 2:] * (4 * x**3 - 3 * x)
    curve *= max_db / np.maximum(np.abs(curve).max(axis=1, keepdims=True), 1e-9)
    power *= (10.0 ** (curve / 10.0))[:, None, :].astype(np.float32)
    return power


def band_shift(power: np.ndarray, *, max_bands: int, rng: np.random.Generator) -> np.ndarray:
    """Move each window's spectrum up or down by a random whole number of mel bands, at most
    ``max_bands`` (in place): pitch and formants change together, as when another sampler or
    synthesiser plays the same kind of sound. The edge band fills the bands left empty."""
    for i, s in enumerate(rng.integers(-max_bands, max_bands + 1, size=len(power))):
        if s > 0:
            power[i, :, s:] = power[i, :, :-s].copy()
            power[i, :, :s] = power[i, :, s : s + 1]
        elif s < 0:
            power[i, :, :s] = power[i, :, -s:].copy()
            power[i, :, s:] = power[i, :, s - 1 : s]
    return power


def random_lowpass(power: np.ndarray, *, lowest_band: int, rng: np.random.Generator) -> np.ndarray:
    """Roll off each window's top mel bands, 6 dB more per band above a random band at or above
    ``lowest_band`` (in place): sample sets stored at low sample rates, dull recordings."""
    n, _, mels = power.shape
    cut = rng.integers(lowest_band, mels + 1, size=n)
    gain_db = -6.0 * np.maximum(np.arange(mels)[None, :] - cut[:, None], 0)
    power *= (10.0 ** (gain_db / 10.0))[:, None, :].astype(np.float32)
    return power


def spec_mask(x: np.ndarray, *, max_frames: int, max_bands: int, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment: one time stripe and one band stripe per window set to 0 (the window mean), in place.

    ``x`` is normalised encoder input ``(n, frames, mels)``.
    """
    n, frames, mels = x.shape
    for i in range(n):
        w = rng.integers(0, max_frames + 1)
        t = rng.integers(0, frames - w + 1)
        x[i, t : t + w] = 0.0
        b = rng.integers(0, max_bands + 1)
        m = rng.integers(0, mels - b + 1)
        x[i, :, m : m + b] = 0.0
    return x


__all__ = ["View", "NoiseBank", "waveform_views", "noise_weights", "draw_noise", "add_noise", "random_eq", "band_shift", "random_lowpass", "spec_mask"]
