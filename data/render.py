#!/usr/bin/env python
"""Render deterministic audio data sets from offline, allowed sources.

Two sources are supported:

``music``
    Works from the music21 corpus, converted to MIDI with random General
    MIDI programs, a random tempo factor and (sometimes) a simple drum part,
    rendered with the ``fluidsynth`` command-line synthesiser and a given
    SoundFont.
``speech``
    Generated sentences spoken by ``espeak-ng`` with random voices,
    languages, variants, speeds and pitches.

Every output file is a mono, 16-bit PCM WAV at the requested sample rate.
Each output directory gets a ``manifest.json`` (list of dicts, one per file).
All randomness is derived from ``--seed`` (and, for music, from the corpus
path of the work), so runs are reproducible.

Examples
--------
::

    python data/render.py music --out /tmp/m --minutes 3 \\
        --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 --split train --seed 1
    python data/render.py speech --out /tmp/s --minutes 1 --seed 1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (benchmarks/common.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from rendering import fluidsynth_render, peak_normalise, to_mono, trim_silence  # noqa: E402,F401

DEFAULT_SR = 16000
MIN_WORK_S = 20.0
MAX_WORK_S = 360.0
PARSE_TIMEOUT_S = 20
RENDER_TIMEOUT_S = 300
TRIM_KEEP_S = 0.5
SILENCE_DB = -60.0
PEAK_DBFS = -1.0
DRUM_PROB = 0.3
TEMPO_RANGE = (0.8, 1.25)
HELDOUT_BUCKETS = (0, 1)  # sha1(path) % 10 in these -> heldout

# GM melodic programs (0-based) 0..111; 112-127 are percussive/sound effects.
MELODIC_PROGRAMS = tuple(range(0, 112))


def log(msg: str) -> None:
    """Print one progress line to stderr.

    Parameters
    ----------
    msg : str
        The message.
    """
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Audio post-processing (the pieces are data/rendering.py's)
# ---------------------------------------------------------------------------

def finish_audio(src: Path, dst: Path, sr: int) -> float:
    """Load a rendered file, make it mono at ``sr``, trim, normalise, save.

    Parameters
    ----------
    src : Path
        Input audio file (any rate / channel count soundfile can read).
    dst : Path
        Output path; written as mono 16-bit PCM WAV.
    sr : int
        Output sample rate in Hz.

    Returns
    -------
    float
        Duration of the written file in seconds (0.0 if silent; then nothing
        is written).
    """
    audio, src_sr = sf.read(str(src), dtype="float32", always_2d=False)
    audio = to_mono(audio)
    if src_sr != sr:
        import librosa  # imported lazily: slow import
        audio = librosa.resample(audio, orig_sr=src_sr, target_sr=sr)
    audio = peak_normalise(trim_silence(audio, sr, TRIM_KEEP_S, SILENCE_DB), PEAK_DBFS)
    if audio.size == 0:
        return 0.0
    sf.write(str(dst), audio, sr, subtype="PCM_16")
    return audio.size / sr


def rms_dbfs(path: Path) -> float:
    """RMS level of an audio file.

    Parameters
    ----------
    path : Path
        Audio file.

    Returns
    -------
    float
        RMS level in dBFS (``-inf`` for digital silence).
    """
    audio, _ = sf.read(str(path), dtype="float32")
    rms = float(np.sqrt(np.mean(np.square(to_mono(audio))))) if audio.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


# ---------------------------------------------------------------------------
# Music: corpus selection
# ---------------------------------------------------------------------------

def corpus_root() -> Path:
    """Root directory of the music21 core corpus.

    Returns
    -------
    Path
        Absolute corpus directory.
    """
    from music21 import common
    return Path(common.getCorpusFilePath()).resolve()


def relative_corpus_path(path: str | Path) -> str:
    """Corpus path relative to the corpus root, POSIX-style.

    Parameters
    ----------
    path : str or Path
        Absolute path of a corpus file.

    Returns
    -------
    str
        e.g. ``"bach/bwv66.6.mxl"``; the absolute path if outside the root.
    """
    p = Path(path).resolve()
    try:
        return p.relative_to(corpus_root()).as_posix()
    except ValueError:
        return p.as_posix()


def split_of(rel_path: str) -> str:
    """Stable train/heldout split of a work.

    Parameters
    ----------
    rel_path : str
        Corpus path relative to the corpus root.

    Returns
    -------
    str
        ``"heldout"`` if ``sha1(rel_path) % 10`` is 0 or 1, else ``"train"``.
    """
    bucket = int(hashlib.sha1(rel_path.encode("utf-8")).hexdigest(), 16) % 10
    return "heldout" if bucket in HELDOUT_BUCKETS else "train"


def candidate_works(split: str, seed: int) -> list[str]:
    """Corpus works of ``split`` in a seed-determined random order.

    Parameters
    ----------
    split : str
        ``"train"`` or ``"heldout"``.
    seed : int
        Shuffle seed.

    Returns
    -------
    list of str
        Relative corpus paths.
    """
    from music21 import corpus
    rels = sorted({relative_corpus_path(p) for p in corpus.getPaths()})
    rels = [r for r in rels if split_of(r) == split]
    random.Random(f"works-{seed}").shuffle(rels)
    return rels


def work_rng(seed: int, rel_path: str) -> random.Random:
    """Per-work random generator, independent of processing order.

    Parameters
    ----------
    seed : int
        Global seed.
    rel_path : str
        Relative corpus path of the work.

    Returns
    -------
    random.Random
        Seeded generator.
    """
    return random.Random(f"{seed}:{rel_path}")


def work_stem(rel_path: str) -> str:
    """Deterministic, file-system-safe output stem for a work.

    Parameters
    ----------
    rel_path : str
        Relative corpus path.

    Returns
    -------
    str
        e.g. ``"bach_bwv66.6_3f2a9c1b"``.
    """
    base = re.sub(r"[^A-Za-z0-9.]+", "_", rel_path.rsplit(".", 1)[0])[-60:]
    digest = hashlib.sha1(rel_path.encode("utf-8")).hexdigest()[:8]
    return f"{base.strip('_')}_{digest}"


# ---------------------------------------------------------------------------
# Music: MIDI manipulation
# ---------------------------------------------------------------------------

class _Timeout(Exception):
    """Raised by the SIGALRM handler."""


def _alarm_handler(signum, frame):  # noqa: ARG001
    raise _Timeout()


def parse_with_timeout(abs_path: str, timeout_s: int = PARSE_TIMEOUT_S):
    """Parse a corpus file with music21, giving up after ``timeout_s``.

    Parameters
    ----------
    abs_path : str
        Absolute path of the corpus file.
    timeout_s : int
        Parsing (and MIDI translation) budget in seconds; uses SIGALRM so
        this must run in a process's main thread.

    Returns
    -------
    music21.midi.MidiFile
        The work as a MIDI file object (first score if the file is an opus).

    Raises
    ------
    _Timeout
        If parsing takes longer than ``timeout_s``.
    """
    from music21 import converter, stream
    from music21.midi import translate
    old = signal.signal(signal.SIGALRM, _alarm_handler)
    signal.alarm(timeout_s)
    try:
        s = converter.parse(abs_path)
        if isinstance(s, stream.Opus):
            s = s.scores[0]
        return translate.streamToMidiFile(s)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _abs_events(track):
    """Yield ``(absolute_tick, event)`` for the non-delta events of a track."""
    from music21 import midi
    tick = 0
    for ev in track.events:
        if isinstance(ev, midi.DeltaTime):
            tick += ev.time or 0
        else:
            yield tick, ev


def scale_tempo(mf, factor: float) -> None:
    """Multiply every tempo of a MIDI file by ``factor`` (in place).

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file.
    factor : float
        Tempo factor (>1 = faster). A 120 bpm tempo is added first if the
        file has none.
    """
    from music21 import midi
    found = False
    for track in mf.tracks:
        for ev in track.events:
            if isinstance(ev, midi.MidiEvent) and ev.type == midi.MetaEvents.SET_TEMPO:
                usec = int.from_bytes(ev.data, "big")
                ev.data = max(1, int(round(usec / factor))).to_bytes(3, "big")
                found = True
    if not found:
        track = mf.tracks[0]
        ev = midi.MidiEvent(track, type=midi.MetaEvents.SET_TEMPO)
        ev.data = int(round(500000 / factor)).to_bytes(3, "big")
        track.events[0:0] = [midi.DeltaTime(track, time=0), ev]


def set_programs(mf, rng: random.Random) -> list[int]:
    """Give every melodic channel a random GM program (in place).

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file; program changes on channel 10 are left alone.
    rng : random.Random
        Random generator.

    Returns
    -------
    list of int
        The chosen programs (0-based GM numbers), one per melodic track
        that has notes, in track order.
    """
    from music21 import midi
    chosen: list[int] = []
    by_channel: dict[int, int] = {}
    for track in mf.tracks:
        if not track.hasNotes():
            continue
        events = [e for e in track.events if isinstance(e, midi.MidiEvent)]
        chans = {e.channel for e in events if e.type == midi.ChannelVoiceMessages.NOTE_ON}
        if chans == {10}:
            continue
        prog = rng.choice(MELODIC_PROGRAMS)
        chosen.append(prog)
        for e in events:
            if e.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE and e.channel != 10:
                e.data = by_channel.setdefault(e.channel, prog)
    return chosen


def tempo_map(mf) -> list[tuple[int, int]]:
    """Sorted ``(tick, microseconds_per_quarter)`` tempo changes.

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file.

    Returns
    -------
    list of tuple
        Starts with a 500000 us (120 bpm) entry at tick 0 if none is there.
    """
    from music21 import midi
    tempos = []
    for track in mf.tracks:
        for tick, ev in _abs_events(track):
            if ev.type == midi.MetaEvents.SET_TEMPO:
                tempos.append((tick, int.from_bytes(ev.data, "big")))
    tempos.sort()
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, 500000))
    return tempos


def midi_end_tick(mf) -> int:
    """Last event tick over all tracks.

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file.

    Returns
    -------
    int
        Tick of the last event.
    """
    return max((t for tr in mf.tracks for t, _ in _abs_events(tr)), default=0)


def midi_duration_s(mf) -> float:
    """Playing time of a MIDI file from its tempo map.

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file.

    Returns
    -------
    float
        Duration in seconds (no release tails).
    """
    tpq = mf.ticksPerQuarterNote
    end = midi_end_tick(mf)
    tempos = tempo_map(mf) + [(end, 0)]
    total = 0.0
    for (t0, us), (t1, _) in zip(tempos[:-1], tempos[1:]):
        if t1 > t0:
            total += (min(t1, end) - t0) / tpq * us / 1e6
    return total


def time_signatures(mf) -> list[tuple[int, int, int]]:
    """Sorted ``(tick, numerator, denominator)`` time signatures.

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file.

    Returns
    -------
    list of tuple
        Defaults to 4/4 at tick 0.
    """
    from music21 import midi
    sigs = []
    for track in mf.tracks:
        for tick, ev in _abs_events(track):
            if ev.type == midi.MetaEvents.TIME_SIGNATURE and len(ev.data) >= 2:
                sigs.append((tick, ev.data[0] or 4, 2 ** ev.data[1]))
    sigs.sort()
    if not sigs or sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    return sigs


def drum_hits(num: int, den: int) -> list[tuple[float, int, int]]:
    """One bar of a simple kick/snare/hat pattern.

    Parameters
    ----------
    num, den : int
        Time signature.

    Returns
    -------
    list of tuple
        ``(offset_in_quarters, gm_drum_note, velocity)``.
    """
    beat = 4.0 / den
    compound = den == 8 and num % 3 == 0 and num > 3
    step = 3 if compound else 1
    hits = []
    for b in range(num):
        off = b * beat
        hits.append((off, 42, 70 if b % step == 0 else 50))  # closed hat
        if not compound and den <= 4:
            hits.append((off + beat / 2, 42, 45))
        if b == 0 or (num % 2 == 0 and num >= 4 and b == num // 2 and not compound):
            hits.append((off, 36, 100))  # kick
        elif (not compound and b % 2 == 1) or (compound and b % step == 0):
            hits.append((off, 38, 90))  # snare
    return hits


def add_drum_track(mf) -> bool:
    """Append a channel-10 drum track following the bars (in place).

    Parameters
    ----------
    mf : music21.midi.MidiFile
        The file.

    Returns
    -------
    bool
        False (nothing added) if channel 10 is already in use.
    """
    from music21 import midi
    for tr in mf.tracks:
        if 10 in tr.getChannels() and tr.hasNotes():
            return False
    tpq = mf.ticksPerQuarterNote
    end = midi_end_tick(mf)
    sigs = time_signatures(mf) + [(end, 4, 4)]
    notes = []  # (tick, on?, pitch, velocity)
    for (t0, num, den), (t1, _, _) in zip(sigs[:-1], sigs[1:]):
        bar = int(round(num * 4.0 / den * tpq))
        for bar_start in range(t0, min(t1, end), max(bar, 1)):
            for off, pitch, vel in drum_hits(num, den):
                tick = bar_start + int(round(off * tpq))
                if tick < min(t1, end):
                    notes.append((tick, 1, pitch, vel))
                    notes.append((tick + tpq // 8, 0, pitch, 0))
    notes.sort(key=lambda n: (n[0], n[1]))
    track = midi.MidiTrack(len(mf.tracks))
    last = 0
    for tick, on, pitch, vel in notes:
        kind = midi.ChannelVoiceMessages.NOTE_ON if on else midi.ChannelVoiceMessages.NOTE_OFF
        ev = midi.MidiEvent(track, type=kind, channel=10)
        ev.pitch, ev.velocity = pitch, vel
        track.events += [midi.DeltaTime(track, time=tick - last), ev]
        last = tick
    eot = midi.MidiEvent(track, type=midi.MetaEvents.END_OF_TRACK)
    eot.data = b""
    track.events += [midi.DeltaTime(track, time=0), eot]
    track.updateEvents()
    mf.tracks.append(track)
    return True


# ---------------------------------------------------------------------------
# Music: one work, and the driver
# ---------------------------------------------------------------------------

def render_work(job: dict) -> dict | None:
    """Render one corpus work (runs in a worker process).

    Parameters
    ----------
    job : dict
        Keys: ``rel_path`` (str), ``out_dir`` (str), ``tmp_dir`` (str),
        ``soundfont`` (str), ``seed`` (int), ``sr`` (int, Hz),
        ``split`` (str).

    Returns
    -------
    dict or None
        Manifest entry, or ``None`` if the work was skipped. A skip is
        reported with one line on stderr.
    """
    rel = job["rel_path"]
    try:
        return _render_work(job)
    except _Timeout:
        log(f"skip {rel}: parse timeout")
    except Exception as exc:  # noqa: BLE001 - any failure skips the work
        log(f"skip {rel}: {type(exc).__name__}: {str(exc)[:160]}")
    return None


def _render_work(job: dict) -> dict | None:
    """Body of :func:`render_work`; raises on failure."""
    rel, sr = job["rel_path"], job["sr"]
    rng = work_rng(job["seed"], rel)
    tempo_factor = round(rng.uniform(*TEMPO_RANGE), 4)
    want_drums = rng.random() < DRUM_PROB
    mf = parse_with_timeout(str(corpus_root() / rel))
    programs = set_programs(mf, rng)
    if not programs:
        log(f"skip {rel}: no notes")
        return None
    scale_tempo(mf, tempo_factor)
    est = midi_duration_s(mf)
    if not (MIN_WORK_S - 2 <= est <= MAX_WORK_S):
        log(f"skip {rel}: estimated {est:.1f}s out of range")
        return None
    drums = add_drum_track(mf) if want_drums else False
    stem = work_stem(rel)
    out = Path(job["out_dir"]) / f"{stem}.wav"
    with tempfile.TemporaryDirectory(dir=job["tmp_dir"]) as tmp:
        mid, raw = Path(tmp) / "in.mid", Path(tmp) / "raw.wav"
        mid.write_bytes(mf.writestr())  # the work as music21 made it (format 1, its own tracks)
        t0 = time.time()
        fluidsynth_render(mid, raw, job["soundfont"], sr, gain=0.6, reverb=True, chorus=True,
                          timeout_s=RENDER_TIMEOUT_S)
        dur = finish_audio(raw, out, sr)
        elapsed = time.time() - t0
    if not (MIN_WORK_S <= dur <= MAX_WORK_S):
        out.unlink(missing_ok=True)
        log(f"skip {rel}: rendered {dur:.1f}s out of range")
        return None
    log(f"ok   {rel} -> {out.name} {dur:.1f}s ({dur / max(elapsed, 1e-6):.0f}x rt)")
    return {"file": out.name, "corpus_path": rel, "soundfont": job["soundfont"],
            "programs": programs, "drums": drums, "tempo_factor": tempo_factor,
            "duration_s": round(dur, 3), "split": job["split"],
            "sample_rate": sr}


def write_manifest(out_dir: Path, entries: list[dict]) -> Path:
    """Write ``manifest.json``.

    Parameters
    ----------
    out_dir : Path
        Output directory.
    entries : list of dict
        Manifest entries.

    Returns
    -------
    Path
        The manifest path.
    """
    path = out_dir / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    tmp.replace(path)
    return path


def render_music(out_dir: str, minutes: float, soundfont: str, split: str = "train",
                 seed: int = 0, jobs: int = 2, sr: int = DEFAULT_SR) -> list[dict]:
    """Render corpus works until their total duration reaches ``minutes``.

    Works are accepted in the seed-shuffled candidate order (independent of
    ``jobs``), so the result is deterministic given the arguments.

    Parameters
    ----------
    out_dir : str
        Output directory (created).
    minutes : float
        Target total duration in minutes.
    soundfont : str
        SoundFont path.
    split : str
        ``"train"`` or ``"heldout"``.
    seed : int
        Random seed.
    jobs : int
        Worker processes.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    list of dict
        The manifest entries (also written to ``out_dir/manifest.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp_dir = out / ".tmp"  # hidden, so that audio2vec never reads a half-rendered work as audio
    shutil.rmtree(tmp_dir, ignore_errors=True)  # what a killed run left (its raw renders can be GBs)
    tmp_dir.mkdir()
    soundfont = str(Path(soundfont).resolve())
    if not Path(soundfont).exists():
        raise FileNotFoundError(soundfont)
    works = candidate_works(split, seed)
    log(f"{len(works)} candidate {split} works; target {minutes} min")
    base = {"out_dir": str(out), "tmp_dir": str(tmp_dir), "soundfont": soundfont,
            "seed": seed, "sr": sr, "split": split}
    job_list = [dict(base, rel_path=r) for r in works]
    entries, total, target = [], 0.0, minutes * 60.0
    t0 = time.time()
    ctx = mp.get_context("fork")
    with ctx.Pool(max(1, jobs), maxtasksperchild=20) as pool:
        for entry in pool.imap(render_work, job_list, chunksize=1):
            if entry is None:
                continue
            entries.append(entry)
            total += entry["duration_s"]
            log(f"  total {total / 60:.1f}/{minutes} min")
            if len(entries) % 10 == 0:
                write_manifest(out, entries)
            if total >= target:
                break
        pool.terminate()
    _cleanup(out, tmp_dir, entries)
    write_manifest(out, entries)
    wall = time.time() - t0
    log(f"done: {len(entries)} files, {total / 60:.2f} min audio in {wall:.0f}s "
        f"({total / max(wall, 1e-6):.1f}x realtime overall)")
    return entries


def _cleanup(out: Path, tmp_dir: Path, entries: list[dict]) -> None:
    """Remove temp files and WAVs not in the manifest (discarded in-flight works)."""
    shutil.rmtree(tmp_dir, ignore_errors=True)
    keep = {e["file"] for e in entries}
    for wav in out.glob("*.wav"):
        if wav.name not in keep:
            wav.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# Speech
# ---------------------------------------------------------------------------

SPEECH_LANGUAGES = ("en-gb", "en-us", "de", "fr-fr", "es", "it", "nl", "pt", "pt-br", "sv", "pl")

WORDS = {
    "en": "the a music sound river morning light small house green quickly open "
          "window dog runs over under station train people city evening song "
          "play listen water mountain friend table coffee yesterday tomorrow "
          "because always never bright cold warm letter garden street little "
          "number seven twelve forty hundred question answer story old new".split(),
    "de": "der die das und Musik Klang Fluss Morgen Licht klein Haus grün schnell "
          "Fenster Hund läuft über unter Bahnhof Zug Leute Stadt Abend Lied "
          "spielen hören Wasser Berg Freund Tisch Kaffee gestern morgen weil "
          "immer nie hell kalt warm Brief Garten Straße sieben zwölf hundert".split(),
    "fr": "le la les et musique son rivière matin lumière petit maison vert vite "
          "fenêtre chien court sur sous gare train gens ville soir chanson jouer "
          "écouter eau montagne ami table café hier demain parce toujours jamais "
          "clair froid chaud lettre jardin rue sept douze cent".split(),
    "es": "el la los y música sonido río mañana luz pequeño casa verde rápido "
          "ventana perro corre sobre bajo estación tren gente ciudad tarde "
          "canción tocar escuchar agua montaña amigo mesa café ayer siempre "
          "nunca claro frío caliente carta jardín calle siete doce cien".split(),
    "it": "il la e musica suono fiume mattina luce piccolo casa verde presto "
          "finestra cane corre sopra sotto stazione treno gente città sera "
          "canzone suonare ascoltare acqua montagna amico tavolo caffè ieri "
          "domani sempre mai chiaro freddo caldo lettera giardino strada sette".split(),
    "nl": "de het en muziek geluid rivier ochtend licht klein huis groen snel "
          "raam hond loopt over onder station trein mensen stad avond lied "
          "spelen luisteren water berg vriend tafel koffie gisteren morgen "
          "altijd nooit helder koud warm brief tuin straat zeven twaalf".split(),
    "pt": "o a os e música som rio manhã luz pequeno casa verde rápido janela "
          "cão corre sobre sob estação trem gente cidade noite canção tocar "
          "ouvir água montanha amigo mesa café ontem amanhã sempre nunca claro "
          "frio quente carta jardim rua sete doze cem".split(),
    "sv": "en ett och musik ljud flod morgon ljus liten hus grön snabbt fönster "
          "hund springer över under station tåg folk stad kväll sång spela "
          "lyssna vatten berg vän bord kaffe igår imorgon alltid aldrig ljus "
          "kall varm brev trädgård gata sju tolv hundra".split(),
    "pl": "i muzyka dźwięk rzeka rano światło mały dom zielony szybko okno pies "
          "biegnie nad pod stacja pociąg ludzie miasto wieczór piosenka grać "
          "słuchać woda góra przyjaciel stół kawa wczoraj jutro zawsze nigdy "
          "jasny zimny ciepły list ogród ulica siedem dwanaście sto".split(),
}

BAD_VARIANTS = {"Demonic", "UniRobot", "anikaRobot", "croak", "Tweaky", "whisper",
                "whisperf", "Storm", "AnxiousAndy", "Mr serious"}


def espeak_languages() -> list[str]:
    """Languages of :data:`SPEECH_LANGUAGES` that ``espeak-ng`` provides.

    Returns
    -------
    list of str
        Language codes, in :data:`SPEECH_LANGUAGES` order.
    """
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True).stdout
    have = {line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1}
    return [lang for lang in SPEECH_LANGUAGES if lang in have]


