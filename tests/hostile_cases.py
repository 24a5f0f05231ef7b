"""Hostile and odd input files, shared by tests/test_hostile_input.py and benchmarks/hostile_input.py.

Every case writes one thing into an empty folder and returns its path. ``expect`` says what the
indexer must do with it:

  fail   one error line naming the file, nothing of it in the index, the run goes on
  index  valid audio (odd rate, channels, name, extension, level): indexed and queryable
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from synth import SR, tune

BIG_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    expect: str  # "fail" | "index"
    #: regular expression the error reason must match (case-insensitive), for ``fail``
    reason: str = ""
    #: what it is, for the benchmark table
    what: str = ""
    #: seconds of audio in a good file
    seconds: float = 4.0


def _wav_bytes(y: np.ndarray, sr: int = SR, **kw) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=kw.pop("format", "WAV"), **kw)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _sf(path: Path, y: np.ndarray, sr: int = SR, **kw) -> Path:
    sf.write(path, y, sr, **kw)
    return path


def _resampled(y: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(y, SR, sr).astype(np.float32)


def _big(path: Path, head: bytes) -> Path:
    """A sparse file of BIG_BYTES: ``head`` then zeros (cheap to make, 2 GiB to read)."""
    path.write_bytes(head)
    os.truncate(path, BIG_BYTES)
    return path


def _vorbis_in_wav(path: Path, y: np.ndarray) -> Path:
    """A RIFF/WAVE file whose data chunk holds an Ogg Vorbis stream (format tag 0x674f, the Vorbis
    ACM codec, as some music programs write; libsndfile cannot write it, so it is built by hand)."""
    ogg = _wav_bytes(y, format="OGG", subtype="VORBIS")
    fmt = struct.pack("<HHIIHH", 0x674F, 1, SR, SR * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(ogg)) + ogg
    body += b"\0" * (len(ogg) & 1)
    return _write(path, b"RIFF" + struct.pack("<I", len(body)) + body)


def _with(y: np.ndarray, index: int, value: float) -> np.ndarray:
    y = y.copy()
    y[index] = value
    return y


def _bytes_name(folder: Path, name: bytes, data: bytes) -> Path:
    """A file whose name is not valid UTF-8 (Python shows such bytes as lone surrogates)."""
    with open(os.path.join(os.fsencode(folder), name), "wb") as f:
        f.write(data)
    return folder / os.fsdecode(name)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _symlink(path: Path, target: str | Path) -> Path:
    path.symlink_to(target)
    return path


def _unreadable(path: Path) -> Path:
    _sf(path, tune(40, 3.0))
    path.chmod(0)
    return path


#: the RIFF header of a 16 kHz mono PCM16 WAV, without a data chunk
_RIFF_HEAD = b"RIFF\xff\xff\xff\x7fWAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, 2 * SR, 2, 16)

BAD = [
    Case("empty", lambda d: _write(d / "empty.wav", b""), "fail", "empty", "0-byte .wav"),
    Case("truncated_wav", lambda d: _write(d / "truncated.wav", _wav_bytes(tune(11, 3.0))[:40000]), "fail", "truncated",
         "WAV cut at 40 kB of 96 kB"),
    Case("text_as_wav", lambda d: _write(d / "notes.wav", b"this is not audio, just a text file\n" * 50), "fail",
         "not a readable audio file", "text file named .wav"),
    Case("newline_name_text", lambda d: _write(d / "bad\nname.wav", b"plain text\n" * 50), "fail",
         "not a readable audio file", "text file named 'bad<newline>name.wav'"),
    Case("one_sample", lambda d: _sf(d / "one_sample.wav", np.array([0.5], np.float32)), "fail", "too short",
         "WAV of a single sample"),
    Case("silence", lambda d: _sf(d / "silence.wav", np.zeros(3 * SR, np.float32)), "fail", "silence",
         "3 s of digital silence"),
    Case("dc", lambda d: _sf(d / "dc.wav", np.full(3 * SR, 0.25, np.float32)), "fail", "constant",
         "3 s of constant 0.25 (DC)"),
    Case("nan_float", lambda d: _sf(d / "nan.wav", _with(tune(13, 3.0), 1000, np.nan), subtype="FLOAT"), "fail",
         "nan or infinite", "float32 WAV with a NaN sample"),
    Case("inf_float", lambda d: _sf(d / "inf.wav", _with(tune(14, 3.0), 1000, np.inf), subtype="FLOAT"), "fail",
         "nan or infinite", "float32 WAV with an inf sample"),
    Case("unreadable", lambda d: _unreadable(d / "locked.wav"), "fail", "permission denied", "chmod 000 WAV"),
    Case("big_junk", lambda d: _big(d / "big_junk.wav", b"JUNK" * 16 + os.urandom(64)), "fail",
         "not a readable audio file", "2 GiB sparse file, junk header, named .wav"),
    Case("big_riff_no_data", lambda d: _big(d / "big_riff.wav", _RIFF_HEAD), "fail", "corrupt wav",
         "2 GiB sparse file, WAV header without data chunk"),
    Case("fifo", lambda d: _fifo(d / "pipe.wav"), "fail", "fifo|regular file", "named pipe (FIFO) named .wav"),
    Case("dev_zero", lambda d: _symlink(d / "zero.wav", "/dev/zero"), "fail", "device|regular file",
         "symlink to /dev/zero named .wav"),
    Case("symlink_self_loop", lambda d: _symlink(d / "loop.wav", d / "loop.wav"), "fail", "symbolic links|loop",
         "symlink pointing at itself"),
    Case("non_utf8_name", lambda d: _bytes_name(d, b"caf\xe9.wav", _wav_bytes(tune(15, 3.0))), "fail", "utf-8",
         "valid WAV, a Latin-1 byte in its name"),
]

GOOD = [
    Case("wav_named_mp3", lambda d: _write(d / "really_a_wav.mp3", _wav_bytes(tune(20, 4.0))), "index",
         what="WAV named .mp3"),
    Case("mp3_named_wav", lambda d: _write(d / "really_an_mp3.wav", _wav_bytes(tune(21, 4.0), format="MP3")), "index",
         what="MP3 named .wav"),
    Case("vorbis_in_wav", lambda d: _vorbis_in_wav(d / "vorbis_in_riff.wav", tune(22, 4.0)), "index",
         what="RIFF/WAVE holding Ogg Vorbis (tag 0x674f)"),
    Case("clipped", lambda d: _sf(d / "clipped.wav", np.clip(8 * tune(23, 4.0), -1, 1)), "index",
         what="hard-clipped (x8) PCM16"),
    Case("sr_8k", lambda d: _sf(d / "sr8k.wav", _resampled(tune(24, 4.0), 8000), 8000), "index", what="8 kHz"),
    Case("sr_192k", lambda d: _sf(d / "sr192k.wav", _resampled(tune(25, 4.0), 192000), 192000), "index",
         what="192 kHz"),
    Case("six_channels", lambda d: _sf(d / "six.wav", np.stack([tune(26, 4.0) * (0.5 + c / 10) for c in range(6)], 1)),
         "index", what="6 channels"),
    Case("unicode_name", lambda d: _sf(d / "Café – 東京 ♫.wav", tune(27, 4.0)), "index", what="unicode name"),
    Case("space_name", lambda d: _sf(d / "my song (live).wav", tune(28, 4.0)), "index", what="spaces in name"),
    Case("newline_name", lambda d: _sf(d / "two\nlines.wav", tune(29, 4.0)), "index", what="newline in name"),
    Case("loud_float", lambda d: _sf(d / "loud.wav", 1e20 * tune(30, 4.0), subtype="FLOAT"), "index",
         what="float32 WAV at peak 8e19 (+398 dBFS)"),
    Case("dc_offset_tune", lambda d: _sf(d / "dc_offset.wav", 0.1 * tune(31, 4.0) + 0.5), "index",
         what="tune on a 0.5 DC offset"),
    Case("short", lambda d: _sf(d / "short.wav", tune(12, 0.3)), "index", what="0.3 s WAV (window is 1.04 s): padded",
         seconds=0.3),
    Case("click", lambda d: _sf(d / "click.wav", tune(13, 0.05)), "index", what="a 50 ms click: padded", seconds=0.05),
]

CASES = {c.name: c for c in BAD + GOOD}
