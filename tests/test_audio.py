"""Decoding: every supported format, any rate and channel count, and every bad-input case."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from search_engine.audio import find_audio_files, load, to_mono
from search_engine.errors import DecodeError
from synth import tune


def _sine(sr, seconds=1.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    y = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def _pitch(y, sr):
    spec = np.abs(np.fft.rfft(y))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)]


@pytest.mark.parametrize(
    "ext,fmt,subtype",
    [("wav", "WAV", "PCM_16"), ("flac", "FLAC", None), ("ogg", "OGG", "VORBIS"), ("opus", "OGG", "OPUS"), ("mp3", "MP3", None)],
)
@pytest.mark.parametrize("sr,channels", [(8000, 1), (44100, 2), (48000, 6)])
def test_formats_decode_to_mono_16k(tmp_path, ext, fmt, subtype, sr, channels):
    if ext == "opus" and sr == 44100:
        sr = 48000  # libopus only takes 8/12/16/24/48 kHz
    if ext == "mp3" and channels > 2:
        channels = 2
    path = tmp_path / f"x.{ext}"
    sf.write(path, _sine(sr, channels=channels), sr, format=fmt, subtype=subtype)
    y, out_sr = load(path, sr=16000)
    assert out_sr == 16000 and y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) < 1600  # codecs may pad a little
    assert abs(_pitch(y, 16000) - 440) < 5


def test_m4a_through_pyav(tmp_path):
    import av  # FFmpeg decodes the formats libsndfile lacks
    path = tmp_path / "x.m4a"
    y = _sine(44100, 2.0)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    z, _ = load(path, sr=16000)
    assert abs(len(z) / 16000 - 2.0) < 0.1
    assert abs(_pitch(z, 16000) - 440) < 5


def _bad_files(tmp_path):
    good = io.BytesIO()
    sf.write(good, tune(1, 3.0), 16000, format="WAV")
    wav = good.getvalue()
    flac = io.BytesIO()
    sf.write(flac, tune(1, 3.0), 16000, format="FLAC")
    zero = io.BytesIO()
    sf.write(zero, np.zeros(0, dtype=np.float32), 16000, format="WAV")
    silent = io.BytesIO()
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
    cases = {
        "empty.wav": (b"", "empty"),
        "truncated.wav": (wav[: len(wav) // 2], "truncated"),
        "header_only.wav": (wav[:44], "truncated"),
        "truncated.flac": (flac.getvalue()[: len(flac.getvalue()) // 2], "truncated"),
        "text.wav": (b"this is not audio at all\n" * 40, "not a readable audio file"),
        "random.mp3": (np.random.default_rng(0).bytes(5000), ""),
        "zero_length.wav": (zero.getvalue(), "zero-length"),
        "silence.wav": (silent.getvalue(), "silence"),
    }
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    return {tmp_path / name: reason for name, (_, reason) in cases.items()}


def test_every_bad_file_raises_decode_error_naming_it(tmp_path):
    for path, reason in _bad_files(tmp_path).items():
        with pytest.raises(DecodeError) as info:
            load(path, sr=16000)
        assert str(path) in str(info.value), path
        assert reason in str(info.value), (path, str(info.value))
        assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DecodeError, match="cannot read"):
        load(tmp_path / "nope.wav", sr=16000)
    with pytest.raises(DecodeError, match="directory"):
        load(tmp_path, sr=16000)


def test_unreadable_file(tmp_path, monkeypatch):
    import os

    path = tmp_path / "locked.wav"
    sf.write(path, tune(2, 2.0), 16000)
    path.chmod(0)
    if os.geteuid() == 0:  # root ignores permissions: make the access check see them
        monkeypatch.setattr(os, "access", lambda p, mode: False)
    with pytest.raises(DecodeError, match="permission"):
        load(path, sr=16000)


def test_waveform_input_checks():
    y = tune(3, 2.0)
    z = to_mono(np.stack([y, y], axis=1), 16000, sr=16000)
    assert np.allclose(z, y)
    assert len(to_mono((y * 32767).astype(np.int16), 16000, sr=8000)) == 8000 * 2
    with pytest.raises(DecodeError, match="NaN"):
        to_mono(np.full(1000, np.nan, dtype=np.float32), 16000, sr=16000)
    with pytest.raises(DecodeError, match="silence"):
        to_mono(np.zeros(1000, dtype=np.float32), 16000, sr=16000)
    with pytest.raises(DecodeError, match="zero-length"):
        to_mono(np.zeros(0, dtype=np.float32), 16000, sr=16000)


def test_find_audio_files_walks_folders_and_survives_symlink_loops(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for p in ("a/x.wav", "a/b/y.FLAC", "a/b/notes.txt"):
        (tmp_path / p).write_bytes(b"")
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio_files([tmp_path / "a"])]
    assert found == ["a/x.wav", "a/b/y.FLAC"]
    # a file named explicitly is yielded whatever its extension
    assert list(find_audio_files([tmp_path / "a/b/notes.txt"])) == [tmp_path / "a/b/notes.txt"]


def test_find_audio_files_skips_hidden_files_and_folders_inside_a_folder(tmp_path):
    # an interrupted renderer's temporary audio, a git-annex object store, a stray dot file
    for p in ("lib/x.wav", "lib/.tmp/job1/raw.wav", "lib/.git/annex/objects/ab/y.wav", "lib/sub/.z.wav", "lib/sub/w.ogg"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio_files([tmp_path / "lib"])]
    assert found == ["lib/x.wav", "lib/sub/w.ogg"]
    # named explicitly, a hidden file or a file inside a hidden folder is still taken
    assert list(find_audio_files([tmp_path / "lib/sub/.z.wav"])) == [tmp_path / "lib/sub/.z.wav"]
    assert list(find_audio_files([tmp_path / "lib/.tmp"])) == [tmp_path / "lib/.tmp/job1/raw.wav"]
