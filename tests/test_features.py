"""Features: frame and window arithmetic, gain invariance of the encoder input."""

from __future__ import annotations

import numpy as np
import pytest

from search_engine.errors import DecodeError
from search_engine.features import FeatureSettings, log_mel, normalize_windows, require_windows, windows
from synth import tune

S = FeatureSettings()


def test_log_mel_shape_and_frame_times():
    y = tune(5, 3.0)
    mel = log_mel(y, settings=S)
    assert mel.shape == (1 + (len(y) - S.n_fft) // S.hop_length, S.n_mels)
    assert mel.dtype == np.float32 and np.isfinite(mel).all()
    # a click at 1.0 s shows up in the frames covering 1.0 s
    z = np.zeros(48000, dtype=np.float32)
    z[16000] = 1.0
    loud = np.argmax(log_mel(z, settings=S).sum(axis=1))
    start = loud * S.hop_length
    assert start <= 16000 < start + S.n_fft


def test_chunked_log_mel_equals_one_pass():
    y = tune(6, 90.0)  # longer than one internal chunk
    mel = log_mel(y, settings=S)
    import librosa

    ref = librosa.feature.melspectrogram(
        y=y, sr=S.sample_rate_hz, n_fft=S.n_fft, hop_length=S.hop_length, n_mels=S.n_mels,
        fmin=S.fmin_hz, fmax=S.fmax_hz, center=False,
    )
    ref = 10 * np.log10(np.maximum(ref.T, 1e-10))
    assert mel.shape == ref.shape
    # float32 FFT rounding (numpy, SciPy) shows only far down: within the 80 dB the encoder keeps
    # (top_db) the dB agree to 0.005 (0.1 % in power)
    kept = ref > ref.max() - S.top_db
    assert np.allclose(mel[kept], ref[kept], atol=5e-3) and np.allclose(mel, ref, atol=0.05)


def test_mel_basis_and_power_spectrogram_are_librosas():
    """features computes the STFT and the mel filterbank with numpy (librosa's import costs more
    than a query); they are librosa's numbers."""
    import librosa

    from search_engine.features import _mel_basis, power_spectrogram

    ref = librosa.filters.mel(sr=S.sample_rate_hz, n_fft=S.n_fft, n_mels=S.n_mels, fmin=S.fmin_hz, fmax=S.fmax_hz)
    assert np.allclose(_mel_basis(S), ref, rtol=1e-5, atol=1e-8)
    y = tune(2, 60.0)
    spec = np.abs(librosa.stft(y, n_fft=S.n_fft, hop_length=S.hop_length, center=False)) ** 2
    assert np.allclose(power_spectrogram(y, n_fft=S.n_fft, hop_length=S.hop_length), spec.T, rtol=1e-4, atol=1e-6 * spec.max())


def test_windows_are_views_with_start_frames():
    mel = np.arange(200 * 4, dtype=np.float32).reshape(200, 4)
    win, starts = windows(mel, window_frames=64, hop_frames=32)
    assert list(starts) == [0, 32, 64, 96, 128]
    assert np.array_equal(win[2], mel[64:128])
    short, st = windows(mel[:20], window_frames=64, hop_frames=32, pad_value=-100.0)
    assert short.shape == (1, 64, 4) and list(st) == [0]
    assert np.array_equal(short[0, :20], mel[:20]) and (short[0, 20:] == -100.0).all()
    none, st = windows(mel[:0], window_frames=64, hop_frames=32)
    assert len(none) == 0
    with pytest.raises(DecodeError, match="too short"):
        require_windows(len(st), source="clip.wav", duration_s=0.3, settings=S)


def test_normalized_windows_do_not_depend_on_gain():
    y = tune(7, 3.0)
    a = normalize_windows(windows(log_mel(y, settings=S), window_frames=64, hop_frames=32)[0], top_db=80)
    b = normalize_windows(windows(log_mel(0.05 * y, settings=S), window_frames=64, hop_frames=32)[0], top_db=80)
    assert np.allclose(a, b, atol=1e-3)
    assert abs(float(a.mean())) < 1e-4


def test_long_and_short_signals_take_the_same_spectrogram():
    """Long signals use SciPy's FFT, short ones numpy's: the same power spectrogram."""
    from search_engine.features import SCIPY_FFT_MIN_FRAMES, power_spectrogram

    y = tune(4, (SCIPY_FFT_MIN_FRAMES + 10) * S.hop_length / S.sample_rate_hz + 0.1)
    long = power_spectrogram(y, n_fft=S.n_fft, hop_length=S.hop_length)
    assert len(long) >= SCIPY_FFT_MIN_FRAMES
    short = np.concatenate([power_spectrogram(y[i * S.hop_length : (i + 500) * S.hop_length + S.n_fft - S.hop_length], n_fft=S.n_fft, hop_length=S.hop_length)
                            for i in range(0, len(long), 500)])
    assert short.shape == long.shape and np.allclose(short, long, rtol=1e-4, atol=1e-6 * long.max())
