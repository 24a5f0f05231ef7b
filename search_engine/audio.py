"""Decode any audio file (or an array) to a mono float32 waveform at one sample rate.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, opus and mp3; PyAV (FFmpeg) reads the rest
(m4a/aac, wma, ...). Every failure is a :class:`~search_engine.errors.DecodeError` that names the
file: nothing here ever returns an empty, silent or non-finite signal.

The file's contents decide the format, never its name: a WAV named ``.mp3`` decodes as WAV.
"""

from __future__ import annotations

import io
import math
import os
import stat
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

#: float files louder than this (+80 dBFS) are scaled down to full scale: the features do not
#: depend on gain, and their power would overflow float32
MAX_PEAK = 1e4

#: accepted native sample rates (Hz); outside, resampling makes no sense (or no memory suffices)
MIN_RATE_HZ, MAX_RATE_HZ = 1000, 1_000_000

_BLOCK_FRAMES = 1 << 18
_MAX_PREALLOC = 1 << 28
#: FFmpeg may read at most this much of a file before it finds an audio frame (a RIFF/AIFF header
#: over gigabytes of zeros would otherwise be walked 8 bytes at a time, for minutes)
_PROBE_BYTES = 64 << 20
#: a WAV header has a handful of chunks; a walk longer than this is garbage
_MAX_RIFF_CHUNKS = 4096
#: WAV format tags of the Vorbis ACM codec: the data chunk holds an Ogg Vorbis stream
_VORBIS_WAV_TAGS = frozenset({0x674F, 0x6750, 0x6751, 0x676F, 0x6770, 0x6771})


def load(path: str | os.PathLike, *, sr: int, mono: bool = True) -> tuple[np.ndarray, int]:
    """Decode a file to float32 at ``sr`` Hz.

    Parameters
    ----------
    path : path-like
        Any audio file soundfile or PyAV can read (the format is detected from the contents).
    sr : int > 0
        Target sample rate in Hz.
    mono : bool
        Only ``True`` is supported: channels are averaged.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        The waveform, finite, ``n >= 2``; -1..1 full scale (float files louder than
        :data:`MAX_PEAK` are scaled down to peak 1).
    sr : int
        The sample rate of ``y`` in Hz (equal to the argument).

    Raises
    ------
    DecodeError
        Missing, not a regular file, empty, unreadable, not audio, truncated, zero-length,
        non-finite, silent or constant (DC).
    """
    if not mono:
        raise ValueError("only mono decoding is supported")
    path = Path(path)
    riff = _check_file(path)
    if riff is not None and riff[0] in _VORBIS_WAV_TAGS:
        return check_waveform(_load_vorbis_wav(path, sr, riff), source=path), sr
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
            raise DecodeError(path, _unreadable(path, sf_exc, av_exc)) from av_exc
    return check_waveform(y, source=path), sr


def excerpt(y: np.ndarray, start_s: float, seconds: float, *, sr: int) -> np.ndarray:
    """``seconds`` of waveform ``y`` (at ``sr`` Hz) from ``start_s``; silence (zeros) where that
    lies outside ``y``. ``[round(seconds * sr)]`` float32."""
    a, n = int(round(start_s * sr)), max(0, int(round(seconds * sr)))
    out = np.zeros(n, dtype=np.float32)
    lo, hi = max(a, 0), min(a + n, len(y))
    if hi > lo:
        out[lo - a: hi - a] = y[lo:hi]
    return out