def espeak_variants() -> list[str]:
    """Voice variant names (e.g. ``m3``, ``klatt``), minus odd ones.

    Returns
    -------
    list of str
        Sorted variant file names usable as ``LANG+VARIANT``.
    """
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True,
                         text=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        m = re.search(r"!v/(\S+)", line)
        if m and m.group(1) not in BAD_VARIANTS:
            names.append(m.group(1))
    return sorted(set(names))


def make_sentence(rng: random.Random, lang: str, n_words: int) -> str:
    """Random pseudo-sentences in ``lang``.

    Parameters
    ----------
    rng : random.Random
        Random generator.
    lang : str
        Language code (``en-us`` uses the English list).
    n_words : int
        Number of words.

    Returns
    -------
    str
        Text with sentence punctuation every 4-10 words.
    """
    words = WORDS.get(lang.split("-")[0], WORDS["en"])
    parts, left = [], max(1, n_words)
    while left > 0:
        k = min(left, rng.randint(4, 10))
        sent = " ".join(rng.choice(words) for _ in range(k))
        parts.append(sent[0].upper() + sent[1:] + rng.choice([".", ".", "?", "!", ","]))
        left -= k
    return " ".join(parts)


def espeak_render(text: str, voice: str, speed: int, pitch: int, wav: Path) -> None:
    """Speak ``text`` into a WAV file with espeak-ng.

    Parameters
    ----------
    text : str
        Text to speak.
    voice : str
        espeak-ng voice, e.g. ``"en+m3"``.
    speed : int
        Words per minute.
    pitch : int
        Pitch 0-99.
    wav : Path
        Output file (espeak's native rate, 22050 Hz mono).
    """
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
           "-w", str(wav), "--", text]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)


