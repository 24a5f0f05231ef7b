"""Tests for search_engine.audio2vec.augment: each augmentation measured back on synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from search_engine.audio2vec import augment as A
from search_engine.errors import ParameterError

SR = 16000


def _tone(freq, *, sr=SR, dur=1.0, amp=0.3):
    t = np.arange(int(round(sr * dur))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _harmonic(sr=SR, dur=2.0):
    return _tone(440, sr=sr, dur=dur) + _tone(880, sr=sr, dur=dur, amp=0.1) + _tone(1320, sr=sr, dur=dur, amp=0.05)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _db(a, b):
    return 20 * np.log10(_rms(a) / _rms(b))


def _peak_hz(y, sr):
    """Frequency of the strongest spectral peak, to ~0.1 Hz (zero-padded FFT)."""
    n = 1 << int(np.ceil(np.log2(len(y) * 16)))
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=n))
    return np.argmax(spec) * sr / n


def _mid(y, frac=0.1):
    k = int(len(y) * frac)
    return y[k : len(y) - k]


# ------------------------------------------------------------------------------------ noise / mixing


def test_pink_noise_unit_rms_deterministic_and_slope():
    x = A.pink_noise(1 << 17, rng=np.random.default_rng(1))
    assert x.dtype == np.float32 and x.shape == (1 << 17,)
    assert _rms(x) == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_array_equal(x, A.pink_noise(1 << 17, rng=np.random.default_rng(1)))
    f, p = scipy.signal.welch(x, fs=SR, nperseg=4096)
    band = (f >= 50) & (f <= 5000)
    slope = np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0]
    assert -11.5 < slope < -8.5, slope  # dB per decade


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 25.0])
@pytest.mark.parametrize("noise_len", [3000, 16000, 50000])  # tiled, same length, cropped
def test_mix_at_snr_measured_back(snr_db, noise_len):
    y = _harmonic(dur=1.0)
    noise = A.pink_noise(noise_len, rng=np.random.default_rng(2))
    mix = A.mix_at_snr(y, noise, snr_db=snr_db, rng=np.random.default_rng(3))
    assert mix.dtype == np.float32 and mix.shape == y.shape
    measured = _db(y, mix.astype(np.float64) - y)
    assert abs(measured - snr_db) < 0.5


def test_mix_at_snr_rejects_silent_noise():
    with pytest.raises(ParameterError):
        A.mix_at_snr(_tone(440), np.zeros(100, np.float32), snr_db=10)


def test_babble_unit_rms_and_length():
    rng = np.random.default_rng(4)
    # "speech": amplitude-modulated noise bursts of different lengths (some shorter than n)
    clips = [
        (rng.standard_normal(m) * (0.5 + 0.5 * np.sin(np.arange(m) / 400.0))).astype(np.float32)
        for m in (4000, 9000, 20000, 30000)
    ]
    out = A.babble(clips, 24000, sr=SR, rng=np.random.default_rng(5), talkers=6)  # 6 > 4 clips
    assert out.dtype == np.float32 and out.shape == (24000,)
    assert _rms(out) == pytest.approx(1.0, rel=1e-4)
    again = A.babble(clips, 24000, sr=SR, rng=np.random.default_rng(5), talkers=6)
    np.testing.assert_array_equal(out, again)


# ------------------------------------------------------------------------------------------- rooms


def test_synth_room_ir_shape_energy_decay():
    ir = A.synth_room_ir(sr=SR, rt60_s=0.4, rng=np.random.default_rng(6), direct_to_reverb_db=0.0)
    assert ir.dtype == np.float32 and ir.shape == (int(np.ceil(SR * 0.45)),)
    assert np.sum(ir.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-5)
    # direct path carries half the energy at 0 dB direct-to-reverb
    assert ir[0] ** 2 == pytest.approx(0.5, abs=0.05)
    early = np.sum(ir[100:2000] ** 2)
    late = np.sum(ir[-2000:] ** 2)
    assert late < early * 1e-3


def test_reverb_tail_and_rms_match():
    y = np.zeros(SR, np.float32)
    y[:160] = np.random.default_rng(7).standard_normal(160).astype(np.float32)  # 10 ms click
    ir = A.synth_room_ir(sr=SR, rt60_s=0.5, rng=np.random.default_rng(8))
    wet = A.reverb(y, ir)
    assert wet.dtype == np.float32 and wet.shape == y.shape
    assert _rms(wet) == pytest.approx(_rms(y), rel=1e-4)
    tail = np.sum(wet[1600:8000].astype(np.float64) ** 2)  # 100-500 ms, where the input is silent
    assert tail > 0.01 * np.sum(wet.astype(np.float64) ** 2)  # expected ~3-4 % for rt60 = 0.5 s
    # a longer room rings longer
    ir_long = A.synth_room_ir(sr=SR, rt60_s=1.5, rng=np.random.default_rng(8))
    wet_long = A.reverb(y, ir_long)
    assert np.sum(wet_long[1600:8000].astype(np.float64) ** 2) > 3 * tail


# ---------------------------------------------------------------------------------------- channels


def test_bandpass_stopband_and_passband():
    low = _tone(100)
    mid = _tone(1000)
    out_low = A.bandpass(low, sr=SR, low_hz=300, high_hz=3400)
    out_mid = A.bandpass(mid, sr=SR, low_hz=300, high_hz=3400)
    assert out_low.dtype == np.float32 and out_low.shape == low.shape
    assert _db(_mid(out_low), _mid(low)) < -20
    assert abs(_db(_mid(out_mid), _mid(mid))) < 1


def test_telephone_removes_6k_keeps_1k():
    hi = _tone(6000)
    mid = _tone(1000)
    out_hi = A.telephone(hi, sr=SR)
    out_mid = A.telephone(mid, sr=SR)
    assert out_hi.shape == hi.shape and out_hi.dtype == np.float32
    assert _db(_mid(out_hi), _mid(hi)) < -40
    assert abs(_db(_mid(out_mid), _mid(mid))) < 1


# ------------------------------------------------------------------------------------------- codecs


def test_available_codecs_includes_mp3():
    assert "mp3" in A.available_codecs()


def test_codec_mp3_length_correlation_and_bitrate():
    y = _harmonic(sr=22050, dur=2.0)
    out = A.codec(y, sr=22050, codec="mp3", bitrate_kbps=32)
    assert out.dtype == np.float32 and out.shape == y.shape
    assert np.corrcoef(out, y)[0, 1] > 0.9
    data = A.encode(y, sr=22050, codec="mp3", bitrate_kbps=32)
    kbps = len(data) * 8 / 2.0 / 1000
    assert 28 < kbps < 40, kbps
    data64 = A.encode(y, sr=22050, codec="mp3", bitrate_kbps=64)
    assert 1.7 < len(data64) / len(data) < 2.3


@pytest.mark.parametrize("name", ["mp3", "aac", "opus"])
def test_codec_alignment(name):
    # PyAV (a core dependency) bundles libmp3lame, aac and libopus
    assert name in A.available_codecs()
    rng = np.random.default_rng(9)
    # broadband, non-periodic signal: the cross-correlation peak is unambiguous
    y = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(SR)).astype(np.float32)
    y *= 0.2 / _rms(y)
    out = A.codec(y, sr=SR, codec=name, bitrate_kbps=48)
    assert out.shape == y.shape and out.dtype == np.float32
    assert np.corrcoef(out, y)[0, 1] > 0.9
    cc = scipy.signal.correlate(out, y, mode="full", method="fft")
    lag = int(np.argmax(cc)) - (len(y) - 1)
    assert lag == 0


def test_codec_unknown_name():
    with pytest.raises(ParameterError):
        A.codec(_tone(440), sr=SR, codec="vorbis-xyz")


# ------------------------------------------------------------------------------------ time / pitch


def test_time_stretch_length_and_pitch():
    sr = 22050
    y = _tone(440, sr=sr, dur=1.0)
    out = A.time_stretch(y, rate=1.05)
    assert out.dtype == np.float32
    assert len(out) / sr == pytest.approx(1 / 1.05, abs=0.005)
    assert _peak_hz(_mid(out), sr) == pytest.approx(440, abs=3)


def test_speed_raises_pitch_and_shortens():
    y = _tone(440, dur=1.0)
    out = A.speed(y, rate=1.05)
    assert out.dtype == np.float32
    assert len(out) == pytest.approx(len(y) / 1.05, abs=2)
    assert _peak_hz(_mid(out), SR) == pytest.approx(462, abs=2)


def test_pitch_shift_cents():
    y = _tone(440, dur=1.0)
    out = A.pitch_shift(y, sr=SR, cents=100)
    assert out.dtype == np.float32 and out.shape == y.shape
    assert _peak_hz(_mid(out), SR) == pytest.approx(440 * 2 ** (1 / 12), abs=3)