def load_excerpt(path: str | os.PathLike, start_s: float, seconds: float, *, sr: int) -> np.ndarray:
    """Decode ``seconds`` of a file from ``start_s`` to mono float32 at ``sr`` Hz.

    Seeks where the format allows (wav, flac, ogg, mp3 through soundfile: milliseconds whatever
    the file's length); other formats are decoded whole (:func:`load`) and cut.

    Parameters
    ----------
    path : path-like
        An audio file :func:`load` can read.
    start_s, seconds : float
        Where the excerpt starts in the file and how long it is (seconds); ``start_s`` may be
        negative and the excerpt may run past the file's end: silence (zeros) fills what lies outside.
    sr : int > 0
        Target sample rate in Hz.

    Returns
    -------
    y : np.ndarray [shape=(round(seconds * sr),), dtype=float32]

    Raises
    ------
    DecodeError
        The file is missing or cannot be read.
    """
    n = max(0, int(round(seconds * sr)))
    out = np.zeros(n, dtype=np.float32)
    path = Path(path)
    try:
        with sf.SoundFile(path) as f:
            sr_in = f.samplerate
            _check_rate(sr_in, path)
            a = int(math.floor(start_s * sr_in))
            first = max(a, 0)
            want = int(math.ceil(seconds * sr_in)) - (first - a)
            if want <= 0 or (f.frames > 0 and first >= f.frames):
                return out
            f.seek(first)
            block = f.read(want, dtype="float32", always_2d=True)
        mono = _mix_down(block) if block.shape[1] > 1 else block[:, 0]
        lead = first - a
    except DecodeError:
        raise
    except Exception:  # not a format soundfile seeks in: decode it all
        return excerpt(load(path, sr=sr)[0], start_s, seconds, sr=sr)
    if sr_in != sr:
        mono = soxr.resample(mono, sr_in, sr).astype(np.float32)
        lead = int(round(lead * sr / sr_in))
    mono = np.nan_to_num(mono[: max(0, n - lead)], nan=0.0, posinf=0.0, neginf=0.0)
    out[lead: lead + len(mono)] = mono
    return out


def probe(path: str | os.PathLike, *, decoders: bool = True) -> None:
    """Raise :class:`DecodeError` if ``path`` clearly cannot be indexed, reading only its header.

    Cheap (milliseconds, whatever the file size) and never blocks: call it before hashing or
    decoding a file. Checks that it is a readable, non-empty regular file (not a folder, FIFO or
    device) whose name the catalog can store (valid UTF-8), that a WAV's chunks are whole, and
    (``decoders``) that libsndfile or FFmpeg recognises an audio stream in it. A file that passes
    may still fail in :func:`load` (corrupt data, silence, ...).
    """
    path = Path(path)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError(path, "file name is not valid UTF-8 (rename the file to index it)") from None
    riff = _check_file(path)
    if not decoders or (riff is not None and riff[0] in _VORBIS_WAV_TAGS):
        return
    try:
        with sf.SoundFile(path):
            return
    except Exception as sf_exc:
        raw = _GuardedFile(path)
        try:
            with _av_open(raw) as container:
                if not container.streams.audio:
                    raise DecodeError(path, "no audio stream")
        except DecodeError:
            raise
        except Exception as av_exc:
            raise DecodeError(path, _unreadable(path, sf_exc, av_exc, raw)) from av_exc
        finally:
            raw.close()


def load_clip(clip, *, sr: int) -> tuple[str, np.ndarray]:
    """A query clip as ``(name, mono float32 waveform at sr Hz)``.

    ``clip`` is a path, a ``(waveform, sample_rate)`` pair, or a 1-D waveform already at ``sr``.
    Raises :class:`DecodeError` as :func:`load` and :func:`to_mono` do.
    """
    if isinstance(clip, tuple):
        return "<waveform>", to_mono(np.asarray(clip[0]), int(clip[1]), sr=sr)
    if isinstance(clip, np.ndarray):
        return "<waveform>", to_mono(clip, sr, sr=sr)
    return str(clip), load(clip, sr=sr)[0]


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
    _check_rate(sr_in, source)
    if y.size == 0:
        raise DecodeError(source, "zero-length audio (no samples)")
    if np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.float32) / float(np.iinfo(y.dtype).max)
    elif not np.issubdtype(y.dtype, np.floating):
        raise DecodeError(source, f"expected integer or float samples, got {y.dtype}")
    hi, lo = float(np.max(y)), float(np.min(y))
    if not (math.isfinite(hi) and math.isfinite(lo)):
        raise DecodeError(source, "contains NaN or infinite samples")
    peak = max(hi, -lo)
    if peak > MAX_PEAK:  # scale before casting, so that float64 input beyond float32 stays finite
        y = y / peak
    y = y.astype(np.float32, copy=False)
    if y.ndim == 2:
        y = y.mean(axis=1, dtype=np.float64).astype(np.float32) if y.shape[1] > 1 else y[:, 0]
    if y.size >= 2:
        _check_level(float(np.max(y)), float(np.min(y)), float(np.mean(y, dtype=np.float64)), source)
    if sr_in != sr:
        y = soxr.resample(y, sr_in, sr).astype(np.float32, copy=False)
    return check_waveform(y, source=source)


