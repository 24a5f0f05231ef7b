"""Decode any audio file (or an array) to a mono float32 waveform at one sample rate.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, opus and mp3; PyAV (FFmpeg) reads the rest
(m4a/aac, wma, ...). Every failure is a :class:`~search_engine.errors.DecodeError` that names the
file: nothing here ever returns an empty or silent signal.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import DecodeError

#: file name endings the indexer treats as audio when walking folders
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .m4a .aac .mp4 .aif .aiff .aifc .au .caf .w64 .wma .webm .mka".split()
)

#: below this peak amplitude (about -100 dBFS) a signal counts as pure silence
SILENCE_PEAK = 1e-5

_BLOCK_FRAMES = 1 << 18


def load(path: str | os.PathLike, *, sr: int, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode a file to float32 at ``sr`` Hz.

    Parameters
    ----------
    path : path-like
        Any audio file soundfile or PyAV can read.
    sr : int > 0
        Target sample rate in Hz.
    mono : bool
        Only ``True`` is supported: channels are averaged.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        The waveform, -1..1 full scale, ``n >= 1``.
    sr : int
        The sample rate of ``y`` in Hz (equal to the argument).

    Raises
    ------
    DecodeError
        Missing, empty, not audio, truncated, zero-length, non-finite or silent.
    """
    if not mono:
        raise ValueError("only mono decoding is supported")
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DecodeError(path, f"cannot read: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise DecodeError(path, "is a directory, not an audio file")
    if size == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise DecodeError(path, "permission denied")
    try:
        y = _load_soundfile(path, sr)
    except DecodeError:
        raise
    except Exception as sf_exc:  # libsndfile does not know the format: try FFmpeg
        try:
            y = _load_pyav(path, sr)
        except DecodeError:
            raise
        except Exception as av_exc:
            raise DecodeError(path, f"not a readable audio file ({_short(sf_exc)}; {_short(av_exc)})") from av_exc
    return check_waveform(y, source=path), sr


def to_mono(y: np.ndarray, sr_in: int, *, sr: int, source: object = "<waveform>") -> np.ndarray:
    """Convert an array already in memory to a checked mono float32 waveform at ``sr`` Hz.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)]
        Samples; integer types are scaled to -1..1 full scale.
    sr_in : int > 0
        Sample rate of ``y`` in Hz.
    sr : int > 0
        Target sample rate in Hz.
    """
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise DecodeError(source, f"expected a 1-D or (samples, channels) array, got shape {y.shape}")
    if sr_in <= 0:
        raise DecodeError(source, f"sample rate must be > 0 Hz, got {sr_in}")
    if np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.float32) / float(np.iinfo(y.dtype).max)
    y = y.astype(np.float32, copy=False)
    if y.ndim == 2:
        y = y.mean(axis=1, dtype=np.float32)
    if y.size == 0:
        raise DecodeError(source, "zero-length audio (no samples)")
    if not np.isfinite(y).all():
        raise DecodeError(source, "contains NaN or infinite samples")
    if sr_in != sr:
        y = soxr.resample(y, sr_in, sr).astype(np.float32, copy=False)
    return check_waveform(y, source=source)


def check_waveform(y: np.ndarray, *, source: object) -> np.ndarray:
    """Raise :class:`DecodeError` unless ``y`` is a non-empty, finite, non-silent 1-D float array."""
    if y.size == 0:
        raise DecodeError(source, "zero-length audio (no samples)")
    if not np.isfinite(y).all():
        raise DecodeError(source, "contains NaN or infinite samples")
    peak = float(np.max(np.abs(y - np.mean(y))))
    if peak < SILENCE_PEAK:
        raise DecodeError(source, "pure silence (peak below -100 dBFS)")
    return y


def _load_soundfile(path: Path, sr: int) -> np.ndarray:
    _check_riff_size(path)
    with sf.SoundFile(path) as f:
        declared, sr_in = f.frames, f.samplerate
        resampler = soxr.ResampleStream(sr_in, sr, 1, dtype="float32") if sr_in != sr else None
        parts, read = [], 0
        while True:
            try:
                block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except Exception as exc:
                raise DecodeError(path, f"corrupt or truncated after {read / sr_in:.2f} s ({_short(exc)})") from exc
            last = len(block) < _BLOCK_FRAMES
            read += len(block)
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if not np.isfinite(mono).all():
                raise DecodeError(path, "contains NaN or infinite samples")
            parts.append(resampler.resample_chunk(mono, last=last) if resampler else mono.copy())
            if last:
                break
    if read == 0:
        raise DecodeError(path, "zero-length audio (no samples)")
    if 0 < declared < 0x7FFFFFFFFFFF and read < 0.98 * declared:
        raise DecodeError(path, f"truncated: header promises {declared / sr_in:.2f} s, data holds {read / sr_in:.2f} s")
    return np.concatenate(parts)


def _check_riff_size(path: Path) -> None:
    """A WAV whose data chunk promises more bytes than the file holds is truncated.

    libsndfile silently shortens such files; we refuse them instead.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        endian = "<" if head[:4] == b"RIFF" else ">"
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, clen = struct.unpack(endian + "4sI", f.read(8))
            if cid == b"data":
                if clen not in (0, 0xFFFFFFFF) and pos + 8 + clen > size:
                    raise DecodeError(
                        path, f"truncated: data chunk promises {clen} bytes, file holds {size - pos - 8}"
                    )
                return
            pos += 8 + clen + (clen & 1)
        raise DecodeError(path, "truncated: WAV header without a data chunk")


def _load_pyav(path: Path, sr: int) -> np.ndarray:
    import av  # imported here: only needed for formats libsndfile lacks

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise RuntimeError(_short(exc)) from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise DecodeError(path, "no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        parts = []
        try:
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not parts:
                raise DecodeError(path, f"corrupt audio stream ({_short(exc)})") from exc
            raise DecodeError(path, f"corrupt or truncated audio stream ({_short(exc)})") from exc
    if not parts:
        raise DecodeError(path, "zero-length audio (no samples)")
    return np.concatenate(parts).astype(np.float32, copy=False)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def find_audio_files(paths, *, extensions=AUDIO_EXTENSIONS):
    """Expand files and folders (recursively, sorted, symlink loops skipped) to audio file paths.

    Yields ``Path`` objects; a path given explicitly is yielded whatever its extension, so that a bad
    file named on the command line is reported rather than silently ignored. A missing path is
    yielded too (decoding it then reports the problem).
    """
    for p in paths:
        p = Path(p).expanduser()
        if not p.is_dir():
            yield p
            continue
        seen: set[tuple[int, int]] = set()
        for root, dirs, files in os.walk(p, followlinks=True):
            st = os.stat(root)
            if (st.st_dev, st.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            dirs.sort()
            for name in sorted(files):
                if Path(name).suffix.lower() in extensions:
                    yield Path(root) / name