def render_utterance(rng: random.Random, idx: int, out: Path, tmp: Path,
                     langs: list[str], variants: list[str], sr: int) -> dict | None:
    """Render one 5-20 s speech file.

    Parameters
    ----------
    rng : random.Random
        Random generator (advanced in a deterministic way).
    idx : int
        File index, used in the file name.
    out, tmp : Path
        Output and scratch directories.
    langs, variants : list of str
        Choices for language and voice variant.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    dict or None
        Manifest entry, or None if no attempt gave a 5-20 s file.
    """
    lang = rng.choice(langs)
    variant = rng.choice(variants)
    voice = f"{lang}+{variant}"
    speed, pitch = rng.randint(130, 200), rng.randint(30, 70)
    target = rng.uniform(6.0, 18.0)
    n_words = max(3, int(target * speed / 60))
    dst = out / f"speech_{idx:05d}.wav"
    for _ in range(4):
        text = make_sentence(rng, lang, n_words)
        espeak_render(text, voice, speed, pitch, tmp / "raw.wav")
        dur = finish_audio(tmp / "raw.wav", dst, sr)
        if 5.0 <= dur <= 20.0:
            return {"file": dst.name, "voice": voice, "language": lang,
                    "variant": variant, "speed_wpm": speed, "pitch": pitch,
                    "text": text, "duration_s": round(dur, 3), "split": "train",
                    "sample_rate": sr}
        n_words = max(3, int(n_words * target / max(dur, 0.5)))
    dst.unlink(missing_ok=True)
    return None