def check_waveform(y: np.ndarray, *, source: object) -> np.ndarray:
    """``y`` if it is a usable 1-D float waveform, else :class:`DecodeError`.

    Usable: at least 2 samples, all finite, not silent (peak below :data:`SILENCE_PEAK`) and not
    constant. A waveform louder than :data:`MAX_PEAK` is returned scaled to peak 1. Needs no
    memory beyond ``y`` (a 3-hour file is checked in place).
    """
    if y.size == 0:
        raise DecodeError(source, "zero-length audio (no samples)")
    hi, lo = float(np.max(y)), float(np.min(y))
    if not (math.isfinite(hi) and math.isfinite(lo)):
        raise DecodeError(source, "contains NaN or infinite samples")
    if y.size < 2:
        raise DecodeError(source, "too short: a single sample")
    peak = max(hi, -lo)
    if peak > MAX_PEAK:
        y = (y * (1.0 / peak)).astype(np.float32, copy=False)
        hi, lo = hi / peak, lo / peak
    _check_level(hi, lo, float(np.mean(y, dtype=np.float64)), source)
    return y


def _check_level(hi: float, lo: float, mean: float, source: object) -> None:
    """Silence and DC, from the extremes and the mean of a signal (at its native rate: resampling
    a constant gives edge ripples that would pass for sound)."""
    if max(hi - mean, mean - lo) < SILENCE_PEAK * max(1.0, hi, -lo):
        if abs(mean) >= SILENCE_PEAK * max(1.0, hi, -lo):
            raise DecodeError(source, f"no sound: a constant signal (DC offset {mean:+.3g} full scale)")
        raise DecodeError(source, "pure silence (peak below -100 dBFS)")


