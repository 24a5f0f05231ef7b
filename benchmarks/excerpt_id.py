"""Excerpt identification: find where a degraded clip comes from in a library of real music, and
say so when a clip is from no recording in it.

Library (``--library 2h``, the default): the SuperTuxKart music (OGG, 51 min) and 70 min of
held-out music21 works rendered with sf_GMbank (``common.heldout_music("library")``): 2 hours, none
of it used in training (``stk``: the SuperTuxKart part only, as in earlier figures). Queries: clips
of 3 s and 10 s from random places in each piece, under six conditions:

  clean      the excerpt as it is
  noise10    pink noise + speech babble (equal power) at 10 dB SNR
  noise0     the same at 0 dB SNR
  mp3_32k    MP3 at 32 kbps (libmp3lame through PyAV), from the 44.1 kHz source
  room       synthetic room reverb (RT60 0.3-0.8 s) + telephone band (300-3400 Hz, 8 kHz) + babble at 15 dB
  tempo5     5 % faster and 50 cents higher (phase vocoder, then resampling)

A query is correct at top-1 when the first result is the source piece; ``offset`` also asks for its
offset within ±0.5 s of the true one; ``matched`` asks for top-1 correct *and* within the engine's
match threshold. Outsiders: the same clips cut from 30 min of other held-out works
(``heldout_music("outsiders")``), never indexed, less any that share a tune or phrase with a library
work (``common.sharing_music``: 12 identical notes in a row); ``false_match`` is the share of them
the engine calls matched. Prints the machine, indexing speed (× realtime, model loaded), ms per
query, and the figures per condition; writes benchmarks/results/excerpt_id.json.

    python benchmarks/excerpt_id.py [--clips-per-file 2] [--model default]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import babble_speech, heldout_music, result_header, stk_music_library, without_shared_music, write_result  # noqa: E402

from indexer import Indexer  # noqa: E402
from search_engine import SearchEngine  # noqa: E402
from search_engine.audio import load  # noqa: E402
from search_engine.audio2vec import augment  # noqa: E402
from search_engine.catalog import path_key  # noqa: E402

SR = 16000
CONDITIONS = ("clean", "noise10", "noise0", "mp3_32k", "room", "tempo5")


def degrade(condition: str, clip: np.ndarray, clip44: np.ndarray, speech, rng) -> np.ndarray:
    """One query waveform at 16 kHz for ``condition``."""
    def noise(n):
        return augment.pink_noise(n, rng=rng) + augment.babble(speech, n, sr=SR, rng=rng)

    if condition == "clean":
        return clip
    if condition in ("noise10", "noise0"):
        return augment.mix_at_snr(clip, noise(len(clip)), snr_db=10.0 if condition == "noise10" else 0.0, rng=rng)
    if condition == "mp3_32k":
        import soxr

        return soxr.resample(augment.codec(clip44, sr=44100, codec="mp3", bitrate_kbps=32), 44100, SR).astype(np.float32)
    if condition == "room":
        wet = augment.reverb(clip, augment.synth_room_ir(sr=SR, rt60_s=rng.uniform(0.3, 0.8), rng=rng))
        phone = augment.telephone(wet, sr=SR)
        return augment.mix_at_snr(phone, augment.babble(speech, len(phone), sr=SR, rng=rng), snr_db=15.0, rng=rng)
    if condition == "tempo5":
        pitch = 2.0 ** (50 / 1200)  # stretch by 1.05 / pitch, then speed up by pitch: tempo 1.05, +50 cents
        return augment.speed(augment.time_stretch(clip, rate=1.05 / pitch), rate=pitch)
    raise ValueError(condition)


def library(name: str) -> list[Path]:
    return stk_music_library() + (heldout_music("library") if name == "2h" else [])


def cut_clips(files, durations, per_file: int, rng) -> tuple[list, dict]:
    """``[(path, seconds, start)]`` and ``{path: waveform}``: the same start times serve every condition."""
    sources, audio = [], {}
    for path in files:
        y = audio[path_key(path)] = load(path, sr=SR)[0]
        for seconds in durations:
            if len(y) < (seconds + 1) * SR:
                continue
            for _ in range(per_file):
                start = float(rng.uniform(0, len(y) / SR - seconds))
                sources.append((path_key(path), seconds, start))
    return sources, audio


def degraded_batch(cond: str, seconds: float, sources, audio, speech, rng) -> tuple[list, list]:
    """Query waveforms of ``cond`` for the ``seconds``-long clips in ``sources``, and their truth."""
    batch, truth, cache44 = [], [], {}
    for path, dur, start in sources:
        if dur != seconds:
            continue
        clip = audio[path][int(start * SR) : int((start + dur) * SR)]
        clip44 = None
        if cond == "mp3_32k":
            if path not in cache44:
                cache44 = {path: load(path, sr=44100)[0]}
            clip44 = cache44[path][int(start * 44100) : int((start + dur) * 44100)]
        batch.append((degrade(cond, clip, clip44, speech, rng), SR))
        truth.append((path, start))
    return batch, truth


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips-per-file", type=int, default=2)
    ap.add_argument("--durations", type=float, nargs="+", default=[3.0, 10.0])
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    ap.add_argument("--model", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=Path, help="keep the index here (default: a temporary folder)")
    ap.add_argument("--library", choices=["2h", "stk"], default="2h")
    ap.add_argument("--no-outsiders", action="store_true", help="skip the not-in-library clips")
    ap.add_argument("--name", default="excerpt_id", help="result file name under benchmarks/results/")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    files = library(args.library)
    speech = [load(p, sr=SR)[0] for p in babble_speech()]
    index_dir = args.index or Path(tempfile.mkdtemp(prefix="a2v_bench_"))
    if index_dir.exists():
        shutil.rmtree(index_dir)

    t0 = time.perf_counter()
    engine = SearchEngine.create(index_dir, model=args.model)
    engine.encoder.build()
    load_s = time.perf_counter() - t0
    report = Indexer(engine).add(files)
    print(f"indexed {report.added} files, {report.audio_s / 60:.1f} min in {report.seconds:.1f} s "
          f"= {report.realtime_factor:.0f}x realtime (model load {load_s:.1f} s, not counted)", file=sys.stderr)

    sources, audio = cut_clips(files, args.durations, args.clips_per_file, rng)
    outsiders, outsider_audio = ([], {}) if args.no_outsiders else cut_clips(
        without_shared_music(heldout_music("outsiders"), files), args.durations, args.clips_per_file, rng)
    threshold = {f"{s:g}s": round(engine.match_threshold(s), 4) for s in args.durations}
    results = {}
    for cond in args.conditions:
        for seconds in args.durations:
            batch, truth = degraded_batch(cond, seconds, sources, audio, speech, rng)
            t = time.perf_counter()
            answers = engine.query_batch(batch, k=5)
            ms = (time.perf_counter() - t) * 1000 / max(1, len(batch))
            top1 = [bool(a.matches) and a.matches[0].path == p for a, (p, _) in zip(answers, truth)]
            off = [ok and abs(a.matches[0].offset_s - s) <= 0.5 for ok, a, (_, s) in zip(top1, answers, truth)]
            top5 = [any(m.path == p for m in a.matches) for a, (p, _) in zip(answers, truth)]
            key = f"{cond}/{seconds:g}s"
            r = results[key] = {
                "queries": len(batch),
                "top1": round(float(np.mean(top1)), 4),
                "top1_with_offset": round(float(np.mean(off)), 4),
                "top5": round(float(np.mean(top5)), 4),
                "matched": round(float(np.mean([ok and a.matched for ok, a in zip(top1, answers)])), 4),
                "ms_per_query": round(ms, 1),
            }
            if outsiders:
                o_batch, _ = degraded_batch(cond, seconds, outsiders, outsider_audio, speech, rng)
                o_answers = engine.query_batch(o_batch, k=1)
                r["outsiders"] = len(o_batch)
                r["false_match"] = round(float(np.mean([bool(a.matched) for a in o_answers])), 4)
            print(f"{key:<16} n={len(batch):3d} top1={r['top1']:.3f} (+offset {r['top1_with_offset']:.3f}) "
                  f"top5={r['top5']:.3f} matched={r['matched']:.3f} false_match={r.get('false_match', float('nan')):.3f} "
                  f"{ms:.0f} ms/query", file=sys.stderr)

    out = {
        **result_header("excerpt_id", argv),
        "model_id": engine.encoder.model_id,
        "library": {"name": args.library, "files": report.added, "minutes": round(report.audio_s / 60, 2),
                    "source": "supertuxkart-data music" + (" + held-out music21 works (sf_GMbank)" if args.library == "2h" else "")},
        "match_threshold": threshold,
        "indexing": {"seconds": round(report.seconds, 2), "realtime_factor": round(report.realtime_factor, 1)},
        "results": results,
        "top1_mean": round(float(np.mean([r["top1"] for r in results.values()])), 4),
    }
    engine.close()
    if args.index is None:
        shutil.rmtree(index_dir, ignore_errors=True)
    print(f"wrote {write_result(args.name, out)}", file=sys.stderr)
    print(_table(out))
    return 0


def _table(out: dict) -> str:
    m = out["machine"]
    lines = [
        f"machine: {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB)   model {out['model_id']}",
        f"library: {out['library']['files']} files, {out['library']['minutes']} min; "
        f"indexing {out['indexing']['realtime_factor']}x realtime",
        f"{'condition':<16}{'n':>5}{'top1':>8}{'+offset':>9}{'top5':>7}{'matched':>9}{'false':>7}{'ms/query':>10}",
    ]
    for key, r in out["results"].items():
        lines.append(f"{key:<16}{r['queries']:>5}{r['top1']:>8.3f}{r['top1_with_offset']:>9.3f}{r['top5']:>7.3f}"
                     f"{r['matched']:>9.3f}{r.get('false_match', float('nan')):>7.3f}{r['ms_per_query']:>10.1f}")
    lines.append(f"mean top1 over all: {out['top1_mean']:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
