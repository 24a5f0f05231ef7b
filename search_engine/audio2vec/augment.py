"""Waveform augmentations for training and robustness tests: noise, babble, rooms, channels, codecs.

Every function takes and returns a mono ``float32`` waveform ``y`` of shape ``(n,)`` (amplitude in
full-scale units, nominally within [-1, 1]) and, unless its docstring says otherwise, returns the
same number of samples it was given. Parameters are keyword-only, librosa-style. Functions that draw
random numbers take an explicit ``rng: numpy.random.Generator``; nothing here touches global random
state, so a fixed seed gives a fixed result.

Only :func:`time_stretch` and :func:`speed` change the length (to about ``n / rate``).
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import scipy.signal
import soxr

from ..errors import ParameterError

__all__ = [
    "pink_noise",
    "mix_at_snr",
    "babble",
    "synth_room_ir",
    "reverb",
    "bandpass",
    "telephone",
    "available_codecs",
    "encode",
    "decode",
    "codec",
    "time_stretch",
    "pitch_shift",
    "speed",
]

_EPS = 1e-12


# ----------------------------------------------------------------------------------------- helpers


def _as_mono(y: np.ndarray, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"{name} must be a mono waveform of shape (n,), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{name} must be a floating-point waveform, got dtype {y.dtype}")
    return y.astype(np.float32, copy=False)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0


def _fit_length(x: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """Tile (from a random start) or randomly crop ``x`` to exactly ``n`` samples.

    With ``rng=None`` the crop/tiling starts at sample 0 (deterministic).
    """
    m = x.shape[0]
    if m == 0:
        raise ParameterError("cannot fit an empty signal to a length")
    if m >= n:
        start = int(rng.integers(0, m - n + 1)) if rng is not None else 0
        return x[start : start + n]
    start = int(rng.integers(0, m)) if rng is not None else 0
    reps = -(-(n + start) // m)  # ceil
    return np.tile(x, reps)[start : start + n]


def _fix_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[0] >= n:
        return y[:n]
    return np.pad(y, (0, n - y.shape[0]))


# ------------------------------------------------------------------------------------ noise / mixing


def pink_noise(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) Gaussian noise.

    The power spectral density falls as ``1/f``, i.e. -10 dB per decade (-3 dB per octave); the DC
    bin is zero.

    Parameters
    ----------
    n : int > 0
        Number of samples.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    noise : np.ndarray [shape=(n,), dtype=float32]
        Zero-mean noise with unit RMS.
    """
    n = int(n)
    if n <= 0:
        raise ParameterError(f"n must be positive, got {n}")
    n_fft = max(n, 2)
    k = np.arange(n_fft // 2 + 1, dtype=np.float64)
    spec = rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size)
    gain = np.zeros_like(k)
    gain[1:] = 1.0 / np.sqrt(k[1:])  # amplitude ~ f^-1/2  =>  power ~ 1/f
    x = np.fft.irfft(spec * gain, n=n_fft)[:n]
    x -= x.mean()
    r = _rms(x)
    return (x / r if r > 0 else x).astype(np.float32)


