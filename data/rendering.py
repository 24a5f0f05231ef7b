"""Rendering sounds from MIDI notes and SoundFonts, shared by training data and benchmarks.

Training data (``data/render.py``, ``data/kinds.py``) and the benchmark sets
(``benchmarks/sound_sets.py``) render through this one module, so a change of synthesiser options,
trimming or normalisation reaches both. Everything here is a pure function on arrays or a thin
shell over one external program; no module-level state is changed by any caller (a caller keeps
its own ``{name: Synth}``).

- finishing sounds: :func:`to_mono`, :func:`trim_silence`, :func:`fade_out`,
  :func:`peak_normalise`, :func:`pad_to`, :func:`finish_clip` (float32 samples, rates in Hz,
  levels in dB);
- General MIDI tables: :data:`DRUM_NOTES`, :data:`GM_SFX`, :data:`GS_SFX`;
- MIDI: :func:`write_midi` (a format-0 file from ``(time_s, message)`` pairs), :class:`Item`
  and :func:`layout` (many short sounds in one file);
- SoundFonts: :func:`soundfont_presets` (.sf2 and .sf3: names and sample hashes),
  :func:`timidity_programs` (what a timidity config defines);
- synthesisers: :func:`fluidsynth_render`, :func:`timidity_render`, :class:`Synth`,
  :func:`render_midi`, :func:`render_items`.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from system import require_debian_package

#: peak level of finished sounds, dB full scale
PEAK_DBFS = -1.0
#: a sound whose absolute peak is below this (linear, full scale = 1) counts as silent
SILENT_PEAK = 1e-4


# ---------------------------------------------------------------------------------------------
# finishing sounds
# ---------------------------------------------------------------------------------------------


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Channels averaged: ``(n,)`` or ``(n, channels)`` float -> float32 ``(n,)``."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def is_silent(y: np.ndarray, floor: float = SILENT_PEAK) -> bool:
    """Whether ``y`` is empty or its absolute peak (linear) is below ``floor``."""
    return (float(np.max(np.abs(y))) if y.size else 0.0) < floor


def trim_silence(audio: np.ndarray, sr: int, keep_s: float = 0.5, threshold_db: float = -60.0, *,
                 tail_keep_s: float | None = None, tail_threshold_db: float | None = None) -> np.ndarray:
    """Leading and trailing silence cut, keeping ``keep_s`` seconds of it at each end.

    Samples quieter than ``threshold_db`` (dB re the absolute peak) are silence. The end may
    have its own rule: ``tail_keep_s`` seconds kept after the last sample above
    ``tail_threshold_db`` (default: the same as the start). ``sr`` in Hz. Returns a view of
    ``audio`` (empty when it is all zeros).
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0.0:
        return audio[:0]
    tail_keep_s = keep_s if tail_keep_s is None else tail_keep_s
    tail_threshold_db = threshold_db if tail_threshold_db is None else tail_threshold_db
    a = np.abs(audio)
    first = int(np.argmax(a > peak * 10 ** (threshold_db / 20)))
    last = len(a) - 1 - int(np.argmax(a[::-1] > peak * 10 ** (tail_threshold_db / 20)))
    start = max(0, first - int(round(keep_s * sr)))
    end = min(audio.size, last + 1 + int(round(tail_keep_s * sr)))
    return audio[start:end]


def fade_out(y: np.ndarray, sr: int, seconds: float = 0.02) -> np.ndarray:
    """``y`` (float32) with its last ``seconds`` faded linearly to 0, in place; returns ``y``."""
    n = min(len(y), int(seconds * sr))
    y[len(y) - n :] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return y


