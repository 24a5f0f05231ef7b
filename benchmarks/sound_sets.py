"""Labelled short sounds for the similar-sound benchmarks (allowed sources only, see DATA.md).

Three sets, each rendered once into ``benchmarks/.cache/sound_sets/<set>/`` (16 kHz mono 16-bit
WAV, trimmed, peak -1 dBFS) with a ``manifest.json``; later calls only read the manifest.

``instruments``  12 classes by General MIDI family (piano, chromatic percussion, organ, guitar,
    bass, strings, brass, reed, pipe, synth lead, synth pad, drum kit), 12 sounds per class and
    source: 1.4-2.9 s phrases (single note, arpeggio, scale, rhythm, chord, melody) at several
    pitches and velocities, drawn per source so that the notes do not give the class away (the
    register does: bass is low, pipes high). Sources: sf_GMbank, TimGM6mb (fluidsynth),
    freepats (timidity), OPL-3 FM (fluidsynth) and FluidR3_GM (flagged ``fluid``).
``effects``  sound effects by category from recordings (OpenSFX, SuperTuxKart, LMMS,
    freedesktop) and synthesisers (drum kits and GM/GS SFX presets of the soundfonts above plus
    FluidR3_GS; freepats drum kit): kick, snare, hi-hat, tom, clap, cymbal, shaker, rim, explosion,
    crash, car, aircraft, train, bird, animal, water, wind, thunder, applause, telephone, horn.
    Sounds shorter than 1.1 s (one model window is 1.04 s) are padded with trailing silence
    (``padded_s`` in the manifest); recordings longer than 6 s give up to three 4 s excerpts.
``speech``  12 Harvard sentences (label) spoken by 8 espeak-ng voices (source). Training speech
    (``data/render.py speech``) is random word salad from its word lists in en-gb, en-us, de,
    fr-fr, es, it, nl, pt, pt-br, sv, pl, with a random ``+variant`` from every espeak-ng variant
    but the odd ones: these sentences are not training texts, and the benchmark voices use accents
    never used in training (Scotland, RP, Lancaster, West Midlands, Caribbean, New York City).

Independence. Each record has ``source`` (the collection or renderer) and ``group``: the unit of
independence that benchmarks exclude from a query's candidates. Measured here, not assumed:
sf_GMbank and TimGM6mb share 301 byte-identical samples (most melodic programs and 39-44 samples
of each drum kit; ``--check-sources`` prints the table), so both are group ``gmbank``. The Fluid
family (FluidR3_GM, FluidR3_GS, which share samples; the default model was trained on FluidR3_GM
renders including its kick/snare/hi-hat) is group ``fluid`` with ``fluid: true``. OpenSFX entries
are grouped by the original recording(s) named in their credit (connected components), the other
recording collections are one group each (``supertuxkart``, ``lmms``, ``freedesktop``).

Two audits then look for shared samples across groups (results in each manifest):
- presets: every program used is played by every synth (1 s notes at three pitches); a pair of
  groups whose notes cross-correlate above 0.94 shares the sample, and the copy from the source
  later in AUDIT_PRIORITY is left out. Found: sf_GMbank programs 44 (tremolo strings) and 75 (pan
  flute), TimGM6mb 75 and 122 (seashore) are the freepats samples.
- sounds: every pair of same-label sounds from different groups (first 1 s); above 0.93 one copy
  is dropped. Found: five LMMS acoustic drums (tom hi/mid/low, acoustic snare and kick) are
  sf_GMbank/TimGM6mb kit samples.

timidity always reads /etc/timidity/timidity.cfg first, which maps every program to FluidR3_GM;
``-c freepats.cfg`` only overrides the programs freepats has. This module therefore only asks
timidity for programs and drum notes that freepats.cfg defines, else the "freepats" renders would
silently be FluidR3.

    python benchmarks/sound_sets.py [--sets instruments effects speech] [--rebuild] [--check-sources]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import rendering  # noqa: E402  (data/rendering.py)
from common import CACHE  # noqa: E402
from rendering import DRUM_NOTES, GM_SFX, GS_SFX, Item, Synth, soundfont_presets  # noqa: E402,F401 (the tables are the sets' too)
from opensfx import opensfx_entries  # noqa: E402  (data/opensfx.py)
from system import require_debian_package  # noqa: E402

SR = 16000
MIN_S = 1.1  # the encoder needs one 1.04 s window: shorter sounds are padded with silence
PEAK_DBFS = -1.0
SETS = ("instruments", "effects", "speech")
OUT = CACHE / "sound_sets"
BUILD_VERSION = 5

SF2 = Path("/usr/share/sounds/sf2")
FREEPATS_CFG = Path("/etc/timidity/freepats.cfg")
STK = Path("/usr/share/games/supertuxkart/data")
LMMS = Path("/usr/share/lmms/samples")
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")


@dataclass(frozen=True)
class Record:
    """One labelled sound."""

    path: Path  #: 16 kHz mono WAV in the cache
    label: str  #: class: instrument family, effect category or sentence id
    source: str  #: collection or renderer (e.g. "TimGM6mb", "opensfx", "en-gb-scotland")
    set: str  #: "instruments", "effects" or "speech"
    group: str = ""  #: unit of independence (benchmarks exclude the query's group)
    fluid: bool = False  #: from a Fluid-family soundfont (the default model was trained on FluidR3_GM)
    duration_s: float = 0.0  #: sound length, without the padding
    padded_s: float = 0.0  #: trailing silence added to reach MIN_S
    info: dict = field(default_factory=dict, compare=False, hash=False)


# ---------------------------------------------------------------------------------------------
# synthesisers
# ---------------------------------------------------------------------------------------------

#: the benchmark's synthesisers (its own; ``data/kinds.py`` keeps the training ones)
SYNTHS = {
    "sf_GMbank": Synth("sf_GMbank", "fluidsynth", SF2 / "sf_GMbank.sf2", "csound-soundfont", "gmbank"),
    "TimGM6mb": Synth("TimGM6mb", "fluidsynth", SF2 / "TimGM6mb.sf2", "timgm6mb-soundfont", "gmbank"),
    "freepats": Synth("freepats", "timidity", FREEPATS_CFG, "freepats", "freepats"),
    "OPL3_FM": Synth("OPL3_FM", "fluidsynth", SF2 / "OPL-3_FM_128M.sf2", "opl3-soundfont", "opl3"),
    "FluidR3_GM": Synth("FluidR3_GM", "fluidsynth", SF2 / "FluidR3_GM.sf2", "fluid-soundfont-gm", "fluid", fluid=True),
    "FluidR3_GS": Synth("FluidR3_GS", "fluidsynth", SF2 / "FluidR3_GS.sf2", "fluid-soundfont-gs", "fluid", fluid=True),
}


def peak_xcorr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak of the normalised cross-correlation over all lags (1.0: the same signal, shifted)."""
    nfft = 1 << (len(a) + len(b) - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft)), nfft)
    return float(np.max(np.abs(c)) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


PROBE_XCORR = 0.94


def shared_presets(synths, presets, tmp: Path, *, seconds: float = 1.0) -> dict:
    """Presets that play the same sample in synths of different groups.

    ``presets``: ``[(bank, program, pitches)]``. Each synth plays each pitch for ``seconds`` (the
    attack and the first part of the sample, before loops and vibrato drift apart); a preset pair
    whose peak cross-correlation (at the best pitch) exceeds :data:`PROBE_XCORR` is shared.

    Returns ``{(synth, bank, program): (other synth, xcorr)}`` for the synth later in
    :data:`AUDIT_PRIORITY` (the one to leave out), and every pair above 0.85 with its xcorr.
    """
    items = [
        Item(f"probe_b{b}_p{p}_n{n}", "", [(0.0, seconds, n, 100)], bank=b, program=p, tail_s=0.0)
        for b, p, pitches in presets
        for n in pitches
    ]
    probes = {sy: dict(zip((it.key for it in items), rendering.render_items(SYNTHS[sy], items, tmp, SR))) for sy in synths}
    rank = {s: i for i, s in enumerate(AUDIT_PRIORITY)}
    out, near = {}, {}
    for b, p, pitches in presets:
        for i, s1 in enumerate(synths):
            for s2 in synths[i + 1 :]:
                if SYNTHS[s1].group == SYNTHS[s2].group:
                    continue
                best = 0.0
                for n in pitches:
                    y1, y2 = probes[s1][f"probe_b{b}_p{p}_n{n}"], probes[s2][f"probe_b{b}_p{p}_n{n}"]
                    if y1 is not None and y2 is not None:
                        best = max(best, peak_xcorr(y1, y2))
                if best > 0.85:
                    near[f"{b}/{p} {s1}~{s2}"] = round(best, 3)
                if best > PROBE_XCORR:
                    keep, drop = sorted((s1, s2), key=lambda s: rank.get(s, len(rank)))
                    out.setdefault((drop, b, p), (keep, round(best, 3)))
                    print(f"  shared preset {b}/{p}: {drop} ~ {keep} (xcorr {best:.3f})", file=sys.stderr)
    return out, near


# ---------------------------------------------------------------------------------------------
# audio finishing and writing
# ---------------------------------------------------------------------------------------------


def finish(y: np.ndarray, *, max_s: float | None = None) -> np.ndarray | None:
    """Trim silence at both ends (below -50 dB before, -60 dB after), fade the last 20 ms,
    peak -1 dBFS: :func:`rendering.finish_clip` at the sets' rate; None if silent."""
    return rendering.finish_clip(y, SR, lead_db=-50.0, tail_db=-60.0, max_s=max_s, peak_dbfs=PEAK_DBFS)


#: cross-correlation above which two sounds of different groups count as the same sample
SHARED_XCORR = 0.93
#: which copy of a shared sample to keep: the source listed first
AUDIT_PRIORITY = (
    "freepats",
    "OPL3_FM",
    "sf_GMbank",
    "TimGM6mb",
    "opensfx",
    "supertuxkart",
    "freedesktop",
    "FluidR3_GM",
    "FluidR3_GS",
    "lmms",
)


class Writer:
    """Writes finished sounds of one set, dropping exact duplicates (same 16-bit PCM)."""

    def __init__(self, name: str, out: Path):
        self.name, self.out = name, out
        self.entries: list[dict] = []
        self.dropped: list[dict] = []
        self._hashes: dict[str, str] = {}
        out.mkdir(parents=True, exist_ok=True)

    def add(
        self, key: str, y: np.ndarray | None, *, label: str, source: str, group: str, fluid: bool = False, **info
    ) -> None:
        if y is None:
            self.dropped.append({"key": key, "label": label, "source": source, "why": "silent or unavailable"})
            return
        pcm = np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)
        digest = hashlib.sha1(pcm.tobytes()).hexdigest()
        if digest in self._hashes:
            self.dropped.append(
                {"key": key, "label": label, "source": source, "why": f"duplicate of {self._hashes[digest]}"}
            )
            return
        self._hashes[digest] = key
        duration = len(pcm) / SR
        pad = max(0, int(np.ceil(MIN_S * SR)) - len(pcm))
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        fname = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:100] + ".wav"
        sf.write(str(self.out / fname), pcm, SR, subtype="PCM_16")
        self.entries.append(
            {
                "file": fname,
                "label": label,
                "source": source,
                "group": group,
                "fluid": fluid,
                "duration_s": round(duration, 3),
                "padded_s": round(pad / SR, 3),
                "info": info,
            }
        )

    def audit_shared(self, threshold: float = SHARED_XCORR, seconds: float = 1.0) -> None:
        """Drop sounds that are the same recording/sample as a sound of another group.

        For every pair with the same label from different groups: the peak normalised
        cross-correlation of their first ``seconds`` (all sounds start at their onset). Above
        ``threshold`` the sound of the later source in :data:`AUDIT_PRIORITY` is dropped.
        """
        n = int(seconds * SR)
        nfft = 1 << (2 * n - 1).bit_length()
        spec, norm = [], []
        for e in self.entries:
            y, _ = sf.read(str(self.out / e["file"]), dtype="float32", frames=n)
            spec.append(np.fft.rfft(y, nfft))
            norm.append(float(np.linalg.norm(y)) + 1e-9)
        rank = {s: i for i, s in enumerate(AUDIT_PRIORITY)}
        order = sorted(range(len(self.entries)), key=lambda i: (rank.get(self.entries[i]["source"], len(rank)), i))
        kept: list[int] = []
        drop: dict[int, tuple[int, float]] = {}
        for i in order:
            e = self.entries[i]
            for j in kept:
                f = self.entries[j]
                if f["label"] != e["label"] or f["group"] == e["group"]:
                    continue
                c = float(np.max(np.abs(np.fft.irfft(spec[i] * np.conj(spec[j]), nfft)))) / (norm[i] * norm[j])
                if c > threshold:
                    drop[i] = (j, c)
                    break
            if i not in drop:
                kept.append(i)
        for i, (j, c) in sorted(drop.items()):
            e = self.entries[i]
            (self.out / e["file"]).unlink()
            self.dropped.append(
                {
                    "key": e["file"],
                    "label": e["label"],
                    "source": e["source"],
                    "why": f"same sample as {self.entries[j]['file']} (xcorr {c:.3f})",
                }
            )
            print(f"  shared sample: drop {e['file']} ~ {self.entries[j]['file']} (xcorr {c:.3f})", file=sys.stderr)
        self.entries = [e for i, e in enumerate(self.entries) if i not in drop]

    def cap(self, per: int, seed: int = 0) -> None:
        """Keep at most ``per`` sounds per (label, source), chosen at random (seeded)."""
        by: dict[tuple[str, str], list[dict]] = {}
        for e in self.entries:
            by.setdefault((e["label"], e["source"]), []).append(e)
        keep = []
        for k in sorted(by):
            es = by[k]
            if len(es) > per:
                es = random.Random(f"{seed}:{k}").sample(es, per)
                for e in by[k]:
                    if e not in es:
                        (self.out / e["file"]).unlink()
                        self.dropped.append(
                            {"key": e["file"], "label": e["label"], "source": e["source"], "why": f"cap {per}"}
                        )
            keep += es
        self.entries = sorted(keep, key=lambda e: e["file"])

    def close(self, notes: dict) -> dict:
        manifest = {
            "set": self.name,
            "version": BUILD_VERSION,
            "sample_rate": SR,
            "min_s": MIN_S,
            "padding": f"sounds shorter than {MIN_S} s get trailing silence up to {MIN_S} s (padded_s); "
            "duration_s is the sound without padding",
            "processing": "mono, leading silence below -50 dB and trailing below -60 dB (re peak) trimmed, "
            "20 ms fade-out, peak -1 dBFS, 16-bit PCM",
            **notes,
            "counts": _counts(self.entries),
            "total_s": round(sum(e["duration_s"] for e in self.entries), 1),
            "sounds": self.entries,
            "dropped": self.dropped,
        }
        (self.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        return manifest


def add_rendered(w, set_name: str, synths, items_of, probes) -> dict:
    """Render every synthesiser's items into ``w``, leaving out presets that play the same sample
    as another source's (probed first); returns the probe's ``(shared presets, near-identical pairs)``."""
    with tempfile.TemporaryDirectory() as tmp:
        for synth in synths:
            SYNTHS[synth].require()
        shared, near = shared_presets(synths, probes, Path(tmp))
        for synth in synths:
            items = items_of(synth)
            t = time.perf_counter()
            ys = rendering.render_items(SYNTHS[synth], items, Path(tmp), SR)
            group, fluid = SYNTHS[synth].group, SYNTHS[synth].fluid
            for it, y in zip(items, ys):
                if (synth, it.bank, it.program) in shared:
                    other, c = shared[(synth, it.bank, it.program)]
                    w.dropped.append(
                        {
                            "key": f"{synth}_{it.key}",
                            "label": it.label,
                            "source": synth,
                            "why": f"preset plays the same sample as {other} (probe xcorr {c})",
                        }
                    )
                    continue
                w.add(
                    f"{synth}_{it.key}",
                    finish(y) if y is not None else None,
                    label=it.label,
                    source=synth,
                    group=group,
                    fluid=fluid,
                    **it.info,
                )
            print(
                f"  {set_name}/{synth}: {sum(y is not None for y in ys)}/{len(items)} in {time.perf_counter() - t:.1f} s",
                file=sys.stderr,
            )
    return shared, near


def _counts(entries: list[dict]) -> dict:
    out: dict[str, dict[str, int]] = {}
    for e in entries:
        out.setdefault(e["label"], {}).setdefault(e["source"], 0)
        out[e["label"]][e["source"]] += 1
    return out


def _load_file(path: Path) -> np.ndarray | None:
    """A file as mono float32 at SR through the project's decoder; None if it cannot be read."""
    from search_engine.audio import load
    from search_engine.errors import DecodeError

    try:
        return load(path, sr=SR)[0]
    except DecodeError as exc:
        print(f"  skip {path}: {exc}", file=sys.stderr)
        return None


def excerpts(y: np.ndarray, *, max_s: float = 6.0, piece_s: float = 4.0, n: int = 3) -> list[np.ndarray]:
    """The whole sound if it is at most ``max_s`` long, else up to ``n`` evenly spaced ``piece_s`` excerpts."""
    if len(y) <= max_s * SR:
        return [y]
    piece = int(piece_s * SR)
    starts = np.linspace(0, len(y) - piece, n).astype(int)
    return [y[s : s + piece] for s in starts]


# ---------------------------------------------------------------------------------------------
# instruments
# ---------------------------------------------------------------------------------------------

#: class -> (GM programs (all defined in freepats), base MIDI pitch)
INSTRUMENT_CLASSES = {
    "piano": ([0, 1, 2, 4], 60),
    "chromatic_percussion": ([8, 9, 13, 14], 72),
    "organ": ([16, 19, 21, 23], 60),
    "guitar": ([24, 25, 27, 30], 52),
    "bass": ([32, 33, 35, 38], 36),
    "strings": ([40, 42, 44, 48], 55),
    "brass": ([56, 57, 58, 61], 55),
    "reed": ([65, 66, 68, 71], 60),
    "pipe": ([72, 73, 74, 75], 72),
    "synth_lead": ([80, 84], 64),
    "synth_pad": ([88, 94, 95], 60),
}

#: phrases: (onset_s, dur_s, semitones)
PHRASES = {
    "note": [(0.0, 1.6, 0)],
    "arpeggio": [(0.0, 0.35, 0), (0.35, 0.35, 4), (0.7, 0.35, 7), (1.05, 0.9, 12)],
    "scale": [(0.0, 0.3, 7), (0.3, 0.3, 5), (0.6, 0.3, 4), (0.9, 0.3, 2), (1.2, 0.7, 0)],
    "rhythm": [(0.0, 0.2, 0), (0.25, 0.2, 0), (0.5, 0.45, 7), (1.0, 0.2, 5), (1.25, 0.2, 4), (1.5, 0.6, 5)],
    "chord": [(0.0, 1.8, 0), (0.0, 1.8, 4), (0.0, 1.8, 7)],
    "melody": [(0.0, 0.4, 0), (0.4, 0.4, 2), (0.8, 0.4, 4), (1.2, 0.4, 7), (1.6, 0.6, 4)],
}
TRANSPOSE = (0, -5, 3, 7, -2, 5)
VELOCITY = (100, 70, 120, 85)

# drum patterns: (onset in steps, GM note, velocity); step = 0.125 s at tempo 1.0
_ROCK = [(s, 42, 80) for s in range(0, 16, 2)] + [(0, 36, 110), (6, 36, 100), (8, 36, 110), (4, 38, 110), (12, 38, 110)]
_FILL = [(s, n, 100) for s, n in zip(range(0, 12, 1), (50, 50, 48, 48, 47, 47, 45, 45, 43, 43, 41, 41))] + [
    (12, 49, 120),
    (12, 36, 120),
]
_RIDE = [(s, 51, 85) for s in range(0, 16, 2)] + [(0, 36, 110), (6, 38, 100), (9, 36, 100), (12, 38, 110)]
_FOUR = [(s, 36, 115) for s in range(0, 16, 4)] + [(s, 46, 80) for s in range(2, 16, 4)] + [(4, 39, 100), (12, 39, 100)]
_ROLL = [(s, 38, 60 + 4 * s) for s in range(12)] + [(12, 49, 120), (12, 35, 120)]
_LATIN = [(0, 36, 110), (3, 37, 90), (6, 37, 90), (8, 36, 100), (10, 37, 90), (12, 37, 90)] + [
    (s, 70, 70) for s in range(0, 16, 2)
]
DRUM_PATTERNS = {"rock": _ROCK, "fill": _FILL, "ride": _RIDE, "four": _FOUR, "roll": _ROLL, "latin": _LATIN}
INSTRUMENT_SOURCES = ("sf_GMbank", "TimGM6mb", "freepats", "OPL3_FM", "FluidR3_GM")


def instrument_items(source: str, per_class: int = 12) -> list[Item]:
    """The sounds one source plays: every program of each class in turn, with a phrase,
    transposition and velocity drawn per source (seeded), so that the notes say nothing about
    the source and the same score is rarely played by two sources (else a melody matcher would
    find the same class in another source without hearing the timbre)."""
    rng = random.Random(f"instruments:{source}")
    items = []
    for cls, (programs, base) in INSTRUMENT_CLASSES.items():
        combos = [(ph, tr) for ph in PHRASES for tr in TRANSPOSE]
        rng.shuffle(combos)
        for i in range(per_class):
            prog = programs[i % len(programs)]
            phrase, tr = combos[i]
            vel = rng.choice(VELOCITY)
            notes = [(t, d, base + tr + s, vel) for t, d, s in PHRASES[phrase]]
            items.append(
                Item(
                    f"{cls}_{i:02d}_p{prog}_{phrase}_t{tr}",
                    cls,
                    notes,
                    program=prog,
                    info={"program": prog, "phrase": phrase, "transpose": tr, "velocity": vel},
                )
            )
    combos = [(pat, tempo) for pat in DRUM_PATTERNS for tempo in (1.0, 0.9, 0.8)]
    rng.shuffle(combos)
    for i in range(per_class):
        pat, tempo = combos[i]
        step, vscale = 0.125 / tempo, rng.choice((1.0, 0.9, 0.75))
        notes = [(s * step, 0.1, n, max(1, min(127, int(v * vscale)))) for s, n, v in DRUM_PATTERNS[pat]]
        items.append(
            Item(
                f"drums_{i:02d}_{pat}_t{tempo}",
                "drums",
                notes,
                bank=128,
                program=0,
                tail_s=0.6,
                info={"pattern": pat, "tempo": tempo, "velocity_scale": vscale},
            )
        )
    return items


def build_instruments(out: Path) -> dict:
    w = Writer("instruments", out)
    shared, near = add_rendered(
        w,
        "instruments",
        INSTRUMENT_SOURCES,
        instrument_items,
        [(0, p, (base - 12, base, base + 12)) for programs, base in INSTRUMENT_CLASSES.values() for p in programs],
    )
    w.audit_shared()
    return w.close(
        {
            "classes": {k: {"programs": v[0], "base_pitch": v[1]} for k, v in INSTRUMENT_CLASSES.items()}
            | {"drums": {"kit": 0, "patterns": list(DRUM_PATTERNS)}},
            "phrases": PHRASES,
            "shared_presets": {
                f"{a}:{b}/{c}": f"{o} (probe xcorr {x})" for (a, b, c), (o, x) in sorted(shared.items())
            },
            "probe_xcorr_above_0.85": near,
            "shared_sample_audit": f"same label, other group, peak xcorr of the first 1 s > {SHARED_XCORR}: "
            f"the copy from the later of {list(AUDIT_PRIORITY)} is dropped",
            "sources": {
                s: {"file": str(SYNTHS[s].file), "group": SYNTHS[s].group, "fluid": SYNTHS[s].fluid} for s in INSTRUMENT_SOURCES
            },
            "rendering": "fluidsynth -ni -R 0 -C 0 -g 0.5 -r 16000 (sf2) or timidity -c freepats.cfg --preserve-silence "
            "-EFreverb=d -EFchorus=d -s 16000 (freepats); one MIDI per source, each sound cut from it",
        }
    )


# ---------------------------------------------------------------------------------------------
# effects
# ---------------------------------------------------------------------------------------------

DRUM_KITS = {
    "sf_GMbank": [0, 16, 24, 25, 32, 40],
    "TimGM6mb": [0, 24, 25],
    "freepats": [0],
    "OPL3_FM": [0],
    "FluidR3_GM": [0, 16, 24, 25, 32, 40],
}
SFX_VARIANTS = ((60, 110), (55, 80), (66, 127))

LMMS_FILES = {
    "kick": ["drums/bassdrum*", "drums/kick*"],
    "snare": ["drums/snare0*", "drums/snare_[!r]*", "drums/nasty_snare*"],
    "hihat": ["drums/hihat*"],
    "tom": ["drums/tom*"],
    "clap": ["drums/clap*"],
    "cymbal": ["drums/crash*", "drums/ride*"],
    "shaker": ["drums/shaker*"],
    "rim": ["drums/rim*", "drums/sidestick*", "drums/snare_rim*", "drums/nasty_rim*"],
    "explosion": ["effects/explode01.ogg"],
    "applause": ["misc/applause01.ogg", "misc/raving_crowd01.ogg"],
}
STK_FILES = {
    "explosion": ["sfx/explosion.ogg"],
    "crash": ["sfx/crash.ogg", "sfx/crash2.ogg", "sfx/crash3.ogg"],
    "car": ["sfx/engine_large.ogg", "sfx/engine_small.ogg", "sfx/car_accel.ogg", "sfx/car_revup.ogg"],
    "aircraft": ["sfx/airplane_jetEngine.ogg"],
    "train": ["library/stklib_steamLocomotive_a/steamLocomotive.ogg", "tracks/black_forest/steamLocomotive.ogg"],
    "bird": ["sfx/exotic-birds.ogg", "sfx/exotic-birds_2.ogg"],
    "animal": ["tracks/scotland/sheep.ogg", "tracks/black_forest/cow.ogg"],
    "water": ["sfx/rain.ogg", "sfx/river_loop.ogg", "sfx/waterfall_loop_2.ogg", "sfx/splash.ogg"],
    "thunder": ["sfx/thunder.ogg"],
    "horn": ["sfx/horn.ogg"],
}
FREEDESKTOP_FILES = {"telephone": ["phone-incoming-call.oga", "phone-outgoing-calling.oga"]}
#: OpenSFX entry index -> category (toyland mixes with cartoon sounds and UI sounds are left out)
OPENSFX = {
    17: "crash",
    19: "crash",
    15: "crash",
    16: "crash",
    18: "explosion",
    25: "car",
    26: "car",
    27: "car",
    28: "car",
    8: "aircraft",
    9: "aircraft",
    59: "aircraft",
    61: "aircraft",
    69: "aircraft",
    24: "aircraft",
    4: "train",
    5: "train",
    10: "train",
    65: "train",
    71: "train",
    66: "bird",
    72: "bird",
    36: "animal",
    37: "animal",
    38: "animal",
    67: "animal",
    68: "animal",
    46: "water",
    51: "water",
    52: "wind",
    57: "wind",
    29: "applause",
    3: "horn",
    6: "horn",
    7: "horn",
    35: "horn",
    41: "shaker",
    45: "shaker",
}


def opensfx_groups(entries: list[dict]) -> dict[int, str]:
    """Entry index -> recording group: connected components of entries that share an original."""
    parent = {e["index"]: e["index"] for e in entries}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    seen: dict[str, int] = {}
    for e in entries:
        for o in e["originals"]:
            o = o.lower()
            if o in seen:
                parent[find(e["index"])] = find(seen[o])
            else:
                seen[o] = e["index"]
    first: dict[int, dict] = {}  # component -> its lowest-index entry, which names the group
    for e in entries:
        first.setdefault(find(e["index"]), e)
    name = lambda e: re.sub(r"[^A-Za-z0-9]+", "_", e["originals"][0]).strip("_")[:40]
    return {e["index"]: "opensfx/" + name(first[find(e["index"])]) for e in entries}


def effect_items(synth: str) -> list[Item]:
    items = []
    for cat, notes in DRUM_NOTES.items():
        for kit in DRUM_KITS.get(synth, []):
            for note in notes:
                for vel in (100,) if len(DRUM_KITS[synth]) > 1 else (100, 60):
                    items.append(
                        Item(
                            f"{cat}_kit{kit}_n{note}_v{vel}",
                            cat,
                            [(0.0, 0.2, note, vel)],
                            bank=128,
                            program=kit,
                            tail_s=2.3,
                            info={"kit": kit, "note": note, "velocity": vel},
                        )
                    )
    if synth != "FluidR3_GS":
        for prog, cat in GM_SFX.items():
            for pitch, vel in SFX_VARIANTS:
                items.append(
                    Item(
                        f"{cat}_b0p{prog}_n{pitch}_v{vel}",
                        cat,
                        [(0.0, 2.0, pitch, vel)],
                        bank=0,
                        program=prog,
                        info={"bank": 0, "program": prog, "pitch": pitch, "velocity": vel},
                    )
                )
    if synth in ("sf_GMbank", "FluidR3_GS"):
        for (bank, prog), cat in GS_SFX.items():
            for pitch, vel in SFX_VARIANTS:
                items.append(
                    Item(
                        f"{cat}_b{bank}p{prog}_n{pitch}_v{vel}",
                        cat,
                        [(0.0, 2.0, pitch, vel)],
                        bank=bank,
                        program=prog,
                        info={"bank": bank, "program": prog, "pitch": pitch, "velocity": vel},
                    )
                )
    return items


EFFECT_SYNTHS = ("sf_GMbank", "TimGM6mb", "freepats", "OPL3_FM", "FluidR3_GM", "FluidR3_GS")


def build_effects(out: Path, cap: int = 16) -> dict:
    w = Writer("effects", out)
    # recordings
    entries = opensfx_entries()
    groups = opensfx_groups(entries)
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            if e["index"] not in OPENSFX:
                continue
            p = Path(tmp) / f"opensfx_{e['index']}.wav"
            p.write_bytes(e["wav"])
            y = _load_file(p)
            for k, piece in enumerate(excerpts(y) if y is not None else [None]):
                w.add(
                    f"opensfx_{e['index']:02d}_{e['name']}_{k}",
                    finish(piece) if piece is not None else None,
                    label=OPENSFX[e["index"]],
                    source="opensfx",
                    group=groups[e["index"]],
                    entry=e["index"],
                    name=e["name"],
                    credit=e["credit"],
                )
    require_debian_package("supertuxkart-data", STK / "sfx")
    require_debian_package("lmms-common", LMMS)
    require_debian_package("sound-theme-freedesktop", FREEDESKTOP)
    for collection, root, table in (
        ("supertuxkart", STK, STK_FILES),
        ("lmms", LMMS, LMMS_FILES),
        ("freedesktop", FREEDESKTOP, FREEDESKTOP_FILES),
    ):
        for cat, patterns in table.items():
            files = sorted({p for pat in patterns for p in root.glob(pat) if p.is_file()})
            for f in files:
                y = _load_file(f)
                rel = f.relative_to(root).as_posix()
                for k, piece in enumerate(excerpts(y) if y is not None else [None]):
                    w.add(
                        f"{collection}_{rel.rsplit('.', 1)[0]}_{k}",
                        finish(piece) if piece is not None else None,
                        label=cat,
                        source=collection,
                        group=collection,
                        file=str(f),
                        excerpt=k,
                    )
    # synthesisers
    pitches = tuple(p for p, _ in SFX_VARIANTS)
    shared, near = add_rendered(
        w, "effects", EFFECT_SYNTHS, effect_items, [(0, p, pitches) for p in GM_SFX] + [(b, p, pitches) for b, p in GS_SFX]
    )
    w.audit_shared()
    w.cap(cap)
    return w.close(
        {
            "cap_per_label_and_source": cap,
            "shared_presets": {
                f"{a}:{b}/{c}": f"{o} (probe xcorr {x})" for (a, b, c), (o, x) in sorted(shared.items())
            },
            "probe_xcorr_above_0.85": near,
            "shared_sample_audit": f"same label, other group, peak xcorr of the first 1 s > {SHARED_XCORR}: "
            f"the copy from the later of {list(AUDIT_PRIORITY)} is dropped",
            "drum_notes": DRUM_NOTES,
            "drum_kits": DRUM_KITS,
            "gm_sfx_programs": GM_SFX,
            "gs_sfx_presets": {f"{b}/{p}": c for (b, p), c in GS_SFX.items()},
            "opensfx_groups": {str(i): groups[i] for i in OPENSFX},
            "long_recordings": "recordings longer than 6 s give three evenly spaced 4 s excerpts (same group)",
        }
    )


# ---------------------------------------------------------------------------------------------
# speech
# ---------------------------------------------------------------------------------------------

#: Harvard sentences (IEEE 1969, lists 1-2)
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
)
#: (espeak-ng voice, words per minute, pitch 0-99): accents that data/render.py never uses
VOICES = (
    ("en-gb-scotland", 165, 45),
    ("en-gb-x-rp+f2", 155, 60),
    ("en-gb-x-gbclan+m3", 175, 40),
    ("en-gb-x-gbcwmd+f4", 160, 55),
    ("en-029+m5", 150, 50),
    ("en-us-nyc+f5", 180, 65),
    ("en-gb-scotland+klatt3", 170, 50),
    ("en-us-nyc+m7", 145, 35),
)


