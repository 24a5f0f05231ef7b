#!/usr/bin/env python
"""Render labelled "kinds of sound" for the similarity objective (``audio2vec train --objective similarity``).

Writes ``OUT/<label>/<name>.wav`` (16 kHz mono, the folder is the label) and ``OUT/manifest.json``.
Every label is rendered by more than one source with other notes, so that what the sounds of one
label share is the kind of sound, not the recording:

``instruments``  every General MIDI melodic program (0-111) by family (piano, chromatic percussion,
    organ, guitar, bass, strings (string ensembles included), voice, brass, reed, pipe, synth lead,
    synth pad, synth effects, ethnic), random short phrases (1-6 notes, chords) in the family's
    register, plus random drum-kit grooves (label ``drums``);
``drums``        single drum-kit hits by kind (kick, snare, hihat, tom, clap, cymbal, shaker, rim);
``sfx``          GM and GS sound-effect presets by category (water, thunder, wind, animal, bird,
    telephone, car, crash, train, aircraft, applause, explosion);
``synth``        the same labels (less ``synth_effects`` and ``ethnic``, plus ``horn``) synthesised in
    code by ``data/kind_synth.py``, one random patch per sound: a timbre source no soundfont shares;
``samples``      instrument families played by a sampler from LMMS's recorded instrument samples
    (``lmms-common``: pianos, organs, guitars, basses, strings, trumpet, flute, choirs, pads, bells;
    not its drums and effects, which the benchmark uses), each sound a phrase of notes pitched by
    resampling one recording, or an excerpt of it: a third, recorded, timbre source;
``speech``       random word-salad sentences, each spoken by several espeak-ng voices and languages
    (label = the text: "the same words, other voices").

Sources are kept disjoint from the similar-sound benchmark's independent sources (sf_GMbank,
TimGM6mb, freepats, OPL-3 FM, the recorded collections): instruments, drums and GM effects come
from FluidR3_GM and MuseScore_General_Lite, GS effects from FluidR3_GS, all Fluid-family renders
that ``benchmarks/similar_sounds.py`` leaves out of its main figures. Speech uses voice variants and
languages of ``data/render.py speech``; the benchmark's sentences and accents are not used.

    python data/kinds.py --out /work/train_audio/kinds --per-program 8 --seed 1
    python data/kinds.py --out /work/train_audio/synth200 --parts synth --synth 200 --seed 5
    python data/kinds.py --out /work/train_audio/lmms200 --parts samples --samples 200 --seed 6
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import render as speech_render  # noqa: E402  (data/render.py)
import kind_synth  # noqa: E402  (data/kind_synth.py)
from rendering import DRUM_NOTES, GM_SFX, GS_SFX, Item, Synth, is_silent, pad_to, peak_normalise, render_items, soundfont_presets  # noqa: E402
from search_engine.audio import load  # noqa: E402
from system import require_debian_package  # noqa: E402

SR = 16000
MIN_S = 1.1
SF2, SF3 = Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3")
#: the training synthesisers (each its own group)
TRAIN_SYNTHS = {
    "FluidR3_GM": Synth("FluidR3_GM", "fluidsynth", SF2 / "FluidR3_GM.sf2", "fluid-soundfont-gm", "FluidR3_GM", fluid=True),
    "MuseScore_Lite": Synth("MuseScore_Lite", "fluidsynth", SF3 / "MuseScore_General_Lite.sf3",
                            "musescore-general-soundfont-small", "MuseScore_Lite", fluid=True),
    "FluidR3_GS": Synth("FluidR3_GS", "fluidsynth", SF2 / "FluidR3_GS.sf2", "fluid-soundfont-gs", "FluidR3_GS", fluid=True),
}

#: GM family -> (programs, typical lowest pitch of its register)
FAMILIES = {
    "piano": (range(0, 8), 48),
    "chromatic_percussion": (range(8, 16), 60),
    "organ": (range(16, 24), 48),
    "guitar": (range(24, 32), 45),
    "bass": (range(32, 40), 28),
    "strings": (list(range(40, 52)), 45),
    "voice": (range(52, 55), 52),
    "brass": (range(56, 64), 45),
    "reed": (range(64, 72), 50),
    "pipe": (range(72, 80), 64),
    "synth_lead": (range(80, 88), 55),
    "synth_pad": (range(88, 96), 48),
    "synth_effects": (range(96, 104), 50),
    "ethnic": (range(104, 112), 55),
}
PARTS = ("soundfonts", "speech", "synth", "samples")
LMMS_SAMPLES = Path("/usr/share/lmms/samples")
#: GM family -> LMMS recorded samples (globs under LMMS_SAMPLES) a sampler plays it with
SAMPLER_FAMILIES = {
    "piano": ["instruments/piano0*", "instruments/e_piano*", "instruments/harpsichord*"],
    "chromatic_percussion": ["stringsnpads/bell_choir*"],
    "organ": ["instruments/*organ*"],
    "guitar": ["instruments/steel_guitar*", "latin/latin_guitar*"],
    "bass": ["instruments/bassslap*", "basses/bass_hard*", "basses/bass_acid02*", "basses/matrix1000*"],
    "strings": ["instruments/cello*", "instruments/violin*", "stringsnpads/*string*"],
    "voice": ["stringsnpads/chorus*", "stringsnpads/rave_choir*"],
    "brass": ["instruments/trumpet*", "latin/latin_brass*"],
    "pipe": ["instruments/flute*"],
    "synth_pad": ["stringsnpads/juno_pad*", "stringsnpads/nord_ambient*", "stringsnpads/korg_poly6*"],
}
SCALE = (0, 2, 4, 5, 7, 9, 11, 12, 14, 16)
GROOVE_NOTES = {"kick": (35, 36), "snare": (38, 40), "hat": (42, 44, 46, 51), "perc": (37, 39, 45, 48, 69, 70, 54, 56)}


def phrase(rng: random.Random, low: int) -> list[tuple[float, float, int, int]]:
    """Random notes ``(onset_s, dur_s, pitch, velocity)``: 1-6 notes or a chord, 1.2-3 s long."""
    base = low + rng.randint(0, 17)
    vel = rng.randint(55, 125)
    kind = rng.random()
    if kind < 0.2:  # one held note
        return [(0.0, rng.uniform(0.8, 2.4), base, vel)]
    if kind < 0.35:  # a chord
        dur = rng.uniform(0.8, 2.2)
        return [(0.0, dur, base + s, vel) for s in rng.choice(((0, 4, 7), (0, 3, 7), (0, 7, 12), (0, 5, 9)))]
    notes, t = [], 0.0
    for _ in range(rng.randint(2, 6)):
        d = rng.choice((0.15, 0.25, 0.3, 0.4, 0.6))
        notes.append((t, d * rng.uniform(0.7, 1.0), base + rng.choice(SCALE), max(1, min(127, vel + rng.randint(-15, 15)))))
        t += d
    return notes


def groove(rng: random.Random) -> list[tuple[float, float, int, int]]:
    """A random one- or two-bar drum pattern, 1.5-3 s."""
    step = rng.uniform(0.1, 0.16)
    notes = []
    for s in range(rng.choice((12, 16))):
        for part, p in (("kick", 0.3), ("snare", 0.25), ("hat", 0.6), ("perc", 0.12)):
            if rng.random() < p:
                notes.append((s * step, 0.1, rng.choice(GROOVE_NOTES[part]), rng.randint(60, 120)))
    return notes or [(0.0, 0.1, 36, 100)]


def items_for(name: str, presets: set[tuple[int, int]], per_program: int, seed: int) -> list[Item]:
    """The sounds one synth renders (only presets it has)."""
    rng = random.Random(f"kinds:{name}:{seed}")
    items = []
    if name != "FluidR3_GS":
        for fam, (programs, low) in FAMILIES.items():
            for prog in programs:
                if (0, prog) not in presets:
                    continue
                variants = sorted(b for b, p in presets if p == prog and 0 < b < 128)
                for i in range(per_program):
                    bank = rng.choice(variants) if variants and rng.random() < 0.3 else 0
                    items.append(Item(f"{fam}_{name}_b{bank}p{prog}_{i}", fam, phrase(rng, low), bank=bank, program=prog))
        kits = sorted(p for b, p in presets if b == 128)
        for i in range(per_program * 8):
            kit = rng.choice(kits)
            items.append(Item(f"drums_{name}_k{kit}_{i}", "drums", groove(rng), bank=128, program=kit, tail_s=0.6))
        for cat, notes in DRUM_NOTES.items():
            for i in range(per_program * 4):
                kit, note, vel = rng.choice(kits), rng.choice(notes), rng.randint(50, 127)
                hits = [(0.0, 0.2, note, vel)]
                if rng.random() < 0.4:  # a few hits of the same drum
                    hits += [(k * rng.uniform(0.12, 0.3), 0.2, note, rng.randint(50, 127)) for k in range(1, rng.randint(2, 4))]
                items.append(Item(f"{cat}_{name}_k{kit}_n{note}_{i}", cat, hits, bank=128, program=kit, tail_s=1.5))
    sfx = {(0, p): c for p, c in GM_SFX.items()} if name != "FluidR3_GS" else dict(GS_SFX)
    for (bank, prog), cat in sfx.items():
        if (bank, prog) not in presets:
            continue
        for i in range(per_program):
            pitch, dur = rng.randint(48, 72), rng.uniform(1.0, 3.0)
            items.append(Item(f"{cat}_{name}_b{bank}p{prog}_{i}", cat, [(0.0, dur, pitch, rng.randint(70, 127))], bank=bank, program=prog))
    return items


def finish(y: np.ndarray) -> np.ndarray | None:
    """Peak -1 dBFS, padded with silence to one model window (float32 at SR); None if silent."""
    if is_silent(y):
        return None
    return pad_to(peak_normalise(y, -1.0), int(MIN_S * SR))


def save(out: Path, label: str, name: str, y: np.ndarray | None, source: str, **info) -> list[dict]:
    """Write a sound, :func:`finish`-ed, as ``OUT/<label>/<name>.wav``: its manifest entry in a
    list, or an empty list when there is no usable sound (missing, silent or not finite)."""
    y = finish(y) if y is not None and np.all(np.isfinite(y)) else None
    if y is None:
        return []
    (out / label).mkdir(parents=True, exist_ok=True)
    f = out / label / f"{name}.wav"
    sf.write(f, y, SR, subtype="PCM_16")
    return [{"file": str(f.relative_to(out)), "label": label, "source": source, **info}]


def render_speech(out: Path, texts: int, voices_per_text: int, seed: int, tmp: Path) -> list[dict]:
    """Each of ``texts`` random sentences spoken by ``voices_per_text`` voice variants (label = the text)."""
    import librosa

    rng = random.Random(f"kinds:speech:{seed}")
    langs, variants = speech_render.espeak_languages(), speech_render.espeak_variants()
    entries = []
    for t in range(texts):
        lang = rng.choice(langs)
        text = speech_render.make_sentence(rng, lang, rng.randint(4, 8))
        label = f"speech{seed}_{t:04d}"  # the seed keeps sentences of two renders apart
        for v in rng.sample(variants, voices_per_text):
            voice = f"{lang}+{v}"
            raw = tmp / "raw.wav"
            speech_render.espeak_render(text, voice, rng.randint(130, 200), rng.randint(25, 75), raw)
            y, _ = librosa.load(raw, sr=SR, mono=True)
            entries += save(out, label, f"{label}_{v}", y, f"espeak:{v}", text=text)
    return entries


def render_synthesised(out: Path, per_label: int, seed: int) -> list[dict]:
    """``per_label`` sounds of every label :mod:`kind_synth` can make, each from its own random patch."""
    rng, notes_rng = np.random.default_rng([seed, 7]), random.Random(f"kinds:synth:{seed}")
    part_of = {p: part for part, ps in GROOVE_NOTES.items() for p in ps}.__getitem__
    makers = {**kind_synth.INSTRUMENTS, "drums": None, **kind_synth.EVENTS}  # None: grooves of synthesised hits
    entries = []
    for label, make in makers.items():
        for i in range(per_label):
            if make is None:
                y = kind_synth.render_groove(rng, groove(notes_rng), part_of)
            elif label in kind_synth.INSTRUMENTS:
                y = kind_synth.render_notes(make(rng), phrase(notes_rng, FAMILIES[label][1]))
            else:
                y = make(rng)
            entries += save(out, label, f"{label}_synth_{i}", y[: int(4 * SR)], "synth")
    return entries


def repitch(y: np.ndarray, ratio: float) -> np.ndarray:
    """``y`` played ``ratio`` times as fast (pitch up and duration down by ``ratio``; linear interpolation)."""
    return np.interp(np.arange(int(len(y) / ratio)) * ratio, np.arange(len(y)), y)


def sampler(y: np.ndarray, root_hz: float, release_s: float) -> "kind_synth.Patch":
    """A patch that plays one recording at any pitch, as a sampler does without loops: the
    recording :func:`repitch`-ed by ``f / root_hz`` from its start, cut at the note's end with a
    ``release_s`` fade, velocity as gain."""

    def note(f: float, dur: float, vel: float) -> np.ndarray:
        x = repitch(y, f / root_hz)[: kind_synth.n_of(dur + release_s)]
        n, held = len(x), kind_synth.n_of(dur)
        if n > held:
            x[held:] *= np.linspace(1.0, 0.0, n - held)
        return x * vel

    return note


def render_sampled(out: Path, per_label: int, seed: int) -> list[dict]:
    """``per_label`` sounds of each :data:`SAMPLER_FAMILIES` family played from its LMMS
    recordings: 70 % a random phrase (the recording pitched by resampling, at most 9 semitones
    from where it was recorded), 30 % an excerpt of up to 3.5 s moved by up to 4 semitones."""
    require_debian_package("lmms-common", LMMS_SAMPLES)
    rng, notes_rng = np.random.default_rng([seed, 11]), random.Random(f"kinds:samples:{seed}")
    entries = []
    for label, globs in SAMPLER_FAMILIES.items():
        recordings = [load(f, sr=SR)[0] for g in globs for f in sorted(LMMS_SAMPLES.glob(g))]
        low = FAMILIES[label][1]
        for i in range(per_label):
            rec = recordings[int(rng.integers(len(recordings)))]
            if rng.random() < 0.3 and len(rec) > 2 * SR:
                n = kind_synth.n_of(rng.uniform(1.5, 3.5))
                start = int(rng.integers(0, max(1, len(rec) - n)))
                y = repitch(rec[start : start + n], 2 ** (rng.uniform(-4, 4) / 12))
            else:
                notes = [(on, d, int(np.clip(p, low, low + 18)), v) for on, d, p, v in phrase(notes_rng, low)]
                y = kind_synth.render_notes(sampler(rec, kind_synth.midi_hz(low + 9), rng.uniform(0.05, 0.3)), notes)
            entries += save(out, label, f"{label}_lmms_{i}", y[: int(4 * SR)], "lmms")
    return entries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-program", type=int, default=8, help="phrases per GM program and synth")
    ap.add_argument("--texts", type=int, default=200, help="speech sentences")
    ap.add_argument("--voices", type=int, default=5, help="voices per sentence")
    ap.add_argument("--synth", type=int, default=0, help="sounds per label synthesised in code (data/kind_synth.py)")
    ap.add_argument("--samples", type=int, default=0, help="sounds per family played from LMMS's recorded samples")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to render")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, synth in (TRAIN_SYNTHS if "soundfonts" in args.parts else {}).items():
            synth.require()
            presets = set(soundfont_presets(synth.file))
            items = items_for(name, presets, args.per_program, args.seed)
            print(f"{name}: {len(presets)} presets, {len(items)} sounds", file=sys.stderr)
            for it, y in zip(items, render_items(synth, items, tmp, SR)):
                entries += save(args.out, it.label, it.key, y, name)
        if "speech" in args.parts:
            entries += render_speech(args.out, args.texts, args.voices, args.seed, tmp)
    if "synth" in args.parts and args.synth:
        entries += render_synthesised(args.out, args.synth, args.seed)
    if "samples" in args.parts and args.samples:
        entries += render_sampled(args.out, args.samples, args.seed)
    (args.out / "manifest.json").write_text(json.dumps(entries, indent=1))
    labels = sorted({e["label"] for e in entries})
    print(f"{len(entries)} sounds, {len(labels)} labels -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
