"""Log-mel spectrograms and the fixed windows the encoder reads.

Pure functions on arrays. Frames are not centred: frame ``t`` covers samples
``[t * hop_length, t * hop_length + n_fft)``, so a window starting at frame ``f`` starts at
``f * hop_length / sr`` seconds.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from .errors import DecodeError, ParameterError

_CHUNK_FRAMES = 4096
#: above this peak amplitude a frame's power could overflow float32
LOUD_PEAK = 1e12


@dataclass(frozen=True)
class FeatureSettings:
    """How a waveform becomes encoder input. Stored with every model and every index."""

    sample_rate_hz: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 64
    fmin_hz: float = 60.0
    fmax_hz: float = 7800.0
    window_frames: int = 64
    #: dynamic range kept below each window's loudest bin (dB)
    top_db: float = 80.0

    @property
    def frame_s(self) -> float:
        """Seconds between two frames."""
        return self.hop_length / self.sample_rate_hz

    @property
    def window_s(self) -> float:
        """Seconds of audio one window covers."""
        return ((self.window_frames - 1) * self.hop_length + self.n_fft) / self.sample_rate_hz

    def as_dict(self) -> dict:
        return asdict(self)


def log_mel(y: np.ndarray, *, settings: FeatureSettings) -> np.ndarray:
    """Log-power mel spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), dtype=float32]
        Mono waveform at ``settings.sample_rate_hz``.
    settings : FeatureSettings

    Returns
    -------
    mel : np.ndarray [shape=(frames, n_mels), dtype=float32]
        Power in dB (``10 log10``), floored at -100 dB; ``frames = 1 + (n - n_fft) // hop_length``
        (0 when ``n < n_fft``). Long signals are processed in chunks, so memory stays bounded.
        Finite for any finite ``y``: a signal too loud for float32 power (peak above
        :data:`LOUD_PEAK`) is analysed scaled down and its dB shifted back.
    """
    s = settings
    n_frames = 0 if len(y) < s.n_fft else 1 + (len(y) - s.n_fft) // s.hop_length
    out = np.empty((n_frames, s.n_mels), dtype=np.float32)
    if n_frames == 0:
        return out
    basis = _mel_basis(s)
    gain_db = 0.0
    used = y[: (n_frames - 1) * s.hop_length + s.n_fft]
    peak = max(float(np.max(used)), -float(np.min(used)))  # no |y| copy: y may be hours long
    if np.isfinite(peak) and peak > LOUD_PEAK:
        y = y / np.float32(peak)
        gain_db = 20.0 * float(np.log10(peak))
    for start in range(0, n_frames, _CHUNK_FRAMES):
        stop = min(n_frames, start + _CHUNK_FRAMES)
        seg = y[start * s.hop_length : (stop - 1) * s.hop_length + s.n_fft]
        out[start:stop] = power_spectrogram(seg, n_fft=s.n_fft, hop_length=s.hop_length) @ basis.T
    np.maximum(out, 1e-10, out=out)
    np.log10(out, out=out)
    out *= 10.0
    if gain_db:
        out += np.float32(gain_db)
    return out


def power_spectrogram(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Power spectrogram ``|STFT|²`` with a periodic Hann window, frames not centred.

    The same numbers as ``np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length,
    center=False)) ** 2`` (``tests/test_features.py``), transposed, computed with numpy alone:
    importing librosa (numba, scipy.signal) costs more than a whole query.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], n >= n_fft
    n_fft, hop_length : int, samples

    Returns
    -------
    power : np.ndarray [shape=(1 + (n - n_fft) // hop_length, 1 + n_fft // 2), dtype=float32]
    """
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(y, dtype=np.float32), n_fft)[::hop_length]
    spec = _rfft(len(frames))(frames * _hann(n_fft), axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


#: from this many frames (16 s at the default hop) on, SciPy's FFT: 3-5x faster than numpy's in
#: float32, worth its import (~0.2 s, once per process); a short query clip keeps numpy's
SCIPY_FFT_MIN_FRAMES = 1000


def _rfft(n_frames: int):
    if n_frames < SCIPY_FFT_MIN_FRAMES:
        return np.fft.rfft
    import scipy.fft

    return scipy.fft.rfft


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window("hann", n)``), float32."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def _mel_basis(s: FeatureSettings) -> np.ndarray:
    """Mel filterbank ``[n_mels, 1 + n_fft // 2]``: triangles spaced evenly on Slaney's mel scale
    between ``fmin_hz`` and ``fmax_hz``, each of unit area in Hz (Slaney normalisation) — the
    numbers of ``librosa.filters.mel(...)`` with its defaults (``tests/test_features.py``)."""
    fft_hz = np.linspace(0.0, s.sample_rate_hz / 2.0, 1 + s.n_fft // 2)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(s.fmin_hz), _hz_to_mel(s.fmax_hz), s.n_mels + 2))
    width = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def window_starts(n_frames: int, *, window_frames: int, hop_frames: int) -> np.ndarray:
    """First frame of each window: ``0, hop, 2*hop, ...`` while the window fits.

    A signal shorter than one window (a click, a drum hit) gives one window, padded with silence
    by :func:`windows`; only an empty one gives none.
    """
    if hop_frames < 1:
        raise ParameterError(f"hop_frames must be >= 1, got {hop_frames}")
    if n_frames >= window_frames:
        return np.arange(0, n_frames - window_frames + 1, hop_frames, dtype=np.int64)
    return np.zeros(1 if n_frames > 0 else 0, dtype=np.int64)


def windows(
    mel: np.ndarray, *, window_frames: int, hop_frames: int, pad_value: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a spectrogram into fixed windows.

    Parameters
    ----------
    mel : np.ndarray [shape=(frames, n_mels)]
    window_frames, hop_frames : int > 0
        Window length and hop in frames.
    pad_value : float, optional
        dB value of the silence that pads a signal shorter than one window (default: its quietest value).

    Returns
    -------
    win : np.ndarray [shape=(n, window_frames, n_mels)]
        A read-only strided view of ``mel`` (a padded copy when the signal is shorter than one window:
        the sound first, then silence).
    starts : np.ndarray [shape=(n,), dtype=int64]
        First frame of each window.
    """
    starts = window_starts(len(mel), window_frames=window_frames, hop_frames=hop_frames)
    if len(mel) < window_frames:
        fill = pad_value if pad_value is not None else (float(mel.min()) if len(mel) else 0.0)
        mel = np.pad(mel, ((0, window_frames - len(mel)), (0, 0)), constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(mel, window_frames, axis=0)  # (n, mels, W)
    # starts are 0, hop, 2*hop, ...: a strided slice, not a copy of every window (hours of audio)
    return view[::hop_frames][: len(starts)].transpose(0, 2, 1), starts


def normalize_windows(win: np.ndarray, *, top_db: float, copy: bool = True) -> np.ndarray:
    """Encoder input: each window's dB values floored at ``max - top_db``, minus its mean, / 20 dB.

    This makes the input independent of playback gain.

    Parameters
    ----------
    win : np.ndarray [shape=(n, frames, n_mels)], dB
    top_db : float > 0, dB
    copy : bool
        False: normalise ``win`` in place when it already is a C-ordered float32 array (windows
        gathered for the encoder: no second copy).

    Returns
    -------
    x : np.ndarray [shape=(n, frames, n_mels), dtype=float32], C order
    """
    # C order: windows are strided views of a spectrogram, and the encoder reads rows
    x = np.array(win, dtype=np.float32, order="C", copy=True if copy else None)
    if len(x) == 0:
        return x
    peak = x.max(axis=(1, 2), keepdims=True)
    np.maximum(x, peak - top_db, out=x)
    x -= x.mean(axis=(1, 2), keepdims=True)
    x /= 20.0
    return x


def frames_for(seconds: float, settings: FeatureSettings) -> int:
    """Number of whole frames closest to ``seconds`` (at least 1)."""
    return max(1, int(round(seconds / settings.frame_s)))


def require_windows(n_windows: int, *, source: object, duration_s: float, settings: FeatureSettings) -> None:
    """Raise :class:`DecodeError` when a signal gives no window (no complete STFT frame: callers pad
    any non-empty sound to one frame, so in practice only an empty signal)."""
    if n_windows == 0:
        raise DecodeError(
            source,
            f"too short: {duration_s:.3f} s, at least one {settings.n_fft}-sample frame "
            f"({settings.n_fft / settings.sample_rate_hz * 1000:.0f} ms, shorter sounds are zero-padded) is needed",
        )