def _check_file(path: Path) -> tuple[int, int, int] | None:
    """Everything that can be said without decoding: exists, regular, non-empty, readable, whole.

    Returns :func:`_check_riff`'s answer."""
    try:
        st = path.stat()
    except OSError as exc:
        raise DecodeError(path, f"cannot read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise DecodeError(path, "cannot read folder: permission denied")
        raise DecodeError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket"
        raise DecodeError(path, f"not a regular file ({kind})")
    if st.st_size == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise DecodeError(path, "permission denied")
    try:
        return _check_riff(path)
    except OSError as exc:
        raise DecodeError(path, f"cannot read: {exc.strerror or exc}") from exc


def _check_rate(rate: int, source: object) -> None:
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise DecodeError(source, f"sample rate {rate} Hz is out of range ({MIN_RATE_HZ}..{MAX_RATE_HZ} Hz)")


def _load_vorbis_wav(path: Path, sr: int, riff: tuple[int, int, int]) -> np.ndarray:
    """A WAV whose data chunk holds an Ogg Vorbis stream (format tags 0x674f..0x6771, written by
    the Vorbis ACM codec and by some music programs, e.g. older LMMS): decode the Ogg stream."""
    tag, offset, length = riff
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    try:
        return _load_soundfile(path, sr, source=io.BytesIO(data))
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(path, f"WAV holding Vorbis data (format tag {tag:#06x}) that cannot be decoded ({_short(exc, path)})") from exc


def _load_soundfile(path: Path, sr: int, *, source=None) -> np.ndarray:
    with sf.SoundFile(path if source is None else source) as f:
        declared, sr_in = f.frames, f.samplerate
        _check_rate(sr_in, path)
        y, read, (hi, lo, total) = _read_blocks(f, path, sr_in, sr, scale=1.0)
        peak = max(hi, -lo, 0.0)
        if peak > MAX_PEAK:  # a float file far beyond full scale: read again, scaled
            f.seek(0)
            y, read, _ = _read_blocks(f, path, sr_in, sr, scale=1.0 / peak)
            hi, lo, total = hi / peak, lo / peak, total / peak
    if read == 0:
        raise DecodeError(path, "zero-length audio (no samples)")
    if 0 < declared < 0x7FFFFFFFFFFF and read < 0.98 * declared:
        raise DecodeError(path, f"truncated: header promises {declared / sr_in:.2f} s, data holds {read / sr_in:.2f} s")
    if read < 2 or len(y) < 2:
        raise DecodeError(path, f"too short: {read} sample{'s' if read != 1 else ''} at {sr_in} Hz")
    _check_level(hi, lo, total / read, path)
    return y


def _read_blocks(f: sf.SoundFile, path: Path, sr_in: int, sr: int, *, scale: float) -> tuple[np.ndarray, int, tuple]:
    """Read, mix down and resample ``f`` block by block into one preallocated array.

    Returns ``(y, frames read, (max, min, sum) of the mixed-down input before scaling))``.
    """
    resampler = soxr.ResampleStream(sr_in, sr, 1, dtype="float32") if sr_in != sr else None
    ratio = sr / sr_in
    # untouched pages of an over-sized buffer cost no memory; the cap keeps a lying header
    # (a FLAC that declares 2**36 frames) from asking for more than exists
    expected = min(f.frames, _MAX_PREALLOC) if f.frames > 0 else _BLOCK_FRAMES
    out = np.empty(int(expected * ratio) + 64, dtype=np.float32)
    n = read = 0
    hi, lo, total = -math.inf, math.inf, 0.0
    while True:
        try:
            block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        except Exception as exc:
            raise DecodeError(path, f"corrupt or truncated after {read / sr_in:.2f} s ({_short(exc, path)})") from exc
        last = len(block) < _BLOCK_FRAMES
        read += len(block)
        if block.shape[1] > 1:
            mono = _mix_down(block)
        else:
            mono = block[:, 0]
        if len(mono):
            b_hi, b_lo = float(mono.max()), float(mono.min())
            if not (math.isfinite(b_hi) and math.isfinite(b_lo)):
                raise DecodeError(path, "contains NaN or infinite samples")
            hi, lo = max(hi, b_hi), min(lo, b_lo)
            total += float(np.sum(mono, dtype=np.float64))
            if scale != 1.0:
                mono = mono * np.float32(scale)
        part = resampler.resample_chunk(mono, last=last) if resampler else mono
        if n + len(part) > len(out):
            grown = np.empty(max(2 * len(out), n + len(part)), dtype=np.float32)
            grown[:n] = out[:n]
            out = grown
        out[n : n + len(part)] = part
        n += len(part)
        if last:
            break
    return out[:n], read, (hi, lo, total)


def _mix_down(block: np.ndarray) -> np.ndarray:
    """The mean of a ``(frames, channels)`` float32 block's channels, as float32.

    A matrix-vector product (one BLAS call; numpy's mean along a short axis is 4x slower). Float
    channels loud enough to overflow float32 are averaged again in float64.
    """
    mono = block @ np.full(block.shape[1], 1.0 / block.shape[1], dtype=np.float32)
    if not np.isfinite(mono).all():
        mono = block.mean(axis=1, dtype=np.float64).astype(np.float32)
    return mono


def _check_riff(path: Path) -> tuple[int, int, int] | None:
    """Refuse a WAV whose chunk structure is broken, reading only its chunk headers.

    A data chunk that promises more bytes than the file holds means a truncated file (libsndfile
    would silently shorten it); garbage where a chunk header should be means a corrupt (or fake)
    header. Decoders would walk such garbage 8 bytes at a time, for minutes on a big file.

    Returns ``(format tag, data offset, data bytes)`` of a WAV, ``None`` for other files.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        size = os.fstat(f.fileno()).st_size
        pos, prev_odd, tag = 12, False, 0
        for _ in range(_MAX_RIFF_CHUNKS):
            if pos + 8 > size:
                break
            f.seek(pos)
            cid, clen = struct.unpack(endian + "4sI", f.read(8))
            if not _is_fourcc(cid):
                if prev_odd:  # some writers forget the pad byte after an odd-sized chunk
                    pos, prev_odd = pos - 1, False
                    continue
                raise DecodeError(path, f"corrupt WAV: no chunk header at byte {pos} (no 'data' chunk before it)")
            if cid == b"fmt " and clen >= 2:
                (tag,) = struct.unpack(endian + "H", f.read(2))
            if cid == b"data":
                if clen not in (0, 0xFFFFFFFF) and pos + 8 + clen > size:
                    raise DecodeError(path, f"truncated: data chunk promises {clen} bytes, file holds {size - pos - 8}")
                return tag, pos + 8, (size - pos - 8 if clen in (0, 0xFFFFFFFF) else clen)
            prev_odd = bool(clen & 1)
            pos += 8 + clen + (clen & 1)
        else:
            raise DecodeError(path, f"corrupt WAV: over {_MAX_RIFF_CHUNKS} chunks and no 'data' chunk")
        raise DecodeError(path, "truncated: WAV header without a data chunk")


def _is_fourcc(cid: bytes) -> bool:
    return all(32 <= b < 127 for b in cid) and cid != b"    "


class _GuardedFile(io.RawIOBase):
    """The file, for FFmpeg: reads end (EOF) after ``budget`` bytes until :meth:`disarm`."""

    def __init__(self, path: Path, budget: int = _PROBE_BYTES):
        self._f = open(path, "rb")
        self.budget, self.read_bytes, self.exceeded = budget, 0, False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.budget is not None and self.read_bytes >= self.budget:
            self.exceeded = True
            return 0
        n = self._f.readinto(buf)
        self.read_bytes += n or 0
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def disarm(self) -> None:
        self.budget = None

    def close(self) -> None:
        self._f.close()
        super().close()


def _av_open(raw: _GuardedFile):
    import av  # imported here: only needed for formats libsndfile lacks

    return av.open(raw, "r")


def _load_pyav(path: Path, sr: int) -> np.ndarray:
    import av

    raw = _GuardedFile(path)
    try:
        try:
            container = _av_open(raw)
        except Exception as exc:
            if raw.exceeded:
                raise DecodeError(path, f"not a readable audio file (no audio stream in the first {_PROBE_BYTES >> 20} MB)") from exc
            raise RuntimeError(_short(exc, path)) from exc
        with container:
            streams = container.streams.audio
            if not streams:
                raise DecodeError(path, "no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
            parts = []
            try:
                for frame in container.decode(streams[0]):
                    raw.disarm()
                    for out in resampler.resample(frame):
                        parts.append(out.to_ndarray().reshape(-1))
                for out in resampler.resample(None):
                    parts.append(out.to_ndarray().reshape(-1))
            except av.error.DecoderNotFoundError as exc:
                raise DecodeError(path, f"unsupported audio codec in a {container.format.name} file (no decoder for it)") from exc
            except av.error.FFmpegError as exc:
                if not parts:
                    raise DecodeError(path, f"corrupt audio stream ({_short(exc, path)})") from exc
                raise DecodeError(path, f"corrupt or truncated audio stream ({_short(exc, path)})") from exc
            if raw.exceeded and not parts:
                raise DecodeError(path, f"no audio frame in the first {_PROBE_BYTES >> 20} MB")
    finally:
        raw.close()
    if not parts:
        raise DecodeError(path, "zero-length audio (no samples)")
    return np.concatenate(parts).astype(np.float32, copy=False)


def _unreadable(path: Path, sf_exc: BaseException, av_exc: BaseException, raw: _GuardedFile | None = None) -> str:
    if raw is not None and raw.exceeded:
        return f"not a readable audio file (no audio stream in the first {_PROBE_BYTES >> 20} MB)"
    return f"not a readable audio file (libsndfile: {_short(sf_exc, path)}; FFmpeg: {_short(av_exc, path)})"


def _short(exc: BaseException, path: Path | None = None) -> str:
    """One short line from a decoder's exception, without the file name it repeats."""
    text = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc)
    text = str(text)
    if path is not None:
        for name in (repr(str(path)), str(path)):
            text = text.replace(name, "")
        text = text.replace("Error opening '': ", "").replace("Error opening : ", "")
    text = " ".join(text.split()).strip(" :;.'")
    return (text or type(exc).__name__)[:160]


