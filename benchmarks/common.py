"""Shared helpers of the benchmarks: the machine, allowed data sources, babble noise.

Allowed data comes from Debian packages that ``make data-packages`` installs; a benchmark that
finds one missing stops with a one-line error (:func:`system.require_debian_package`)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "data"))
from system import require_debian_package  # noqa: E402  (data/system.py: checks, never installs)

CACHE = REPO / "benchmarks" / ".cache"
STK_MUSIC = Path("/usr/share/games/supertuxkart/data/music")


def machine() -> dict:
    """CPU model, cores, RAM and versions, printed with every benchmark result."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def stk_music_library() -> list[Path]:
    """The SuperTuxKart pieces (OGG), without their ``_fast`` tempo variants."""
    require_debian_package("supertuxkart-data", STK_MUSIC)
    return sorted(p for p in STK_MUSIC.glob("*.ogg") if not p.stem.endswith(("_fast", "_f")))


def music_library_2h(minutes: float = 120.0) -> list[Path]:
    """At least ``minutes`` of OGG and MP3 music: every SuperTuxKart piece (OGG, 59 min), each also
    transcoded to MP3 at 128 kbps, then at 64 kbps until the total is reached (MP3s made once with
    ffmpeg into the benchmark cache; different bytes, so each file is decoded and embedded)."""
    import soundfile as sf
    from concurrent.futures import ThreadPoolExecutor

    require_debian_package("supertuxkart-data", STK_MUSIC)
    require_debian_package("ffmpeg", Path("/usr/bin/ffmpeg"))
    pieces = sorted(STK_MUSIC.glob("*.ogg"))
    plan, total = [], 0.0
    for kbps in (None, 128, 64):
        for src in pieces:
            if total >= minutes * 60:
                break
            plan.append((src, kbps))
            total += sf.info(str(src)).duration
    out = CACHE / "music_mp3"
    out.mkdir(parents=True, exist_ok=True)

    def made(item) -> Path:
        src, kbps = item
        if kbps is None:
            return src
        dst = out / f"{src.stem}_{kbps}k.mp3"
        if not dst.exists():
            tmp = dst.with_suffix(".part.mp3")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame", "-b:a", f"{kbps}k", str(tmp)], check=True)
            tmp.rename(dst)
        return dst

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(made, plan))


#: held-out music21 works (never trained on) rendered with sf_GMbank (a soundfont training never
#: used), cut in manifest order into disjoint parts: (first minute, last minute) of the pool (a
#: pool rendered for fewer minutes is rendered again: the order is fixed, so the parts before stay
#: the same works). The calibration library is as large as the benchmark's
#: 2-hour library: the nearest of N recordings to an outsider gets nearer as N grows, so a
#: threshold calibrated on a small library lets more outsiders through in a large one.
HELDOUT_PARTS = {"library": (0, 70), "outsiders": (70, 100), "calibration_outsiders": (100, 160), "calibration_library": (160, 280)}


def heldout_music(part: str) -> list[Path]:
    """One part of the held-out music pool (see :data:`HELDOUT_PARTS`), rendered once into the cache.

    Works are whole and never shared between parts, so ``outsiders`` are truly outside a library
    made of ``library``, and calibration data never overlaps benchmark data.
    """
    require_debian_package("fluidsynth", Path("/usr/bin/fluidsynth"))
    require_debian_package("csound-soundfont", Path("/usr/share/sounds/sf2/sf_GMbank.sf2"))
    out = CACHE / "music_heldout"
    total = max(hi for _, hi in HELDOUT_PARTS.values())
    manifest = out / "manifest.json"
    if not manifest.exists() or sum(e["duration_s"] for e in json.loads(manifest.read_text())) < (total - 5) * 60:
        subprocess.run(
            [sys.executable, str(REPO / "data" / "render.py"), "music", "--out", str(out), "--minutes", str(total),
             "--soundfont", "/usr/share/sounds/sf2/sf_GMbank.sf2", "--split", "heldout", "--seed", "3", "--jobs", "2"],
            check=True,
        )
    lo, hi = HELDOUT_PARTS[part]
    files, t = [], 0.0
    for e in json.loads(manifest.read_text()):
        if lo * 60 <= t < hi * 60:
            files.append(out / e["file"])
        t += e["duration_s"]
    return files


