"""Check an alignment against the recording itself: do the clip's spectral peaks fall where the
recording's do?

The vectors say how alike a clip and a passage *sound*; two passages of one style played on one
instrument can sound as alike as a passage and a noisy recording of it. Their notes still differ.
:func:`peak_check` compares the passage's strongest spectral peaks (log-frequency, 36 bins per
octave) with the clip's local maxima, at the alignment the search found, allowing a small shift in
pitch and time: the share of the passage's peaks that the clip has too. Noise adds maxima to the
clip but takes few of the passage's away, so a noisy recording of the passage keeps a share near
1; another passage in the same key shares a chord now and then, not its melody. A held chord,
though, is the same wherever it is played, and a clip under loud noise has maxima nearly
everywhere: :func:`peak_check` also measures the share with the passage's peaks in reverse time
order, which such clips keep too and an excerpt of a melody does not. The claim decision uses
both (``peaks`` and ``peaks_backwards``; its inputs ``peaks^16`` and ``peaks_backwards^16``,
:mod:`search_engine.query`) where the recording's audio can be read.

The idea is the landmark fingerprinters' (audfprint, Dejavu, Panako: spectral peaks that survive
noise), used here only to check one alignment, never to search.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: log-frequency resolution and range of the peak maps (110 Hz to 3.5 kHz: five octaves, inside a
#: telephone band's top)
BINS_PER_OCTAVE = 36
FMIN_HZ = 110.0
OCTAVES = 5
#: STFT size and hop in seconds (about 128 ms and 20 ms at 16 kHz)
FFT_S, HOP_S = 0.128, 0.02
#: peaks per frame kept from the recording's passage (its strongest) and from the clip (nearly
#: every local maximum: a note under loud noise is rarely among the clip's strongest peaks, but
#: it still bends the spectrum into a maximum where it sounds). Chosen on the benchmarks' fit
#: split (3 s clips under 0 dB noise against look-alike outsiders: 5 and 12 told them apart with
#: an AUC of 0.90, 6 and 50 with 0.99)
REFERENCE_PEAKS, CLIP_PEAKS = 6, 50
#: peaks weaker than the frame's strongest by more than this (dB) are not peaks
PEAK_FLOOR_DB = 40.0
#: shifts tried: pitch up to 5/3 semitones either way (pitch changes, tape speed), time up to 3 hops
MAX_SHIFT_BINS, MAX_SHIFT_FRAMES = 5, 3


def _fft_size(sr: int) -> int:
    return 1 << int(round(np.log2(FFT_S * sr)))


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 1)[:-1].astype(np.float32)


@lru_cache(maxsize=8)
def _band_bins(sr: int) -> np.ndarray:
    """Per log-frequency bin, the FFT bins within half a bin of its centre (the nearest one where
    none is), as rows of a ``[bins, widest]`` index array (short rows repeat their last bin)."""
    n_fft = _fft_size(sr)
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    k = np.arange(BINS_PER_OCTAVE * OCTAVES)
    lo_hz, hi_hz = FMIN_HZ * 2 ** ((k - 0.5) / BINS_PER_OCTAVE), FMIN_HZ * 2 ** ((k + 0.5) / BINS_PER_OCTAVE)
    lo, hi = np.searchsorted(fft_hz, lo_hz), np.searchsorted(fft_hz, hi_hz)
    near = np.abs(fft_hz[None, :] - (FMIN_HZ * 2 ** (k / BINS_PER_OCTAVE))[:, None]).argmin(axis=1)
    lo, hi = np.where(hi > lo, lo, near), np.where(hi > lo, hi, near + 1)
    width = int((hi - lo).max())
    return np.minimum(lo[:, None] + np.arange(width)[None, :], hi[:, None] - 1)


def log_spectrogram(y: np.ndarray, sr: int) -> np.ndarray:
    """Magnitude spectrogram on a log-frequency axis, in dB.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), float]
        Mono waveform.
    sr : int
        Its sample rate (Hz).

    Returns
    -------
    np.ndarray [shape=(BINS_PER_OCTAVE * OCTAVES, frames), float32]
        Per log-frequency bin (from :data:`FMIN_HZ`), the largest STFT magnitude within it, in dB
        (20 log10); frames every :data:`HOP_S` seconds.
    """
    n_fft, hop = _fft_size(sr), max(1, int(round(HOP_S * sr)))
    y = np.pad(np.asarray(y, dtype=np.float32), n_fft // 2)  # frames centred on their times
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    mag = np.abs(np.fft.rfft(frames * _window(n_fft), axis=1))
    bands = mag[:, _band_bins(sr)].max(axis=2).T
    return (20 * np.log10(bands + 1e-6)).astype(np.float32)


def spectral_peaks(spec_db: np.ndarray, per_frame: int, *, floor_db: float = PEAK_FLOOR_DB) -> np.ndarray:
    """The ``per_frame`` strongest local maxima along frequency of each frame.

    Parameters
    ----------
    spec_db : np.ndarray [shape=(bins, frames), float]
        A :func:`log_spectrogram`.
    per_frame : int
        Peaks kept per frame at most.
    floor_db : float
        Maxima weaker than the frame's strongest bin by more than this (dB) are left out, and so
        is every maximum of a silent frame (below -100 dB).

    Returns
    -------
    np.ndarray [shape=(bins, frames), bool]
    """
    s = np.asarray(spec_db, dtype=np.float32)
    peak = np.zeros(s.shape, dtype=bool)
    if s.shape[0] < 3 or s.shape[1] == 0:
        return peak
    inner = (s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:])
    peak[1:-1] = inner & (s[1:-1] > s.max(axis=0, keepdims=True) - floor_db) & (s[1:-1] > -100.0)
    score = np.where(peak, s, -np.inf)
    if per_frame < s.shape[0]:
        weaker = np.argsort(-score, axis=0, kind="stable")[per_frame:]
        np.put_along_axis(peak, weaker, False, axis=0)
    return peak


def _shifted(a: np.ndarray, df: int, dt: int) -> np.ndarray:
    """``a`` moved ``df`` rows and ``dt`` columns (zeros come in; nothing wraps around)."""
    out = np.zeros_like(a)
    rows, cols = a.shape
    src_r, dst_r = slice(max(0, -df), rows - max(0, df)), slice(max(0, df), rows - max(0, -df))
    src_c, dst_c = slice(max(0, -dt), cols - max(0, dt)), slice(max(0, dt), cols - max(0, -dt))
    out[dst_r, dst_c] = a[src_r, src_c]
    return out


def _widened(peaks: np.ndarray) -> np.ndarray:
    """Each peak spread to its neighbouring bin and frame on every side."""
    out = peaks.copy()
    for df in (-1, 0, 1):
        for dt in (-1, 0, 1):
            if df or dt:
                out |= _shifted(peaks, df, dt)
    return out


def _warped(spec: np.ndarray, frames: int) -> np.ndarray:
    """``spec`` stretched or squeezed in time to ``frames`` columns (linear interpolation)."""
    if spec.shape[1] == frames:
        return spec
    at = np.linspace(0.0, spec.shape[1] - 1, frames)
    i0 = np.floor(at).astype(int)
    i1 = np.minimum(i0 + 1, spec.shape[1] - 1)
    w = (at - i0).astype(np.float32)
    return spec[:, i0] * (1 - w) + spec[:, i1] * w


def peak_check(clip: np.ndarray, passage: np.ndarray, sr: int) -> tuple[float, float]:
    """Share of a recording's passage's spectral peaks that a clip has too, in the passage's order
    and backwards.

    Parameters
    ----------
    clip : np.ndarray [shape=(n,), float]
        The query clip (mono, ``sr`` Hz).
    passage : np.ndarray [shape=(m,), float]
        The recording where the search aligned the clip (mono, ``sr`` Hz): ``m / n`` is the
        alignment's tempo rate; the passage is stretched in time to the clip's length.
    sr : int
        Sample rate of both (Hz).

    Returns
    -------
    share : float in 0..1
        The largest share, over pitch shifts up to :data:`MAX_SHIFT_BINS` bins and time shifts up
        to :data:`MAX_SHIFT_FRAMES` frames, of the passage's :data:`REFERENCE_PEAKS` strongest
        peaks per frame that fall within one bin and one frame of one of the clip's
        :data:`CLIP_PEAKS`. Near 1 for the passage itself under noise, codecs and small pitch or
        tempo changes; 0 when the passage or the clip is silent.
    backwards : float in 0..1
        The same share with the passage's peaks in reverse time order (at the pitch shift of
        ``share``): what the clip shares with the passage whatever the order of its notes. Near
        ``share`` for a held chord or a sound that does not change, which any clip of that chord
        or sound shares as well; well below it for a melody, whose notes the clip has in the
        passage's order only.
    """
    clip_spec = log_spectrogram(clip, sr)
    ref = spectral_peaks(_warped(log_spectrogram(passage, sr), clip_spec.shape[1]), REFERENCE_PEAKS)
    total = int(ref.sum())
    near = _widened(spectral_peaks(clip_spec, CLIP_PEAKS))
    if total == 0 or not near.any():
        return 0.0, 0.0
    times = range(-MAX_SHIFT_FRAMES, MAX_SHIFT_FRAMES + 1)
    # the best count, and its pitch shift (the largest of those that tie)
    best, pitch = max((int((_shifted(ref, df, dt) & near).sum()), df) for df in range(-MAX_SHIFT_BINS, MAX_SHIFT_BINS + 1) for dt in times)
    backwards = max(int((_shifted(ref[:, ::-1], pitch, dt) & near).sum()) for dt in times)
    return best / total, backwards / total