def render_speech(out_dir: str, minutes: float, seed: int = 0,
                  sr: int = DEFAULT_SR, split: str = "train") -> list[dict]:
    """Render espeak-ng speech files until ``minutes`` of audio exist.

    Parameters
    ----------
    out_dir : str
        Output directory (created).
    minutes : float
        Target total duration in minutes.
    seed : int
        Random seed.
    sr : int
        Sample rate in Hz.
    split : str
        Label written to the manifest's ``split`` field.

    Returns
    -------
    list of dict
        Manifest entries (also written to ``out_dir/manifest.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    langs, variants = espeak_languages(), espeak_variants()
    rng = random.Random(f"speech-{seed}")
    entries, total, idx = [], 0.0, 0
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        while total < minutes * 60.0:
            entry = render_utterance(rng, idx, out, Path(tmp), langs, variants, sr)
            idx += 1
            if entry is None:
                log(f"skip utterance {idx - 1}")
                continue
            entry["split"] = split
            entries.append(entry)
            total += entry["duration_s"]
            log(f"ok   {entry['file']} {entry['voice']} {entry['duration_s']:.1f}s "
                f"total {total / 60:.1f}/{minutes} min")
    write_manifest(out, entries)
    wall = time.time() - t0
    log(f"done: {len(entries)} files, {total / 60:.2f} min in {wall:.0f}s "
        f"({total / max(wall, 1e-6):.1f}x realtime)")
    return entries


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """Command-line parser with ``music`` and ``speech`` subcommands.

    Returns
    -------
    argparse.ArgumentParser
        The parser.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("music", help="render music21 corpus works with fluidsynth")
    m.add_argument("--out", required=True, help="output directory")
    m.add_argument("--minutes", type=float, required=True, help="target total minutes")
    m.add_argument("--soundfont", required=True, help=".sf2/.sf3 path")
    m.add_argument("--split", choices=["train", "heldout"], default="train")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--jobs", type=int, default=2, help="worker processes")
    m.add_argument("--sample-rate", type=int, default=DEFAULT_SR, help="Hz")
    s = sub.add_parser("speech", help="render espeak-ng speech")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--minutes", type=float, required=True, help="target total minutes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split", choices=["train", "heldout"], default="train",
                   help="label for the manifest")
    s.add_argument("--sample-rate", type=int, default=DEFAULT_SR, help="Hz")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    args = build_parser().parse_args(argv)
    if args.cmd == "music":
        render_music(args.out, args.minutes, args.soundfont, args.split, args.seed,
                     args.jobs, args.sample_rate)
    else:
        render_speech(args.out, args.minutes, args.seed, args.sample_rate, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