def peak_normalise(audio: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    """``audio`` scaled so that its absolute peak is ``peak_dbfs`` dB full scale (float32);
    unchanged when silent."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0.0:
        return audio
    return (audio * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def pad_to(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` followed by silence up to ``n`` samples (unchanged when it is longer), float32."""
    return np.pad(y, (0, max(0, n - len(y)))).astype(np.float32)


def finish_clip(y: np.ndarray, sr: int, *, lead_db: float = -50.0, tail_db: float = -60.0,
                max_s: float | None = None, peak_dbfs: float = PEAK_DBFS) -> np.ndarray | None:
    """A short sound made ready to write: start trimmed to 10 ms before the first sample above
    ``lead_db``, end to 50 ms after the last above ``tail_db`` (dB re peak), cut to ``max_s``
    seconds, 20 ms fade-out, peak at ``peak_dbfs``. ``sr`` in Hz; float32, or None if silent."""
    y = np.asarray(y, dtype=np.float32)
    if is_silent(y):
        return None
    y = trim_silence(y, sr, 0.01, lead_db, tail_keep_s=0.05, tail_threshold_db=tail_db).copy()
    if max_s is not None:
        y = y[: int(max_s * sr)]
    y = fade_out(y, sr, 0.02)
    return None if not np.any(y) else peak_normalise(y, peak_dbfs)


# ---------------------------------------------------------------------------------------------
# General MIDI tables
# ---------------------------------------------------------------------------------------------

#: drum kind -> GM drum-kit notes (channel 10)
DRUM_NOTES = {
    "kick": [35, 36],
    "snare": [38, 40],
    "hihat": [42, 44, 46],
    "tom": [41, 43, 45, 47, 48, 50],
    "clap": [39],
    "cymbal": [49, 51, 52, 55, 57, 59],
    "shaker": [69, 70],
    "rim": [37],
}
#: GM bank-0 SFX programs -> category
GM_SFX = {122: "water", 123: "bird", 124: "telephone", 125: "aircraft", 126: "applause", 127: "explosion"}
#: GS SFX (bank, program) -> category (sf_GMbank and FluidR3_GS have them)
GS_SFX = {
    (1, 122): "water",
    (4, 122): "water",
    (5, 122): "water",
    (2, 122): "thunder",
    (3, 122): "wind",
    (1, 123): "animal",
    (3, 123): "bird",
    (1, 124): "telephone",
    (1, 125): "car",
    (2, 125): "car",
    (3, 125): "car",
    (4, 125): "crash",
    (6, 125): "train",
    (7, 125): "aircraft",
    (3, 127): "explosion",
    (1, 127): "explosion",
}


# ---------------------------------------------------------------------------------------------
# MIDI: a format-0 writer; many items laid out one after the other
# ---------------------------------------------------------------------------------------------


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: Path, events: list[tuple[float, bytes]], tpq: int = 960) -> None:
    """A standard MIDI file (format 0, 120 bpm, ``tpq`` ticks a quarter note) from
    ``(time_s, message bytes)`` pairs; at one time, note-offs come before controllers, program
    changes and note-ons."""
    order = {0x80: 0, 0xB0: 1, 0xC0: 2, 0x90: 3}
    events = sorted(events, key=lambda e: (e[0], order.get(e[1][0] & 0xF0, 4)))
    body, last = bytearray(b"\x00\xff\x51\x03" + (500000).to_bytes(3, "big")), 0
    for t, msg in events:
        tick = round(t * 2 * tpq)
        body += _vlq(tick - last) + msg
        last = tick
    body += b"\x00\xff\x2f\x00"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq) + b"MTrk" + struct.pack(">I", len(body)) + body)


@dataclass
class Item:
    """One sound to synthesise: notes ``(onset_s, dur_s, pitch, velocity)`` on one channel."""

    key: str
    label: str
    notes: list
    bank: int = 0  #: 128 = drum kit (channel 10, program = kit)
    program: int = 0
    tail_s: float = 0.5  #: seconds kept after the last note-off (release)
    info: dict = field(default_factory=dict)

    @property
    def length_s(self) -> float:
        return max(onset + dur for onset, dur, *_ in self.notes) + self.tail_s


#: seconds before each item's first note and of silence after its end
PRE_S, GAP_S = 0.3, 1.0


def layout(items: list[Item]) -> tuple[list[tuple[float, bytes]], list[tuple[float, float]]]:
    """MIDI events of all items in sequence and each item's ``(start_s, end_s)`` in the render."""
    events, spans, t = [], [], 0.0
    for it in items:
        ch = 9 if it.bank == 128 else 0
        if ch == 0:
            events.append((t, bytes([0xB0, 0, it.bank])))
            events.append((t, bytes([0xB0, 32, 0])))
        events.append((t, bytes([0xC0 | ch, it.program])))
        events.append((t, bytes([0xB0 | ch, 7, 100])))
        start = t + PRE_S
        for onset, dur, pitch, vel in it.notes:
            events.append((start + onset, bytes([0x90 | ch, pitch, vel])))
            events.append((start + onset + dur, bytes([0x80 | ch, pitch, 0])))
        end = start + it.length_s
        events.append((end + 0.02, bytes([0xB0 | ch, 120, 0])))  # all sound off
        events.append((end + 0.02, bytes([0xB0 | ch, 123, 0])))
        spans.append((start, end))
        t = end + GAP_S
    events.append((t, bytes([0xB0, 7, 100])))
    return events, spans


# ---------------------------------------------------------------------------------------------
# SoundFonts and timidity configs
# ---------------------------------------------------------------------------------------------