def _render_module():
    """``data/render.py`` as a module (its music21 parsing and MIDI helpers)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("a2v_data_render", REPO / "data" / "render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _work_notes(render, corpus_path: str) -> list[list[list]]:
    """Per MIDI track of a corpus work, ``[pitch, quarter notes to the track's next onset]`` of its
    notes in onset order (chord notes: 0 to the next; the last note: 1)."""
    from music21 import midi

    mf = render.parse_with_timeout(str(render.corpus_root() / corpus_path), 120)
    tpq = mf.ticksPerQuarterNote
    tracks = []
    for track in mf.tracks:
        onsets = sorted((tick, ev.pitch) for tick, ev in render._abs_events(track)
                        if isinstance(ev, midi.MidiEvent) and ev.type == midi.ChannelVoiceMessages.NOTE_ON and ev.velocity)
        if onsets:
            nxt = [t for t, _ in onsets[1:]] + [onsets[-1][0] + tpq]
            tracks.append([[p, round((n - t) / tpq, 4)] for (t, p), n in zip(onsets, nxt)])
    return tracks


_NOTES_VERSION = 1


def heldout_notes(files: list[Path]) -> dict[Path, list[list[tuple[int, float]]]]:
    """The notes of rendered music21 works: per MIDI track (as rendered, without the added drums),
    ``(pitch, quarter notes to the track's next onset)`` in onset order. Works are parsed once
    (music21, as ``data/render.py`` does; about 0.4 s a work) into ``notes.json`` next to their
    ``manifest.json``; files in no manifest (e.g. the SuperTuxKart OGGs) and works that fail to
    parse get no entry."""
    out: dict[Path, list] = {}
    for folder in sorted({Path(f).parent for f in files}):
        manifest = folder / "manifest.json"
        if not manifest.exists():
            continue
        entries = {e["file"]: e for e in json.loads(manifest.read_text()) if "corpus_path" in e}
        cache_path = folder / "notes.json"
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
        if cache.get("version") != _NOTES_VERSION:
            cache = {"version": _NOTES_VERSION, "works": {}}
        works = cache["works"]
        wanted = [Path(f) for f in files if Path(f).parent == folder and Path(f).name in entries]
        missing = [f.name for f in wanted if works.get(f.name, {}).get("corpus_path") != entries[f.name]["corpus_path"]]
        if missing:
            render = _render_module()
            for name in missing:
                try:
                    works[name] = {"corpus_path": entries[name]["corpus_path"], "tracks": _work_notes(render, entries[name]["corpus_path"])}
                except Exception as exc:  # noqa: BLE001 - a work that does not parse has no known notes
                    print(f"notes of {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            tmp = cache_path.with_suffix(".part")
            tmp.write_text(json.dumps(cache, separators=(",", ":")))
            tmp.replace(cache_path)
        for f in wanted:
            if f.name in works:
                out[f] = [[(p, d) for p, d in track] for track in works[f.name]["tracks"]]
    return out


#: notes in a row that make shared music (see :func:`sharing_music`). In the 280-min held-out pool
#: (136 works, 9,180 pairs) different pieces share at most 11 (one pair of Palestrina voices; 10 in
#: 10 pairs, all Palestrina scale lines): 12 is the least that none reaches. Bach harmonisations
#: of one chorale melody in the same key share 8 to 56 (13 or more in 5 of 8 pairs).
SHARED_RUN_NOTES = 12


def sharing_music(candidates: list[Path], library: list[Path], min_notes: int = SHARED_RUN_NOTES) -> set[Path]:
    """The ``candidates`` that share music with some ``library`` work: ``min_notes`` consecutive
    notes of a track, identical in pitch and in time to the next onset (in quarter notes, so tempo
    does not matter; transposition does), found in a track of the other (:func:`heldout_notes`;
    files without notes, e.g. the SuperTuxKart OGGs, share nothing). Clips of such a work are no
    true outsiders: the same tune or phrase is rightly found in the library."""
    notes = heldout_notes(list(candidates) + list(library))

    def grams(f):
        return (tuple(t[i:i + min_notes]) for t in notes.get(Path(f), []) for i in range(len(t) - min_notes + 1))

    known = {g for f in library for g in grams(f)}
    return {Path(f) for f in candidates if any(g in known for g in grams(f))}


def without_shared_music(candidates: list[Path], library: list[Path]) -> list[Path]:
    """``candidates`` (in order) less the works that share music with ``library`` (see
    :func:`sharing_music`); says on stderr how many were dropped, and which."""
    shared = sharing_music(candidates, library)
    names = ", ".join(sorted(Path(f).name for f in shared))
    print(f"outsiders: dropped {len(shared)} of {len(candidates)} works sharing {SHARED_RUN_NOTES}+ notes in a row "
          f"with a library work{': ' + names if names else ''}", file=sys.stderr)
    return [f for f in candidates if Path(f) not in shared]


def babble_speech(minutes: float = 6.0) -> list[Path]:
    """espeak-ng speech for babble noise, rendered once into the benchmark cache (held-out split)."""
    require_debian_package("espeak-ng", Path("/usr/bin/espeak-ng"))
    out = CACHE / "speech"
    if not (out / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "data" / "render.py"), "speech", "--out", str(out),
             "--minutes", str(minutes), "--seed", "7", "--split", "heldout"],
            check=True,
        )
    return [out / e["file"] for e in json.loads((out / "manifest.json").read_text())]


def result_header(name: str, argv: list[str] | None = None, *, command: str | None = None) -> dict:
    """The fields every result JSON starts with: the benchmark's name, the command that made it
    (``python benchmarks/<name>.py`` and ``argv``, by default this process's arguments, unless
    ``command`` is given), the date (UTC) and the machine (:func:`machine`)."""
    import datetime as dt
    import sys

    args = sys.argv[1:] if argv is None else argv
    return {"benchmark": name, "command": command or " ".join(["python", f"benchmarks/{name}.py", *args]),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine()}


def model_config_text(cfg: dict) -> str:
    """A model's ``config.json`` text: ``json.dumps(cfg, indent=2)``, but each tree of a ``"trees"``
    decision (or part) on one line."""
    trees = []

    def mark(d):
        if isinstance(d, dict):
            return {k: ([_mark(trees, t) for t in v] if k == "trees" else mark(v)) for k, v in d.items()}
        if isinstance(d, list):
            return [mark(v) for v in d]
        return d

    text = json.dumps(mark(cfg), indent=2)
    for j, t in enumerate(trees):
        text = text.replace(f'"@@tree{j}@@"', json.dumps(t, separators=(",", ":")))
    assert json.loads(text) == json.loads(json.dumps(cfg))
    return text + "\n"


def _mark(trees: list, tree: dict) -> str:
    trees.append(tree)
    return f"@@tree{len(trees) - 1}@@"


def write_result(name: str, result: dict, *, markdown: str | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (and ``<name>.md`` when ``markdown`` is given)."""
    out = REPO / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if markdown is not None:
        out.with_suffix(".md").write_text(markdown.rstrip() + "\n")
    return out


LMMS_SAMPLES = Path("/usr/share/lmms/samples")
FREEDESKTOP_SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")


def oneshot_library(n: int = 10_000, seed: int = 0) -> list[Path]:
    """``n`` one-shot sound files of 0.05-2 s, as a sample library holds them (made once into the
    benchmark cache): pieces of the LMMS samples and freedesktop sounds (Debian packages
    lmms-common and sound-theme-freedesktop), each cut at a random
    place to a random length, re-pitched by up to ±5 semitones and faded out (a tone where a source
    ends too soon), written as 16-bit WAV (80 %), FLAC (10 %) or Ogg Vorbis (10 %) at 44.1 or
    48 kHz, mono or stereo. Every file's bytes differ, so each is decoded and embedded."""
    import numpy as np
    import soundfile as sf
    import soxr

    from search_engine.audio import load
    from search_engine.errors import DecodeError

    require_debian_package("lmms-common", LMMS_SAMPLES)
    require_debian_package("sound-theme-freedesktop", FREEDESKTOP_SOUNDS)
    out = CACHE / f"oneshots_{n}_{seed}"
    done = out / "done"
    if done.exists():
        return sorted(p for p in out.rglob("*") if p.suffix in (".wav", ".flac", ".ogg"))
    sources = sorted(p for p in LMMS_SAMPLES.rglob("*") if p.suffix in (".ogg", ".wav", ".flac")) + sorted(FREEDESKTOP_SOUNDS.glob("*.oga"))
    rng = np.random.default_rng(seed)
    pool = []
    for p in sources:
        try:
            pool.append(load(p, sr=48000)[0])
        except DecodeError:
            continue
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        src = pool[rng.integers(len(pool))]
        length = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        rate = int(rng.choice([44100, 48000]))
        step = 2.0 ** (rng.uniform(-5, 5) / 12)
        need = int(length * 48000 * step) + 1
        start = int(rng.integers(max(1, len(src) - need)))
        piece = src[start : start + need]
        y = soxr.resample(piece, 48000 * step, rate).astype(np.float32) if len(piece) > 16 else piece
        y = y[: int(length * rate)]
        if len(y) < int(length * rate) or np.abs(y).max() < 1e-3:  # the source ended, or silence: a tone
            y = (0.3 * np.sin(2 * np.pi * rng.uniform(80, 2000) * np.arange(int(length * rate)) / rate)).astype(np.float32)
        y = y * np.linspace(1.0, 0.0, len(y), dtype=np.float32) ** 2 * np.float32(rng.uniform(0.2, 0.9) / max(1e-3, np.abs(y).max()))
        if rng.random() < 0.5:
            y = np.stack([y, y * np.float32(rng.uniform(0.5, 1.0))], axis=1)
        kind = rng.choice(["wav"] * 8 + ["flac", "ogg"])
        path = out / f"{i // 500:02d}" / f"shot{i:05d}.{kind}"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), y, rate, subtype="VORBIS" if kind == "ogg" else "PCM_16")
        files.append(path)
    done.write_text(str(n))
    return sorted(files)