def mix_at_snr(
    y: np.ndarray,
    noise: np.ndarray,
    *,
    snr_db: float,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Add ``noise`` to ``y`` at a given signal-to-noise ratio.

    SNR is measured on RMS over the whole signal: ``20 * log10(rms(y) / rms(scaled_noise))``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Clean signal.
    noise : np.ndarray [shape=(m,)]
        Noise. If ``m > n`` a random excerpt of ``n`` samples is used; if ``m < n`` it is tiled
        (starting at a random offset). With ``rng=None`` both start at sample 0.
    snr_db : float
        Target signal-to-noise ratio in dB.
    rng : numpy.random.Generator or None
        Chooses the crop / tiling offset.

    Returns
    -------
    y_noisy : np.ndarray [shape=(n,), dtype=float32]
        ``y + scaled_noise``. No clipping or renormalisation is applied. If ``y`` is silent
        (RMS 0) the SNR is undefined and ``y`` is returned unchanged.

    Raises
    ------
    ParameterError
        If ``noise`` is empty or silent.
    """
    y = _as_mono(y)
    noise = _as_mono(noise, "noise")
    if noise.size == 0:
        raise ParameterError("noise is empty")
    if y.size == 0:
        return y.copy()
    nz = _fit_length(noise, y.shape[0], rng).astype(np.float64)
    r_noise = _rms(nz)
    if r_noise <= 0:
        raise ParameterError("noise is silent (RMS 0); cannot scale it to an SNR")
    r_sig = _rms(y)
    if r_sig <= 0:
        return y.copy()
    scale = r_sig / (r_noise * 10.0 ** (float(snr_db) / 20.0))
    return (y.astype(np.float64) + scale * nz).astype(np.float32)


def babble(
    speech_list,
    n: int,
    *,
    sr: int,
    rng: np.random.Generator,
    talkers: int = 6,
) -> np.ndarray:
    """Babble noise: several talkers speaking at once.

    ``talkers`` clips are drawn from ``speech_list`` (without replacement when there are enough
    clips), each is normalised to unit RMS, cropped at a random offset or tiled to ``n`` samples
    (tile seams are cross-faded over 10 ms so they do not click), and the talkers are summed.

    Parameters
    ----------
    speech_list : sequence of np.ndarray [shape=(m_i,)]
        Mono speech waveforms at ``sr``. Silent clips are ignored.
    n : int > 0
        Output length in samples.
    sr : int > 0
        Sample rate in Hz (sets the seam cross-fade length).
    rng : numpy.random.Generator
        Chooses talkers and offsets.
    talkers : int > 0
        Number of simultaneous talkers.

    Returns
    -------
    noise : np.ndarray [shape=(n,), dtype=float32]
        Babble with unit RMS.
    """
    n = int(n)
    if n <= 0:
        raise ParameterError(f"n must be positive, got {n}")
    if talkers < 1:
        raise ParameterError(f"talkers must be >= 1, got {talkers}")
    clips = [c for c in (_as_mono(s, "speech_list[i]") for s in speech_list) if _rms(c) > 0]
    if not clips:
        raise ParameterError("speech_list holds no non-silent waveform")
    idx = rng.choice(len(clips), size=talkers, replace=len(clips) < talkers)
    fade = max(1, int(round(0.010 * sr)))
    out = np.zeros(n, dtype=np.float64)
    for i in idx:
        c = clips[int(i)].astype(np.float64)
        c = c / _rms(c)
        if c.shape[0] < n and c.shape[0] > 2 * fade:
            # loop with a cross-fade: the last `fade` samples blend into the first ones
            ramp = np.linspace(0.0, 1.0, fade)
            loop = c[:-fade].copy()
            loop[:fade] = c[:fade] * ramp + c[-fade:] * (1.0 - ramp)
            c = loop
        out += _fit_length(c, n, rng)
    r = _rms(out)
    return (out / r if r > 0 else out).astype(np.float32)


# ------------------------------------------------------------------------------------------- rooms


def synth_room_ir(
    *,
    sr: int,
    rt60_s: float,
    rng: np.random.Generator,
    direct_to_reverb_db: float = 0.0,
) -> np.ndarray:
    """A synthetic room impulse response.

    A unit direct path at sample 0, 4-8 early reflections at random delays in 3-40 ms with random
    signs, and a diffuse tail of Gaussian noise whose amplitude decays by 60 dB in ``rt60_s``
    seconds, starting after a short random pre-delay (2-10 ms) with a 5 ms onset ramp.

    Parameters
    ----------
    sr : int > 0
        Sample rate in Hz.
    rt60_s : float > 0
        Reverberation time (seconds to decay by 60 dB).
    rng : numpy.random.Generator
        Source of randomness.
    direct_to_reverb_db : float
        Energy ratio of the direct path to everything else (early reflections + tail), in dB.

    Returns
    -------
    ir : np.ndarray [shape=(ceil(sr * (rt60_s + 0.05)),), dtype=float32]
        Impulse response scaled to unit energy (``sum(ir**2) == 1``).
    """
    if sr <= 0:
        raise ParameterError(f"sr must be positive, got {sr}")
    if not rt60_s > 0:
        raise ParameterError(f"rt60_s must be positive, got {rt60_s}")
    length = int(np.ceil(sr * (rt60_s + 0.05)))
    t = np.arange(length) / sr
    decay = np.exp(-np.log(1000.0) * t / rt60_s)  # amplitude: -60 dB at t = rt60

    reverb_part = np.zeros(length)
    pre = rng.uniform(0.002, 0.010)
    onset = np.clip((t - pre) / 0.005, 0.0, 1.0)
    reverb_part += rng.standard_normal(length) * decay * onset

    # early reflections, ~ as strong as the tail energy around them
    n_refl = int(rng.integers(4, 9))
    delays = rng.uniform(0.003, 0.040, size=n_refl)
    gains = rng.uniform(0.3, 1.0, size=n_refl) * rng.choice([-1.0, 1.0], size=n_refl)
    tail_level = np.sqrt(max(np.sum(reverb_part**2), _EPS) / max(length, 1)) * 4.0
    for d, g in zip(delays, gains):
        i = int(round(d * sr))
        if 0 < i < length:
            reverb_part[i] += g * tail_level * decay[i]

    direct_energy = 1.0
    rev_energy = float(np.sum(reverb_part**2))
    if rev_energy > 0:
        reverb_part *= np.sqrt(direct_energy / (rev_energy * 10.0 ** (direct_to_reverb_db / 10.0)))
    ir = reverb_part
    ir[0] += 1.0
    ir /= np.sqrt(np.sum(ir**2))
    return ir.astype(np.float32)


def reverb(y: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Dry signal.
    ir : np.ndarray [shape=(k,)]
        Impulse response (e.g. from :func:`synth_room_ir`), at the same sample rate as ``y``.

    Returns
    -------
    y_wet : np.ndarray [shape=(n,), dtype=float32]
        ``fftconvolve(y, ir)`` truncated to the first ``n`` samples (the tail past the end is
        dropped) and rescaled to the RMS of ``y``.
    """
    y = _as_mono(y)
    ir = _as_mono(ir, "ir")
    if ir.size == 0:
        raise ParameterError("ir is empty")
    if y.size == 0:
        return y.copy()
    wet = scipy.signal.fftconvolve(y.astype(np.float64), ir.astype(np.float64))[: y.shape[0]]
    r_in, r_out = _rms(y), _rms(wet)
    if r_out > 0:
        wet *= r_in / r_out
    return wet.astype(np.float32)


# ---------------------------------------------------------------------------------------- channels


def bandpass(
    y: np.ndarray,
    *,
    sr: int,
    low_hz: float,
    high_hz: float,
    order: int = 4,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass filter.

    Filtered forwards and backwards (``scipy.signal.sosfiltfilt``), so there is no phase shift and
    the magnitude response is the square of the order-``order`` Butterworth response: -6 dB at
    the band edges and twice the nominal roll-off.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Input signal.
    sr : int > 0
        Sample rate in Hz.
    low_hz, high_hz : float
        Band edges in Hz. ``low_hz <= 0`` makes it a low-pass; ``high_hz >= sr / 2`` a high-pass
        (both: the signal is returned unchanged).
    order : int > 0
        Butterworth order (per pass).

    Returns
    -------
    y_band : np.ndarray [shape=(n,), dtype=float32]
    """
    y = _as_mono(y)
    nyq = sr / 2.0
    if sr <= 0 or order < 1:
        raise ParameterError(f"need sr > 0 and order >= 1, got sr={sr}, order={order}")
    if low_hz > 0 and high_hz < nyq and not low_hz < high_hz:
        raise ParameterError(f"need low_hz < high_hz, got {low_hz} >= {high_hz}")
    if low_hz > 0 and high_hz < nyq:
        sos = scipy.signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    elif low_hz > 0:
        if low_hz >= nyq:
            raise ParameterError(f"low_hz ({low_hz}) must be below sr / 2 ({nyq})")
        sos = scipy.signal.butter(order, low_hz, btype="highpass", fs=sr, output="sos")
    elif high_hz < nyq:
        if high_hz <= 0:
            raise ParameterError(f"high_hz must be positive, got {high_hz}")
        sos = scipy.signal.butter(order, high_hz, btype="lowpass", fs=sr, output="sos")
    else:
        return y.copy()
    if y.shape[0] < 2:
        return y.copy()
    # default sosfiltfilt padding, shortened for very short signals
    ntaps = 2 * sos.shape[0] + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    padlen = min(3 * ntaps, y.shape[0] - 1)
    out = scipy.signal.sosfiltfilt(sos, y.astype(np.float64), padlen=padlen)
    return out.astype(np.float32)


def telephone(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Narrow-band telephone channel.

    Band-pass 300-3400 Hz (:func:`bandpass`, order 4), then resample to 8 kHz and back to ``sr``
    with soxr (which removes anything the 8 kHz rate cannot carry).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Input signal.
    sr : int > 0
        Sample rate in Hz.

    Returns
    -------
    y_phone : np.ndarray [shape=(n,), dtype=float32]
    """
    y = _as_mono(y)
    n = y.shape[0]
    band = bandpass(y, sr=sr, low_hz=300.0, high_hz=3400.0, order=4)
    if sr == 8000 or n == 0:
        return band
    narrow = soxr.resample(band, sr, 8000, quality="HQ")
    back = soxr.resample(narrow, 8000, sr, quality="HQ")
    return _fix_length(np.asarray(back, dtype=np.float32), n)


# ------------------------------------------------------------------------------------------- codecs

# codec name -> (encoder names to try in order, container format, sample rates the encoder takes)
_CODECS = {
    "mp3": (("libmp3lame",), "mp3", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "aac": (("aac", "libfdk_aac"), "adts", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "opus": (("libopus", "opus"), "ogg", (48000,)),
}


def _encoder_name(codec: str) -> str:
    import av

    if codec not in _CODECS:
        raise ParameterError(f"unknown codec {codec!r}; choose one of {sorted(_CODECS)}")
    for name in _CODECS[codec][0]:
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    raise ParameterError(f"no {codec} encoder in this FFmpeg build (PyAV {av.__version__})")


def available_codecs() -> tuple[str, ...]:
    """Codec names accepted by :func:`encode` / :func:`codec` with this PyAV/FFmpeg build.

    Returns
    -------
    names : tuple of str
        A subset of ``('mp3', 'aac', 'opus')``.
    """
    out = []
    for c in _CODECS:
        try:
            _encoder_name(c)
        except ParameterError:
            continue
        out.append(c)
    return tuple(out)


def _codec_rate(codec: str, sr: int) -> int:
    rates = _CODECS[codec][2]
    if sr in rates:
        return int(sr)
    higher = [r for r in rates if r >= sr]
    return int(min(higher)) if higher else int(max(rates))


def _encode(y: np.ndarray, *, sr: int, codec: str, bitrate_kbps: float) -> tuple[bytes, int, int]:
    """Encode; return (bytes, encoder sample rate, priming samples at that rate)."""
    import av

    y = _as_mono(y)
    if y.size == 0:
        raise ParameterError("cannot encode an empty waveform")
    if not bitrate_kbps > 0:
        raise ParameterError(f"bitrate_kbps must be positive, got {bitrate_kbps}")
    name = _encoder_name(codec)
    rate = _codec_rate(codec, sr)
    x = y if rate == sr else np.asarray(soxr.resample(y, sr, rate, quality="HQ"), dtype=np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)

    buf = io.BytesIO()
    first_pts = None
    with av.open(buf, "w", format=_CODECS[codec][1]) as out:
        stream = out.add_stream(name, rate=rate, layout="mono")
        stream.bit_rate = int(round(bitrate_kbps * 1000))
        if name == "opus":  # FFmpeg's native Opus encoder is marked experimental
            stream.codec_context.options = {"strict": "experimental"}
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = Fraction(1, rate)
        for packets in (stream.encode(frame), stream.encode(None)):
            for p in packets:
                if first_pts is None and p.pts is not None and p.time_base is not None:
                    first_pts = p.pts * p.time_base
                out.mux(p)
    priming = int(round(-float(first_pts) * rate)) if first_pts is not None and first_pts < 0 else 0
    return buf.getvalue(), rate, priming


def encode(y: np.ndarray, *, sr: int, codec: str = "mp3", bitrate_kbps: float = 32) -> bytes:
    """Encode a waveform to a compressed audio file, in memory.

    Containers: ``'mp3'`` -> MPEG audio (libmp3lame, with a LAME/Xing header), ``'aac'`` -> ADTS
    (FFmpeg's native AAC-LC encoder), ``'opus'`` -> Ogg Opus (libopus). The signal is first
    resampled with soxr to a rate the encoder accepts (``sr`` itself where possible; Opus always
    runs at 48 kHz).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal; samples outside [-1, 1] may clip.
    sr : int > 0
        Sample rate of ``y`` in Hz.
    codec : {'mp3', 'aac', 'opus'}
        See :func:`available_codecs`.
    bitrate_kbps : float > 0
        Target bit rate in kbit/s (Opus and AAC treat it as an average, not a hard cap).

    Returns
    -------
    data : bytes
        The encoded file, headers included: ``len(data) * 8 / duration_s`` is about
        ``bitrate_kbps * 1000`` plus container overhead.
    """
    return _encode(y, sr=sr, codec=codec, bitrate_kbps=bitrate_kbps)[0]


def decode(data: bytes, *, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an in-memory audio file (any format FFmpeg reads) to mono float32.

    Parameters
    ----------
    data : bytes
        The encoded file, e.g. from :func:`encode`.
    sr : int > 0 or None
        Output sample rate in Hz; ``None`` keeps the stream's own rate.

    Returns
    -------
    y : np.ndarray [shape=(m,), dtype=float32]
        Decoded samples (channels averaged). Encoder priming is removed only where the container
        signals it (MP3 LAME header, Ogg Opus pre-skip); :func:`codec` handles the rest.
    sr : int
        Sample rate of ``y``.
    """
    import av

    with av.open(io.BytesIO(data), "r") as container:
        if not container.streams.audio:
            raise ParameterError("encoded data holds no audio stream")
        stream = container.streams.audio[0]
        rate = int(sr or stream.rate or stream.codec_context.sample_rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = []
        for frame in container.decode(stream):
            for o in resampler.resample(frame):
                parts.append(o.to_ndarray().reshape(-1))
        for o in resampler.resample(None):
            parts.append(o.to_ndarray().reshape(-1))
    y = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    return y, rate


def _ncorr_at(d: np.ndarray, x: np.ndarray, lag: int) -> float:
    seg = _fix_length(d[lag:], x.shape[0]) if lag >= 0 else np.pad(d, (-lag, 0))[: x.shape[0]]
    seg = _fix_length(seg, x.shape[0])
    den = np.sqrt(np.sum(seg.astype(np.float64) ** 2) * np.sum(x.astype(np.float64) ** 2))
    return float(np.dot(seg, x) / den) if den > 0 else 0.0


def _find_lag(d: np.ndarray, x: np.ndarray, expected: int, max_lag: int) -> int:
    """Lag of ``x`` inside ``d``: ``expected`` unless a cross-correlation peak in [0, max_lag]
    is clearly (by > 0.1 normalised correlation) better."""
    best_c = _ncorr_at(d, x, expected)
    if best_c > 0.9:
        return expected
    m = min(x.shape[0], d.shape[0])
    if m == 0:
        return expected
    cc = scipy.signal.correlate(d[: m + max_lag].astype(np.float64), x[:m].astype(np.float64),
                                mode="full", method="fft")
    zero = m - 1
    window = cc[zero : zero + max_lag + 1]
    if window.size == 0:
        return expected
    cand = int(np.argmax(window))
    if _ncorr_at(d, x, cand) > best_c + 0.1:
        return cand
    return expected


def codec(
    y: np.ndarray,
    *,
    sr: int,
    codec: str = "mp3",
    bitrate_kbps: float = 32,
) -> np.ndarray:
    """Lossy-codec round trip: encode (see :func:`encode`) and decode back, aligned.

    The encoder's priming delay is removed: it is read from the first packet's negative timestamp,
    minus whatever the decoder already skipped (MP3 LAME header, Ogg pre-skip); ADTS/AAC signals
    nothing, so there the 1024 priming samples are cut here. If the decoded signal does not line
    up at that lag, the lag is searched by cross-correlation instead.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : int > 0
        Sample rate in Hz.
    codec : {'mp3', 'aac', 'opus'}
        See :func:`available_codecs`.
    bitrate_kbps : float > 0
        Target bit rate in kbit/s.

    Returns
    -------
    y_coded : np.ndarray [shape=(n,), dtype=float32]
        Decoded signal at ``sr``, time-aligned with ``y``, zero-padded/trimmed to ``n`` samples.
    """
    y = _as_mono(y)
    n = y.shape[0]
    if n == 0:
        return y.copy()
    # very short inputs (a few codec frames) may not survive the container: pad to >= 0.1 s
    y = _fix_length(y, max(n, int(np.ceil(0.1 * sr))))
    data, rate, priming = _encode(y, sr=sr, codec=codec, bitrate_kbps=bitrate_kbps)
    d, _ = decode(data, sr=rate)
    x = y if rate == sr else np.asarray(soxr.resample(y, sr, rate, quality="HQ"), dtype=np.float32)
    # how much priming the decoder has already dropped shows up as the decoded length surplus
    surplus = d.shape[0] - x.shape[0]
    expected = priming if codec == "aac" else 0
    if codec == "aac" and surplus < priming:  # some decoders do skip it
        expected = max(0, surplus)
    lag = _find_lag(d, x, expected, max_lag=priming + 4096)
    aligned = _fix_length(d[lag:], x.shape[0])
    if rate != sr:
        aligned = np.asarray(soxr.resample(aligned, rate, sr, quality="HQ"), dtype=np.float32)
    return _fix_length(aligned.astype(np.float32, copy=False), n)


# ------------------------------------------------------------------------------------ time / pitch


def time_stretch(y: np.ndarray, *, rate: float) -> np.ndarray:
    """Change tempo without changing pitch (phase vocoder, :func:`librosa.effects.time_stretch`).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Input signal.
    rate : float > 0
        Speed factor: ``rate > 1`` is faster (shorter).

    Returns
    -------
    y_stretch : np.ndarray [shape=(round(n / rate),), dtype=float32]
        **Not** the input length: about ``n / rate`` samples.
    """
    import librosa

    y = _as_mono(y)
    if not rate > 0:
        raise ParameterError(f"rate must be positive, got {rate}")
    return np.asarray(librosa.effects.time_stretch(y, rate=float(rate)), dtype=np.float32)


def pitch_shift(y: np.ndarray, *, sr: int, cents: float) -> np.ndarray:
    """Shift pitch without changing duration (:func:`librosa.effects.pitch_shift`).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Input signal.
    sr : int > 0
        Sample rate in Hz.
    cents : float
        Shift in cents (100 cents = 1 semitone; positive is up).

    Returns
    -------
    y_shift : np.ndarray [shape=(n,), dtype=float32]
    """
    import librosa

    y = _as_mono(y)
    if cents == 0:
        return y.copy()
    out = librosa.effects.pitch_shift(y, sr=sr, n_steps=float(cents) / 100.0, bins_per_octave=12)
    return _fix_length(np.asarray(out, dtype=np.float32), y.shape[0])


def speed(y: np.ndarray, *, rate: float) -> np.ndarray:
    """Tape-style speed change: tempo and pitch change together (soxr resampling).

    Playing the result at the original sample rate sounds ``rate`` times faster and every
    frequency is multiplied by ``rate``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Input signal.
    rate : float > 0
        Speed factor: ``rate > 1`` is faster and higher.

    Returns
    -------
    y_speed : np.ndarray [shape=(about n / rate,), dtype=float32]
        **Not** the input length: about ``n / rate`` samples.
    """
    y = _as_mono(y)
    if not rate > 0:
        raise ParameterError(f"rate must be positive, got {rate}")
    if rate == 1 or y.size == 0:
        return y.copy()
    return np.asarray(soxr.resample(y, float(rate), 1.0, quality="HQ"), dtype=np.float32)