def find_audio_files(paths, *, extensions=AUDIO_EXTENSIONS):
    """Expand files and folders (recursively, sorted, symlink loops skipped) to audio file paths.

    Inside a folder, hidden files and folders (names starting with ``.``: ``.git``, ``.Trash``, a
    tool's ``.tmp`` left by an interrupted run) are skipped, as most media tools do.

    Yields ``Path`` objects; a path given explicitly is yielded whatever its extension (hidden or
    not), so that a bad file named on the command line is reported rather than silently ignored.
    A missing path is yielded too (decoding it then reports the problem), and so is a subfolder
    that cannot be listed (permission denied), so that it is reported rather than silently skipped.
    """
    for p in paths:
        p = Path(p).expanduser()
        if not p.is_dir():
            yield p
            continue
        seen: set[tuple[int, int]] = set()
        unlisted: list[Path] = []

        def onerror(exc: OSError) -> None:
            if exc.filename is not None:
                unlisted.append(Path(os.fsdecode(exc.filename)))

        for root, dirs, files in os.walk(p, followlinks=True, onerror=onerror):
            yield from unlisted
            unlisted.clear()
            try:
                st = os.stat(root)
            except OSError:
                dirs[:] = []
                continue
            if (st.st_dev, st.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                    yield Path(root) / name
        yield from unlisted