def build_speech(out: Path) -> dict:
    require_debian_package("espeak-ng", Path("/usr/bin/espeak-ng"))
    import soxr

    w = Writer("speech", out)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        for voice, wpm, pitch in VOICES:
            for s, text in enumerate(SENTENCES):
                subprocess.run(
                    ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(raw), "--", text],
                    check=True,
                    capture_output=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                )
                y, sr = sf.read(str(raw), dtype="float32", always_2d=True)
                y = soxr.resample(y.mean(axis=1), sr, SR).astype(np.float32)
                w.add(
                    f"s{s:02d}_{voice}",
                    finish(y),
                    label=f"s{s:02d}",
                    source=voice,
                    group=voice,
                    text=text,
                    wpm=wpm,
                    pitch=pitch,
                )
    return w.close(
        {
            "sentences": {f"s{i:02d}": t for i, t in enumerate(SENTENCES)},
            "voices": [{"voice": v, "wpm": s, "pitch": p} for v, s, p in VOICES],
            "training_speech": "data/render.py speech: random word salad (WORDS lists) in en-gb, en-us, de, "
            "fr-fr, es, it, nl, pt, pt-br, sv, pl with random +variants",
        }
    )


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------

BUILDERS = {"instruments": build_instruments, "effects": build_effects, "speech": build_speech}