def _riff_chunks(data: bytes, start: int, end: int):
    """``(id, data offset, size)`` of the RIFF chunks in ``data[start:end]``. A chunk of odd size
    is followed by a pad byte (0) in .sf2 files; .sf3 writers leave it out, so the next chunk
    starts right after a chunk whose next byte is not 0."""
    i = start
    while i + 8 <= end:
        cid, size = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
        yield cid, i + 8, size
        nxt = i + 8 + size
        i = nxt + 1 if size & 1 and nxt < end and data[nxt] == 0 else nxt


def soundfont_presets(path: Path) -> dict[tuple[int, int], tuple[str, set[str]]]:
    """``(bank, program) -> (preset name, sha1 prefixes of the samples it plays)`` of a .sf2 or
    .sf3 SoundFont (bank 128: drum kits). A sample's hash is of its stored bytes (16-bit PCM, or
    the Ogg Vorbis stream of an .sf3), so equal hashes mean byte-identical samples."""
    data = Path(path).read_bytes()
    ck = {}
    for cid, off, size in _riff_chunks(data, 12, len(data)):
        if cid == b"LIST":
            for c2, o2, s2 in _riff_chunks(data, off + 4, off + size):
                ck[c2] = (o2, s2)

    def recs(name: bytes, size: int) -> list[bytes]:
        o, s = ck[name]
        return [data[o + size * k : o + size * (k + 1)] for k in range(s // size)]

    phdr, pbag, pgen = recs(b"phdr", 38), recs(b"pbag", 4), recs(b"pgen", 4)
    inst, ibag, igen, shdr = recs(b"inst", 22), recs(b"ibag", 4), recs(b"igen", 4), recs(b"shdr", 46)
    smpl = ck[b"smpl"][0]
    u16 = lambda b, o=0: struct.unpack_from("<H", b, o)[0]  # noqa: E731

    def sample_hash(i: int) -> str:
        start, end = struct.unpack_from("<II", shdr[i], 20)
        width = 1 if u16(shdr[i], 44) & 0x10 else 2  # 0x10: compressed (sf3), offsets in bytes
        return hashlib.sha1(data[smpl + width * start : smpl + width * end]).hexdigest()[:12]

    def inst_samples(ii: int) -> set[str]:
        out = set()
        for b in range(u16(inst[ii], 20), u16(inst[ii + 1], 20)):
            for g in range(u16(ibag[b]), u16(ibag[b + 1])):
                op, amount = struct.unpack("<HH", igen[g])
                if op == 53:  # sampleID
                    out.add(sample_hash(amount))
        return out

    presets = {}
    for p in range(len(phdr) - 1):
        name = phdr[p][:20].split(b"\0")[0].decode("latin-1")
        prog, bank = struct.unpack_from("<HH", phdr[p], 20)
        samples: set[str] = set()
        for b in range(u16(phdr[p], 24), u16(phdr[p + 1], 24)):
            for g in range(u16(pbag[b]), u16(pbag[b + 1])):
                op, amount = struct.unpack("<HH", pgen[g])
                if op == 41:  # instrument
                    samples |= inst_samples(amount)
        presets[(bank, prog)] = (name, samples)
    return presets


def timidity_programs(cfg: Path) -> tuple[set[int], set[int]]:
    """Programs of bank 0 and notes of drumset 0 that a timidity config (e.g. freepats.cfg) defines."""
    programs, drums, section = set(), set(), None
    for line in Path(cfg).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in ("bank", "drumset"):
            section = (words[0], int(words[1]))
        elif words[0].isdigit() and section == ("bank", 0):
            programs.add(int(words[0]))
        elif words[0].isdigit() and section == ("drumset", 0):
            drums.add(int(words[0]))
    return programs, drums


# ---------------------------------------------------------------------------------------------
# synthesisers
# ---------------------------------------------------------------------------------------------


def fluidsynth_render(midi: Path, wav: Path, soundfont: Path | str, sr: int, *, gain: float = 0.5,
                      reverb: bool = False, chorus: bool = False, timeout_s: float = 900) -> None:
    """``midi`` rendered into ``wav`` (stereo 16-bit at ``sr`` Hz) by the fluidsynth command
    with ``soundfont`` (.sf2 or .sf3), ``gain`` (fluidsynth's -g, linear), its reverb and chorus
    on or off. Raises RuntimeError when fluidsynth fails or writes no audio."""
    cmd = ["fluidsynth", "-ni"] + ([] if reverb else ["-R", "0"]) + ([] if chorus else ["-C", "0"])
    cmd += ["-g", str(gain), "-F", str(wav), "-r", str(sr), str(soundfont), str(midi)]
    _run_renderer(cmd, wav, timeout_s)


def timidity_render(midi: Path, wav: Path, cfg: Path | str, sr: int, *, timeout_s: float = 900) -> None:
    """``midi`` rendered into ``wav`` (mono 16-bit at ``sr`` Hz) by timidity with the config
    ``cfg``, reverb and chorus off, silence kept. timidity reads /etc/timidity/timidity.cfg
    first: programs ``cfg`` does not define are played by that config's instruments."""
    cmd = ["timidity", "-c", str(cfg), "--preserve-silence", "-EFreverb=d", "-EFchorus=d", "-Ow",
           "--output-mono", "-s", str(sr), "-o", str(wav), str(midi)]
    _run_renderer(cmd, wav, timeout_s)


def _run_renderer(cmd: list[str], wav: Path, timeout_s: float) -> None:
    proc = subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL, timeout=timeout_s)
    if proc.returncode != 0 or not wav.exists() or wav.stat().st_size < 100:
        tail = proc.stderr.decode(errors="replace").strip()[-300:]
        raise RuntimeError(f"{cmd[0]} failed (rc={proc.returncode}): {tail}")


def read_mono(wav: Path, sr: int) -> np.ndarray:
    """A WAV file as mono float32 (channels averaged); it must be at ``sr`` Hz."""
    y, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if file_sr != sr:
        raise RuntimeError(f"{wav}: {file_sr} Hz, expected {sr}")
    return y.mean(axis=1)


@dataclass(frozen=True)
class Synth:
    """One synthesiser: a SoundFont played by fluidsynth, or a timidity config."""

    name: str
    renderer: str  #: "fluidsynth" or "timidity"
    file: Path  #: the SoundFont (.sf2/.sf3) or timidity config
    package: str  #: the Debian package that provides ``file``
    group: str  #: unit of independence (synths sharing samples share a group)
    fluid: bool = False  #: a Fluid-family SoundFont
    #: its ``(bank, program)`` presets; None: read from ``file`` when first needed
    presets: frozenset | None = None

    def has(self, bank: int, program: int, note: int | None = None) -> bool:
        """Whether it plays this preset (bank 128 = drum kit ``program``; ``note``: a drum note,
        checked for timidity kits, whose notes the config lists one by one)."""
        if self.renderer == "timidity":
            programs, drums = _timidity_programs_cached(Path(self.file))
            if bank == 128:
                return program == 0 and (note is None or note in drums)
            return bank == 0 and program in programs
        presets = self.presets if self.presets is not None else _preset_keys_cached(Path(self.file))
        return (bank, program) in presets

    def require(self) -> None:
        """Raise :class:`system.MissingDebianPackage` unless its file and renderer are installed."""
        require_debian_package(self.package, self.file)
        require_debian_package(self.renderer, Path("/usr/bin") / self.renderer)


@functools.lru_cache(maxsize=None)
def _preset_keys_cached(path: Path) -> frozenset:
    return frozenset(soundfont_presets(path))


@functools.lru_cache(maxsize=None)
def _timidity_programs_cached(cfg: Path) -> tuple[set[int], set[int]]:
    return timidity_programs(cfg)


def render_midi(synth: Synth, midi: Path, wav: Path, sr: int) -> np.ndarray:
    """``midi`` played by ``synth`` (no reverb, no chorus; fluidsynth gain 0.5) as mono float32 at ``sr`` Hz."""
    if synth.renderer == "timidity":
        timidity_render(midi, wav, synth.file, sr)
    else:
        fluidsynth_render(midi, wav, synth.file, sr, gain=0.5, reverb=False, chorus=False)
    return read_mono(wav, sr)


def render_items(synth: Synth, items: list[Item], tmp: Path, sr: int) -> list[np.ndarray | None]:
    """Each item's mono float32 waveform at ``sr`` Hz, cut from one render of all items (from
    50 ms before its first note to its end), or None where ``synth`` lacks its preset (for a
    timidity kit: any of its drum notes) or the cut is silent. ``tmp``: a scratch folder."""
    ok = [it for it in items if all(synth.has(it.bank, it.program, n[2] if it.bank == 128 else None) for n in it.notes)]
    if not ok:
        return [None] * len(items)
    events, spans = layout(ok)
    midi, wav = tmp / f"{synth.name}.mid", tmp / f"{synth.name}.wav"
    write_midi(midi, events)
    y = render_midi(synth, midi, wav, sr)
    wav.unlink()
    cut = {}
    for it, (a, b) in zip(ok, spans):
        seg = y[max(0, int((a - 0.05) * sr)) : int(b * sr)]
        cut[it.key] = None if is_silent(seg) else seg
    return [cut.get(it.key) for it in items]
