"""Labelled kinds of sound synthesised in code: a timbre source independent of every soundfont.

Each label has a patch maker, ``make(rng) -> Patch``, that draws a random patch of its kind (the
partials, envelopes, filters and noises that make a piano a piano, a bird a bird); no two sounds
share a patch. Instruments play the phrases :mod:`kinds` gives them (``render_notes``); drums and
effects are one-shot events (``render_event``). The synthesis is textbook: additive partials
(harmonic or inharmonic, fixed or brightness-following), Karplus-Strong strings, FM, filtered
noise, formant filters. All functions work at ``SR`` (16 kHz) on float64 arrays in [-1, 1].

Labels: the GM instrument families of ``kinds.FAMILIES`` (less ``synth_effects`` and ``ethnic``),
``drums`` (grooves of synthesised hits), the drum kinds of ``rendering.DRUM_NOTES`` and the
effect categories (``water`` ... ``horn``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import signal

SR = 16000
NYQ = SR / 2

Rng = np.random.Generator
#: a note renderer: (frequency Hz, duration s, velocity 0-1) -> samples
Patch = Callable[[float, float, float], np.ndarray]


# ---------------------------------------------------------------------------------------------
# building blocks (pure functions on arrays; frequencies in Hz, times in seconds)
# ---------------------------------------------------------------------------------------------


def n_of(seconds: float) -> int:
    return max(1, int(round(seconds * SR)))


def envelope(n: int, attack: float, decay: float, sustain: float, release: float, held: float) -> np.ndarray:
    """ADSR gain over ``n`` samples; the note is held ``held`` s, then released over ``release`` s."""
    t = np.arange(n) / SR
    a = np.clip(t / max(attack, 1e-4), 0, 1)
    d = sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / max(decay, 1e-4))
    g = np.where(t < attack, a, d)
    off = np.clip((t - held) / max(release, 1e-4), 0, 1)
    return g * (1 - off) ** 2


def vibrato(n: int, f: float, rate: float, depth_cents: float, rng: Rng, delay: float = 0.0) -> np.ndarray:
    """Instantaneous frequency (Hz per sample) of a note at ``f`` with vibrato that fades in after ``delay`` s."""
    t = np.arange(n) / SR
    fade = np.clip((t - delay) / 0.3, 0, 1) if delay else 1.0
    return f * 2 ** (depth_cents / 1200 * fade * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)))


def additive(freq_t: np.ndarray, amps: np.ndarray, ratios: np.ndarray | None = None) -> np.ndarray:
    """Sum of partials at ``ratios`` × the instantaneous frequency ``freq_t`` ([n]); ``amps`` is
    ``[K]`` (fixed) or ``[K, n]`` (changing). Partials at or above Nyquist are dropped."""
    k = np.arange(1, len(amps) + 1, dtype=np.float64) if ratios is None else np.asarray(ratios, dtype=np.float64)
    phase = 2 * np.pi * np.cumsum(freq_t) / SR
    keep = k * float(np.max(freq_t)) < NYQ * 0.95
    if not keep.any():
        return np.zeros_like(freq_t)
    a = amps[keep]
    parts = np.sin(np.outer(k[keep], phase) + np.arange(keep.sum())[:, None] * 1.7)
    return (a[:, None] * parts).sum(0) if a.ndim == 1 else (a * parts).sum(0)


def wave_amps(kind: str, k: int, width: float = 0.5) -> np.ndarray:
    """Harmonic amplitudes of a band-limited ``saw``, ``square``, ``triangle`` or ``pulse``."""
    h = np.arange(1, k + 1, dtype=np.float64)
    if kind == "saw":
        return 1 / h
    if kind == "square":
        return np.where(h % 2 == 1, 1 / h, 0.0)
    if kind == "triangle":
        return np.where(h % 2 == 1, 1 / h**2, 0.0)
    return np.abs(np.sin(np.pi * h * width)) / h  # pulse


def modes(f: float, ratios, amps, t60s, n: int) -> np.ndarray:
    """Inharmonic decaying partials (a struck bar, bell, membrane): ``t60s`` in seconds per partial."""
    t = np.arange(n) / SR
    y = np.zeros(n)
    for r, a, t60 in zip(ratios, amps, t60s):
        if f * r < NYQ * 0.95:
            y += a * np.sin(2 * np.pi * f * r * t + r) * np.exp(-6.9 * t / max(t60, 1e-3))
    return y


def noise(n: int, rng: Rng, colour: float = 0.0) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^colour (0 white, 1 pink, 2 brown), unit RMS."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 10.0)
    y = np.fft.irfft(spec / f ** (colour / 2), n)
    return y / (np.std(y) + 1e-12)


def band(y: np.ndarray, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
    """Butterworth low-, high- or band-pass (``None`` leaves that side open)."""
    low = low if low and low > 20 else None
    high = high if high and high < NYQ * 0.95 else None
    if low and high and low < high:
        sos = signal.butter(order, [low, high], "bandpass", fs=SR, output="sos")
    elif low:
        sos = signal.butter(order, low, "highpass", fs=SR, output="sos")
    elif high:
        sos = signal.butter(order, high, "lowpass", fs=SR, output="sos")
    else:
        return y
    return signal.sosfilt(sos, y)


def resonators(y: np.ndarray, freqs, qs, gains) -> np.ndarray:
    """A parallel bank of resonant band-passes (formants, instrument bodies)."""
    out = np.zeros_like(y)
    for f, q, g in zip(freqs, qs, gains):
        if 30 < f < NYQ * 0.95:
            b, a = signal.iirpeak(f, q, fs=SR)
            out += g * signal.lfilter(b, a, y)
    return out


def karplus(f: float, n: int, rng: Rng, damping: float, brightness: float, pluck: float = 0.2) -> np.ndarray:
    """A plucked string (Karplus-Strong): a burst of filtered noise in a delay loop of 1/f s.

    ``damping`` is the loop gain per period (0.9-0.9995), ``brightness`` the excitation's cut-off as
    a fraction of Nyquist, ``pluck`` the position along the string (a comb on the excitation)."""
    period = max(2, int(round(SR / f)))
    x = np.zeros(n)
    burst = band(rng.uniform(-1, 1, period), None, brightness * NYQ)
    shift = max(1, int(pluck * period))
    burst = burst - np.roll(burst, shift) * 0.8
    x[:period] = burst
    a = np.zeros(period + 2)
    a[0], a[period], a[period + 1] = 1.0, -damping / 2, -damping / 2
    return signal.lfilter([1.0], a, x)


def fm(f: float, n: int, ratio: float, index: np.ndarray | float) -> np.ndarray:
    """Two-operator FM: a carrier at ``f`` modulated at ``ratio`` × ``f`` with ``index`` (may change over time)."""
    t = np.arange(n) / SR
    return np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * ratio * t))


def drive(y: np.ndarray, gain: float) -> np.ndarray:
    """Soft clipping (an overdriven amplifier)."""
    return np.tanh(gain * y) / np.tanh(gain)


def normalise(y: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y / peak if peak > 1e-9 else y


def cents(rng: Rng, most: float) -> float:
    return 2 ** (rng.uniform(-most, most) / 1200)


def ensemble(voices: int, spread_cents: float, rng: Rng, one: Callable[[float, Rng], np.ndarray], f: float) -> np.ndarray:
    """Several slightly detuned copies of one voice (a section, a chorus)."""
    return sum(one(f * cents(rng, spread_cents), rng) for _ in range(voices)) / np.sqrt(voices)


# ---------------------------------------------------------------------------------------------
# instrument families: make(rng) -> Patch
# ---------------------------------------------------------------------------------------------


def piano(rng: Rng) -> Patch:
    variant = rng.choice(["acoustic", "acoustic", "electric", "harpsichord"])
    b = 10 ** rng.uniform(-4.5, -3.0)
    t60, tilt, hammer = rng.uniform(1.5, 6.0), rng.uniform(0.8, 1.6), rng.uniform(0.08, 0.2)
    ratio, index = rng.choice([1.0, 1.0, 14.0]), rng.uniform(1.0, 4.0)

    def note(f, dur, vel):
        n = n_of(dur + 0.4)
        held = np.clip(envelope(n, 0.001, 10, 1, 0.15, dur), 0, 1)
        if variant == "electric":
            t = np.arange(n) / SR
            idx = index * vel * np.exp(-t / 0.3)
            y = fm(f, n, ratio, idx) * np.exp(-t * 6.9 / t60)
        elif variant == "harpsichord":
            y = karplus(f, n, rng, 0.998, 0.9, pluck=rng.uniform(0.05, 0.15))
        else:
            k = np.arange(1, 40)
            ratios = k * np.sqrt(1 + b * k**2)
            amps = np.abs(np.sin(np.pi * k * hammer)) / k**tilt * (0.5 + vel)
            decays = t60 * (220 / max(f, 50)) ** 0.5 / k**0.7
            y = sum(modes(f * cents(rng, 1.5), ratios, amps, decays, n) for _ in range(2))
            thump = band(noise(n_of(0.02), rng), 50, 2500) * np.exp(-np.arange(n_of(0.02)) / (0.004 * SR))
            y[: len(thump)] += 0.3 * vel * thump
        return y * held

    return note


def chromatic_percussion(rng: Rng) -> Patch:
    kinds = {
        "marimba": ([1, 3.93, 9.2], [1, 0.3, 0.1]),
        "xylophone": ([1, 3.0, 6.1, 10.7], [1, 0.5, 0.2, 0.1]),
        "vibraphone": ([1, 4.0, 10.2], [1, 0.3, 0.1]),
        "glockenspiel": ([1, 2.76, 5.40, 8.93], [1, 0.6, 0.4, 0.2]),
        "music_box": ([1, 2.0, 3.0, 4.2], [1, 0.3, 0.15, 0.1]),
        "bell": ([0.5, 1, 1.19, 1.5, 2.0, 2.5, 3.0], [0.6, 1, 0.7, 0.5, 0.4, 0.3, 0.2]),
    }
    name = rng.choice(list(kinds))
    ratios, amps = kinds[name]
    ratios = np.array(ratios) * rng.uniform(0.98, 1.02, len(ratios))
    t60 = rng.uniform(0.3, 1.2) if name in ("marimba", "xylophone") else rng.uniform(1.0, 4.0)
    trem = rng.uniform(4, 7) if name == "vibraphone" and rng.random() < 0.7 else 0.0

    def note(f, dur, vel):
        n = n_of(max(dur, 0.3) + min(t60, 1.5))
        y = modes(f, ratios, np.array(amps) * vel, [t60 / (1 + 0.5 * i) for i in range(len(ratios))], n)
        if trem:
            y *= 1 - 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * trem * np.arange(n) / SR))
        return y

    return note


def organ(rng: Rng) -> Patch:
    variant = rng.choice(["drawbar", "drawbar", "pipe", "reed"])
    if variant == "drawbar":
        ratios = np.array([0.5, 1.5, 1, 2, 3, 4, 5, 6, 8])
        amps = rng.choice([0, 0.25, 0.5, 0.75, 1.0], len(ratios)) * (rng.random(len(ratios)) < 0.7)
        amps[2] = max(amps[2], 0.5)
    elif variant == "pipe":
        ratios = np.arange(1, 24, dtype=float)
        amps = 1 / ratios ** rng.uniform(0.6, 1.6)
        if rng.random() < 0.5:
            ratios = np.concatenate([ratios, ratios * 2])
            amps = np.concatenate([amps, amps * 0.5])
    else:  # accordion, harmonica: a reed pair beating
        ratios = np.arange(1, 24, dtype=float)
        amps = wave_amps("pulse", 23, rng.uniform(0.1, 0.4))
    beat = cents(rng, 15) if variant == "reed" else 1.0
    leslie = rng.uniform(4, 7) if rng.random() < 0.4 else 0.0
    attack = rng.uniform(0.005, 0.04)

    def note(f, dur, vel):
        n = n_of(dur + 0.1)
        freq = np.full(n, f)
        if leslie:
            freq = vibrato(n, f, leslie, 8, rng)
        y = additive(freq, amps, ratios)
        if beat != 1.0:
            y += additive(freq * beat, amps, ratios)
        if leslie:
            y *= 1 + 0.25 * np.sin(2 * np.pi * leslie * np.arange(n) / SR)
        return y * envelope(n, attack, 1, 1, 0.06, dur)

    return note


def guitar(rng: Rng) -> Patch:
    variant = rng.choice(["nylon", "steel", "electric", "overdrive", "muted"])
    damping = {"muted": rng.uniform(0.95, 0.98), "nylon": rng.uniform(0.993, 0.997)}.get(variant, rng.uniform(0.996, 0.9992))
    bright = {"nylon": rng.uniform(0.15, 0.35), "electric": rng.uniform(0.25, 0.5)}.get(variant, rng.uniform(0.4, 0.9))
    pluck, gain = rng.uniform(0.08, 0.3), rng.uniform(4, 25)
    body = rng.uniform([90, 180, 350], [120, 260, 600])

    def note(f, dur, vel):
        n = n_of(dur + 0.25)
        y = karplus(f, n, rng, damping, bright, pluck) * vel
        if variant in ("nylon", "steel"):
            y = y + 0.5 * resonators(y, body, [4, 6, 8], [1, 0.6, 0.4])
        if variant == "overdrive":
            y = band(drive(normalise(y), gain), 80, rng.uniform(2500, 5000))
        return y * envelope(n, 0.001, 10, 1, 0.08, dur)

    return note


def bass(rng: Rng) -> Patch:
    variant = rng.choice(["finger", "slap", "synth", "fretless"])
    wave, cutoff = rng.choice(["saw", "square"]), rng.uniform(2, 8)

    def note(f, dur, vel):
        n = n_of(dur + 0.15)
        if variant == "synth":
            env = envelope(n, 0.003, rng.uniform(0.05, 0.3), 0.3, 0.05, dur)
            amps = wave_amps(wave, 60)[:, None] * np.exp(-np.arange(60)[:, None] / (cutoff * (0.3 + env)))
            y = additive(np.full(n, f), amps)
        elif variant == "fretless":
            y = additive(vibrato(n, f, 5, 10, rng, delay=0.2), 1 / np.arange(1, 12) ** 1.8)
            y *= envelope(n, 0.02, 0.6, 0.5, 0.08, dur)
        else:
            y = karplus(f, n, rng, rng.uniform(0.995, 0.999), 0.8 if variant == "slap" else rng.uniform(0.1, 0.3))
            if variant == "slap":
                y = drive(normalise(y), 3)
        return y * envelope(n, 0.002, 10, 1, 0.05, dur) * vel

    return note


def strings(rng: Rng) -> Patch:
    variant = rng.choice(["section", "section", "solo", "pizzicato", "tremolo"])
    voices = 1 if variant == "solo" else int(rng.integers(3, 9))
    rate, depth = rng.uniform(4.5, 6.5), rng.uniform(8, 25)
    attack, tilt = rng.uniform(0.05, 0.4), rng.uniform(0.8, 1.3)
    body = rng.uniform([250, 400, 900, 2200], [320, 550, 1200, 3200])

    def note(f, dur, vel):
        if variant == "pizzicato":
            n = n_of(dur + 0.3)
            y = karplus(f, n, rng, rng.uniform(0.985, 0.995), 0.4)
            return (y + 0.6 * resonators(y, body, [5] * 4, [1, 0.8, 0.5, 0.3])) * vel
        n = n_of(dur + 0.25)
        amps = 1 / np.arange(1, 48) ** tilt

        def one(fv, r):
            return additive(vibrato(n, fv, rate * r.uniform(0.9, 1.1), depth, r), amps)

        y = ensemble(voices, 12, rng, one, f)
        y = y + 0.8 * resonators(y, body, [4] * 4, [1, 0.8, 0.6, 0.4])
        if variant == "tremolo":
            y *= 0.6 + 0.4 * np.abs(np.sin(np.pi * rng.uniform(6, 12) * np.arange(n) / SR))
        return y * envelope(n, attack, 1, 1, rng.uniform(0.1, 0.25), dur) * vel

    return note


def brass(rng: Rng) -> Patch:
    voices = 1 if rng.random() < 0.5 else int(rng.integers(2, 5))
    bright, muted = rng.uniform(3, 12), rng.random() < 0.2
    attack = rng.uniform(0.03, 0.09)

    def note(f, dur, vel):
        n = n_of(dur + 0.15)
        env = envelope(n, attack, 0.3, rng.uniform(0.6, 0.9), 0.08, dur)
        k = np.arange(1, 40)[:, None]
        amps = np.exp(-(k - 1) / (bright * (0.2 + env * vel))) / k**0.5

        def one(fv, r):
            scoop = fv * 2 ** (-0.4 * np.exp(-np.arange(n) / (0.04 * SR)) / 12)
            return additive(scoop * vibrato(n, 1.0, 5.5, 12, r, delay=0.4), amps)

        y = ensemble(voices, 10, rng, one, f) * env
        return band(y, 800, 4000) if muted else y

    return note


def reed(rng: Rng) -> Patch:
    variant = rng.choice(["clarinet", "sax", "oboe", "bassoon"])
    even = rng.uniform(0.05, 0.3)
    formants = {
        "sax": rng.uniform([450, 1300], [700, 1800]),
        "oboe": rng.uniform([900, 2500], [1300, 3200]),
        "bassoon": rng.uniform([400, 1000], [550, 1400]),
        "clarinet": rng.uniform([1200, 2500], [1600, 3000]),
    }[variant]
    breath = rng.uniform(0.01, 0.08)

    def note(f, dur, vel):
        n = n_of(dur + 0.1)
        k = np.arange(1, 40)
        amps = (np.where(k % 2 == 1, 1.0, even) if variant == "clarinet" else np.ones(len(k))) / k ** rng.uniform(0.7, 1.2)
        y = additive(vibrato(n, f, rng.uniform(4.5, 6), rng.uniform(5, 20), rng, delay=0.25), amps)
        y = 0.5 * y + resonators(y, formants, [3, 4], [1, 0.6])
        y = normalise(y) + breath * band(noise(n, rng), f, 4000)
        return y * envelope(n, rng.uniform(0.02, 0.06), 0.2, 0.85, 0.06, dur) * vel

    return note


def pipe(rng: Rng) -> Patch:
    variant = rng.choice(["flute", "flute", "pan", "ocarina", "bottle", "whistle"])
    tilt = rng.uniform(2, 4)
    breath = {"bottle": 0.3, "pan": 0.15, "ocarina": 0.02}.get(variant, rng.uniform(0.03, 0.12))

    def note(f, dur, vel):
        n = n_of(dur + 0.12)
        amps = 1 / np.arange(1, 8) ** (6 if variant in ("ocarina", "whistle") else tilt)
        y = additive(vibrato(n, f, rng.uniform(4, 6), rng.uniform(5, 25), rng, delay=0.2), amps)
        y = y + breath * band(noise(n, rng), f * 0.8, min(f * 4, NYQ * 0.9))
        if variant == "pan":
            y[: n_of(0.05)] += 0.5 * band(noise(n_of(0.05), rng), 1000, 6000)
        return y * envelope(n, rng.uniform(0.03, 0.1), 0.3, 0.9, 0.08, dur) * vel

    return note


def synth_lead(rng: Rng) -> Patch:
    wave = rng.choice(["saw", "square", "pulse", "saw"])
    width, detune = rng.uniform(0.1, 0.45), cents(rng, 12) if rng.random() < 0.5 else None
    cutoff, vib = rng.uniform(4, 30), rng.uniform(0, 20)
    dist = rng.uniform(2, 8) if rng.random() < 0.2 else 0.0

    def note(f, dur, vel):
        n = n_of(dur + 0.05)
        amps = wave_amps(wave, 64, width) * np.exp(-np.arange(64) / cutoff)
        freq = vibrato(n, f, rng.uniform(5, 7), vib, rng, delay=0.15)
        y = additive(freq, amps)
        if detune:
            y += additive(freq * detune, amps)
        if dist:
            y = drive(normalise(y), dist)
        return y * envelope(n, 0.005, 0.2, 0.9, 0.03, dur) * vel

    return note


def synth_pad(rng: Rng) -> Patch:
    wave = rng.choice(["saw", "square", "triangle", "saw"])
    voices, spread = int(rng.integers(3, 9)), rng.uniform(8, 25)
    attack, release, cutoff = rng.uniform(0.2, 0.9), rng.uniform(0.3, 1.0), rng.uniform(3, 15)
    sweep = rng.uniform(0.2, 1.0)

    def note(f, dur, vel):
        n = n_of(dur + release)
        lfo = 1 + 0.5 * np.sin(2 * np.pi * sweep * np.arange(n) / SR + rng.uniform(0, 6))
        amps = wave_amps(wave, 48)[:, None] * np.exp(-np.arange(48)[:, None] / (cutoff * lfo))

        def one(fv, r):
            return additive(np.full(n, fv), amps)

        return ensemble(voices, spread, rng, one, f) * envelope(n, attack, 1, 1, release, dur) * vel

    return note


VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010), "o": (570, 840, 2410), "u": (300, 870, 2240)}


def voice(rng: Rng) -> Patch:
    vowel = np.array(VOWELS[rng.choice(list(VOWELS))]) * rng.uniform(0.9, 1.15)
    voices, breath = (1 if rng.random() < 0.5 else int(rng.integers(3, 7))), rng.uniform(0.0, 0.1)

    def note(f, dur, vel):
        n = n_of(dur + 0.15)

        def one(fv, r):
            return additive(vibrato(n, fv, r.uniform(4.5, 6), r.uniform(15, 40), r, delay=0.2), 1 / np.arange(1, 60) ** 1.2)

        src = ensemble(voices, 15, rng, one, f) + breath * noise(n, rng)
        y = resonators(src, vowel, [8, 10, 12], [1, 0.5, 0.3])
        return y * envelope(n, rng.uniform(0.05, 0.2), 1, 1, 0.12, dur) * vel

    return note


# ---------------------------------------------------------------------------------------------
# drums and effects: make(rng) -> event(rng) -> samples
# ---------------------------------------------------------------------------------------------


def kick(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.3, 0.7))
    t = np.arange(n) / SR
    f = rng.uniform(40, 60) + rng.uniform(60, 180) * np.exp(-t / rng.uniform(0.01, 0.06))
    y = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / rng.uniform(0.08, 0.3))
    y[: n_of(0.004)] += rng.uniform(0, 0.5) * rng.standard_normal(n_of(0.004))
    return drive(y, rng.uniform(1, 4)) if rng.random() < 0.3 else y


def snare(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.25, 0.5))
    t = np.arange(n) / SR
    tone = modes(rng.uniform(150, 260), [1, 1.6], [1, 0.5], [0.1, 0.06], n)
    rattle = band(noise(n, rng), rng.uniform(800, 2000), rng.uniform(5000, 7800)) * np.exp(-t / rng.uniform(0.04, 0.15))
    mix = rng.uniform(0.3, 0.9)
    return (1 - mix) * tone + mix * 0.5 * rattle


def metal(n: int, rng: Rng, base: float) -> np.ndarray:
    """The square-wave cluster of analogue cymbals and hats."""
    t = np.arange(n) / SR
    freqs = base * np.array([1, 1.45, 1.78, 2.61, 2.88, 4.93]) * rng.uniform(0.95, 1.05, 6)
    return sum(np.sign(np.sin(2 * np.pi * fr * t + rng.uniform(0, 6))) for fr in freqs) / 6


def hihat(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.1, 0.7))
    t = np.arange(n) / SR
    y = band(rng.uniform(0.3, 1) * metal(n, rng, rng.uniform(250, 450)) + noise(n, rng) * rng.uniform(0.3, 1), 5000, None, 4)
    return y * np.exp(-t / (rng.uniform(0.015, 0.05) if rng.random() < 0.6 else rng.uniform(0.12, 0.35)))


def tom(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.4, 0.8))
    t = np.arange(n) / SR
    f0 = rng.uniform(80, 260)
    f = f0 * (1 + 0.3 * np.exp(-t / 0.05))
    y = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / rng.uniform(0.1, 0.3))
    return y + 0.1 * band(noise(n, rng), 200, 3000) * np.exp(-t / 0.03)


def clap(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.3, 0.6))
    t = np.arange(n) / SR
    env = np.exp(-t / rng.uniform(0.05, 0.15))
    for k in range(int(rng.integers(2, 5))):
        d = k * rng.uniform(0.006, 0.012)
        env = env + np.where(t >= d, np.exp(-(t - d) / 0.004), 0)
    y = band(noise(n, rng), rng.uniform(700, 1200), rng.uniform(2000, 4000)) * env
    if rng.random() < 0.4:  # a few claps
        gap = n_of(rng.uniform(0.25, 0.5))
        y = np.concatenate([y, np.zeros(gap)])[: n + gap]
        y = y + np.roll(y, gap) * rng.uniform(0.6, 1)
    return y


def cymbal(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(1.2, 3.0))
    t = np.arange(n) / SR
    shimmer = band(metal(n, rng, rng.uniform(300, 600)) * rng.uniform(0.3, 1) + noise(n, rng), rng.uniform(2500, 5000), None)
    y = shimmer * np.exp(-t / rng.uniform(0.4, 1.5))
    if rng.random() < 0.4:  # ride: a bell on top
        y = y + 0.5 * modes(rng.uniform(500, 900), [1, 2.1, 3.3], [1, 0.6, 0.4], [1.0, 0.7, 0.5], n)
    return y


def shaker(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.4, 1.2))
    t = np.arange(n) / SR
    env = np.zeros(n)
    for k in range(int(rng.integers(1, 5))):
        d, w = k * rng.uniform(0.12, 0.25), rng.uniform(0.03, 0.09)
        env += np.exp(-(((t - d - w) / w) ** 2))
    return band(noise(n, rng), rng.uniform(2500, 4500), rng.uniform(6000, 7800)) * env


def rim(rng: Rng) -> np.ndarray:
    n = n_of(0.25)
    y = modes(rng.uniform(400, 1700), [1, 2.3], [1, 0.4], [0.04, 0.02], n)
    y[: n_of(0.002)] += rng.standard_normal(n_of(0.002))
    return y


def wind(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(1.5, 3.0))
    gust = band(noise(n, rng), None, rng.uniform(0.5, 2.5), 1)
    gust = 0.3 + np.abs(gust) / (np.max(np.abs(gust)) + 1e-9)
    y = np.zeros(n)
    centre = rng.uniform(200, 1500)
    step = n_of(0.1)
    for s in range(0, n, step):  # a band-pass that wanders
        seg = noise(step, rng, rng.uniform(0.5, 1.5))
        c = centre * (0.6 + 0.8 * gust[s])
        y[s : s + step] = band(seg, c / rng.uniform(1.3, 2.5), c * rng.uniform(1.3, 2.5))[: n - s]
    return band(y, 60, None) * gust


def water(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(1.5, 3.0))
    t = np.arange(n) / SR
    y = rng.uniform(0.0, 0.4) * band(noise(n, rng), rng.uniform(300, 1500), rng.uniform(3000, 7000))
    rate = rng.uniform(8, 80)
    for onset in np.cumsum(rng.exponential(1 / rate, int(rate * n / SR) + 1)):
        i = int(onset * SR)
        if i >= n:
            break
        m = min(n - i, n_of(0.05))
        tt = t[:m]
        f = rng.uniform(300, 2500) * (1 + rng.uniform(0.5, 3) * tt / 0.05)  # a bubble rises in pitch
        y[i : i + m] += rng.uniform(0.2, 1) * np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-tt / rng.uniform(0.005, 0.02))
    return y


def thunder(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(2.0, 3.0))
    t = np.arange(n) / SR
    rumble = band(noise(n, rng, 2), 25, rng.uniform(150, 400))
    rumble *= np.abs(band(noise(n, rng), None, 3, 1)) * np.exp(-t / rng.uniform(0.8, 2.0))
    d = rng.uniform(0, 0.3)
    crack = band(noise(n, rng), 300, None) * np.where(t > d, np.exp(-(t - d) / rng.uniform(0.05, 0.3)), 0)
    return normalise(rumble) + rng.uniform(0.1, 0.8) * normalise(crack)


def explosion(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(1.2, 3.0))
    t = np.arange(n) / SR
    y = noise(n, rng, rng.uniform(0.5, 1.5)) * np.exp(-t / rng.uniform(0.2, 0.9))
    y = band(y, None, rng.uniform(600, 3000))
    boom = np.sin(2 * np.pi * np.cumsum(rng.uniform(35, 70) * (1 + np.exp(-t / 0.1))) / SR) * np.exp(-t / rng.uniform(0.3, 0.8))
    return normalise(y) + rng.uniform(0.3, 1) * boom


def bird(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(1.2, 3.0))
    y = np.zeros(n)
    t0 = rng.uniform(0, 0.2)
    f_lo, f_hi = rng.uniform(1500, 3500), rng.uniform(3500, 7000)
    shape = rng.choice(["up", "down", "trill", "warble"])
    while t0 < n / SR - 0.1:
        d = rng.uniform(0.02, 0.15)
        m = n_of(d)
        tt = np.arange(m) / SR
        if shape == "up":
            f = f_lo + (f_hi - f_lo) * tt / d
        elif shape == "down":
            f = f_hi - (f_hi - f_lo) * tt / d
        else:
            f = (f_lo + f_hi) / 2 + (f_hi - f_lo) / 2 * np.sin(2 * np.pi * rng.uniform(20, 80) * tt)
        chirp = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.sin(np.pi * tt / d) ** 2
        i = int(t0 * SR)
        y[i : i + m] += chirp[: n - i]
        t0 += d + (rng.uniform(0.01, 0.05) if shape == "trill" else rng.uniform(0.05, 0.4))
    return y


def animal(rng: Rng) -> np.ndarray:
    kind = rng.choice(["bark", "meow", "moo", "bleat", "neigh", "grunt"])
    dur = {"bark": 0.15, "meow": 0.8, "moo": 1.5, "bleat": 0.8, "neigh": 1.2, "grunt": 0.2}[kind] * rng.uniform(0.7, 1.4)
    calls = int(rng.integers(1, 4)) if kind in ("bark", "grunt", "bleat") else 1
    out = []
    for _ in range(calls):
        m = n_of(dur)
        tt = np.arange(m) / SR
        f0 = {"bark": 400, "meow": 600, "moo": 130, "bleat": 350, "neigh": 700, "grunt": 90}[kind] * rng.uniform(0.7, 1.4)
        contour = {"meow": 1 + 0.4 * np.sin(np.pi * tt / dur), "neigh": 1.3 - 0.6 * tt / dur, "moo": 1 + 0.2 * tt / dur}.get(kind, np.ones(m))
        src = additive(f0 * contour, 1 / np.arange(1, 40) ** 0.8)
        if kind in ("bleat", "neigh"):
            src *= 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(15, 30) * tt)
        src += rng.uniform(0.1, 0.6 if kind in ("bark", "grunt") else 0.2) * noise(m, rng)
        fmts = np.array(VOWELS[rng.choice(list(VOWELS))]) * rng.uniform(0.6, 1.6)
        y = resonators(src, fmts, [5, 6, 8], [1, 0.6, 0.3]) * np.sin(np.pi * tt / dur) ** 0.5
        out += [y, np.zeros(n_of(rng.uniform(0.1, 0.4)))]
    return np.concatenate(out)


def telephone(rng: Rng) -> np.ndarray:
    kind = rng.choice(["ring", "bell", "dtmf", "busy"])
    if kind == "dtmf":
        lows, highs = (697, 770, 852, 941), (1209, 1336, 1477)
        out = []
        for _ in range(int(rng.integers(3, 9))):
            m = n_of(rng.uniform(0.08, 0.2))
            tt = np.arange(m) / SR
            out += [np.sin(2 * np.pi * rng.choice(lows) * tt) + np.sin(2 * np.pi * rng.choice(highs) * tt), np.zeros(n_of(rng.uniform(0.05, 0.15)))]
        return np.concatenate(out)
    n = n_of(rng.uniform(1.5, 3.0))
    t = np.arange(n) / SR
    if kind == "bell":  # an electromechanical ringer: a bell struck 20 times a second
        strike = np.maximum(0, np.sin(2 * np.pi * rng.uniform(18, 25) * t)) ** 8
        y = strike * fm(rng.uniform(900, 2000), n, 1.41, 2.0)
    else:
        f1, f2 = (440, 480) if kind == "ring" else (480, 620)
        y = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
        if rng.random() < 0.5:
            y = y * (1 + 0.8 * np.sign(np.sin(2 * np.pi * 20 * t))) / 2
    on, off = (rng.uniform(0.4, 1.2), rng.uniform(0.2, 0.6)) if kind != "busy" else (0.5, 0.5)
    return y * ((t % (on + off)) < on)


def car(rng: Rng) -> np.ndarray:
    kind = rng.choice(["engine", "engine", "passby", "skid"])
    n = n_of(rng.uniform(1.5, 3.0))
    t = np.arange(n) / SR
    if kind == "skid":
        f = rng.uniform(900, 2500) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(3, 9) * t))
        return band(noise(n, rng), 500, 5000) * 0.3 + np.sin(2 * np.pi * np.cumsum(f) / SR) * (1 - t / t[-1])
    rpm = rng.uniform(20, 60) * (1 + rng.uniform(-0.5, 1.5) * t / t[-1])
    pulses = additive(rpm, 1 / np.arange(1, 40) ** rng.uniform(0.3, 1.0))
    y = band(pulses + rng.uniform(0.1, 0.5) * noise(n, rng), 30, rng.uniform(800, 3000))
    if kind == "passby":
        y = y * np.exp(-(((t - t[-1] / 2) / (t[-1] / 4)) ** 2))
    return y


def horn(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(0.4, 2.0))
    kind = rng.choice(["car", "ship", "air"])
    base = {"car": rng.uniform(300, 500), "ship": rng.uniform(70, 150), "air": rng.uniform(200, 400)}[kind]
    freqs = [base, base * rng.uniform(1.19, 1.26)] if kind == "car" else [base]
    y = sum(additive(np.full(n, f), wave_amps("square" if kind == "car" else "saw", 40)) for f in freqs)
    return band(y, 150, 4000) * envelope(n, 0.02, 1, 1, 0.1, n / SR - 0.1)


def train(rng: Rng) -> np.ndarray:
    kind = rng.choice(["chug", "whistle", "rails"])
    n = n_of(rng.uniform(1.5, 3.0))
    t = np.arange(n) / SR
    if kind == "whistle":
        chord = rng.uniform(350, 700) * np.array([1, 1.26, 1.5])[: int(rng.integers(1, 4))]
        y = sum(additive(np.full(n, f), 1 / np.arange(1, 8) ** 2) for f in chord)
        return (y + 0.2 * band(noise(n, rng), 500, 4000)) * envelope(n, 0.1, 1, 1, 0.2, n / SR - 0.2)
    rate = rng.uniform(2, 7)
    if kind == "chug":
        env = np.maximum(0, np.sin(2 * np.pi * rate * t)) ** 4
        return band(noise(n, rng, 1), 80, rng.uniform(1500, 4000)) * (0.2 + env)
    y = np.zeros(n)
    for beat in np.arange(0, t[-1], 1 / rate):
        for d in (0, rng.uniform(0.08, 0.15)):
            i = int((beat + d) * SR)
            if i < n:
                m = min(n - i, n_of(0.06))
                y[i : i + m] += modes(rng.uniform(200, 600), [1, 2.7, 5.1], [1, 0.5, 0.3], [0.05, 0.03, 0.02], m)
    return y + 0.3 * band(noise(n, rng, 1), 50, 1000)


def aircraft(rng: Rng) -> np.ndarray:
    kind = rng.choice(["jet", "propeller", "helicopter"])
    n = n_of(rng.uniform(1.5, 3.0))
    t = np.arange(n) / SR
    swell = np.exp(-(((t - rng.uniform(0.3, 0.7) * t[-1]) / (t[-1] * rng.uniform(0.3, 0.8))) ** 2))
    roar = band(noise(n, rng, rng.uniform(0.5, 1.5)), 60, rng.uniform(1500, 6000))
    if kind == "jet":
        whine = additive(rng.uniform(1500, 4000) * (1.05 - 0.1 * t / t[-1]), np.array([1, 0.3]))
        return (roar + rng.uniform(0.05, 0.3) * whine) * swell
    rate = rng.uniform(40, 110) if kind == "propeller" else rng.uniform(4, 9)
    buzz = np.maximum(0, np.sin(2 * np.pi * rate * t)) ** (2 if kind == "propeller" else 10)
    return roar * (0.3 + buzz) * (0.5 + swell)


def applause(rng: Rng) -> np.ndarray:
    n = n_of(rng.uniform(1.5, 3.0))
    y = np.zeros(n)
    for _ in range(int(rng.integers(5, 60))):
        rate, phase = rng.uniform(2.5, 5.5), rng.uniform(0, 0.4)
        lo, hi = rng.uniform(600, 1500), rng.uniform(2000, 5000)
        one = band(noise(n_of(0.03), rng), lo, hi) * np.exp(-np.arange(n_of(0.03)) / (0.006 * SR))
        for s in np.arange(phase, n / SR, 1 / rate):
            i = int((s + rng.normal(0, 0.01)) * SR)
            if 0 <= i < n:
                y[i : i + len(one)] += one[: n - i]
    return y


def crash(rng: Rng) -> np.ndarray:
    kind = rng.choice(["glass", "metal", "wood"])
    n = n_of(rng.uniform(1.0, 2.5))
    t = np.arange(n) / SR
    y = band(noise(n, rng), 200 if kind != "wood" else 80, None) * np.exp(-t / rng.uniform(0.05, 0.3))
    for _ in range(int(rng.integers(5, 40))):
        i = int(rng.exponential(0.25) * SR)
        if i >= n:
            continue
        m = n - i
        lo, hi = {"glass": (2000, 7000), "metal": (300, 3000), "wood": (100, 800)}[kind]
        rat = rng.uniform(1.2, 4.5, 3)
        y[i:] += rng.uniform(0.1, 0.6) * modes(rng.uniform(lo, hi), [1, *rat], [1, 0.5, 0.3, 0.2], [rng.uniform(0.05, 0.6)] * 4, m)
    return y


INSTRUMENTS: dict[str, Callable[[Rng], Patch]] = {
    f.__name__: f for f in (piano, chromatic_percussion, organ, guitar, bass, strings, brass, reed, pipe, synth_lead, synth_pad, voice)
}
EVENTS: dict[str, Callable[[Rng], np.ndarray]] = {
    f.__name__: f
    for f in (kick, snare, hihat, tom, clap, cymbal, shaker, rim, water, thunder, wind, animal, bird, telephone, car, crash, train, aircraft, applause, explosion, horn)
}
GROOVE_PARTS = {"kick": kick, "snare": snare, "hat": hihat, "perc": tom}


def midi_hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def render_notes(patch: Patch, notes: list[tuple[float, float, int, int]]) -> np.ndarray:
    """A phrase ``[(onset_s, dur_s, midi pitch, velocity 1-127)]`` played on one patch, peak 1."""
    parts = [(on, patch(midi_hz(p), d, v / 127)) for on, d, p, v in notes]
    y = np.zeros(max(n_of(on) + len(p) for on, p in parts))
    for on, p in parts:
        y[n_of(on) : n_of(on) + len(p)] += p
    return normalise(y)


def render_groove(rng: Rng, notes: list[tuple[float, float, int, int]], part_of: Callable[[int], str]) -> np.ndarray:
    """A drum pattern on one synthesised kit: one random voice per part, velocity as gain."""
    kit = {}
    parts = []
    for on, _, p, v in notes:
        part = part_of(p)
        if part not in kit:
            kit[part] = GROOVE_PARTS[part](rng)
        parts.append((on, kit[part] * v / 127))
    y = np.zeros(max(n_of(on) + len(p) for on, p in parts))
    for on, p in parts:
        y[n_of(on) : n_of(on) + len(p)] += p
    return normalise(y)