def load_set(name: str, *, rebuild: bool = False) -> list[Record]:
    """The records of one set, building it first when its manifest is missing (or ``rebuild``)."""
    out = OUT / name
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if rebuild or manifest is None or manifest.get("version") != BUILD_VERSION:
        if out.exists():
            for p in out.glob("*.wav"):
                p.unlink()
        t = time.perf_counter()
        print(f"building sound set {name} in {out}", file=sys.stderr)
        manifest = BUILDERS[name](out)
        print(
            f"  {name}: {len(manifest['sounds'])} sounds, {manifest['total_s'] / 60:.1f} min, "
            f"built in {time.perf_counter() - t:.0f} s",
            file=sys.stderr,
        )
    return [
        Record(
            path=out / e["file"],
            label=e["label"],
            source=e["source"],
            set=name,
            group=e["group"],
            fluid=e["fluid"],
            duration_s=e["duration_s"],
            padded_s=e["padded_s"],
            info=e["info"],
        )
        for e in manifest["sounds"]
    ]


def load_sets(names=SETS, *, rebuild: bool = False) -> list[Record]:
    """Records of several sets, in order."""
    return [r for n in names for r in load_set(n, rebuild=rebuild)]


def check_sources() -> dict:
    """Byte-identical samples shared between soundfonts, per preset (the independence check)."""
    fonts = {n: soundfont_presets(SYNTHS[n].file) for n in ("sf_GMbank", "TimGM6mb", "OPL3_FM", "FluidR3_GM", "FluidR3_GS")}
    out = {}
    names = list(fonts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            all_a = {h for _, s in fonts[a].values() for h in s}
            shared = {
                f"{bank}/{prog}": f"{len(s & all_a)}/{len(s)}"
                for (bank, prog), (_, s) in sorted(fonts[b].items())
                if s & all_a
            }
            out[f"{a}~{b}"] = {
                "presets_of_b_with_shared_samples": len(shared),
                "presets_of_b": len(fonts[b]),
                "detail": shared,
            }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--rebuild", action="store_true", help="render again even if the cache is there")
    ap.add_argument("--check-sources", action="store_true", help="print samples shared between soundfonts")
    args = ap.parse_args(argv)
    if args.check_sources:
        for pair, r in check_sources().items():
            a, b = pair.split("~")
            print(f"{b}: {r['presets_of_b_with_shared_samples']}/{r['presets_of_b']} presets share samples with {a}")
        return 0
    for name in args.sets:
        recs = load_set(name, rebuild=args.rebuild)
        labels = sorted({r.label for r in recs})
        sources = sorted({r.source for r in recs})
        print(
            f"{name}: {len(recs)} sounds, {len(labels)} labels, {len(sources)} sources "
            f"({', '.join(sources)}), {sum(r.duration_s for r in recs) / 60:.1f} min, "
            f"{sum(r.padded_s > 0 for r in recs)} padded"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
