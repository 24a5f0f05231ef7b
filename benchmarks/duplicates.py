"""Duplicates: does ``SearchEngine.duplicates`` (``audio2vec duplicates``) group the recordings that
hold the same audio, and only those?

Library (``--split report``, the default; none of it used in training): originals are the
SuperTuxKart pieces 1, 3, 5, ... (name order; recorded music; those of 30 s or more) and the first held-out music21 works
of ``heldout_music("library")`` (sf_GMbank, a soundfont training never used) of 40 s or more; each
original gets one planted copy, every third one a second copy of another kind, the kinds in turn:

  transcode   MP3 64 kbps or Vorbis quality 0 (ffmpeg)
  resample    11.025 kHz or 8 kHz, 16-bit WAV (soxr)
  trim        3-15 s cut off the start and 3-15 s off the end (at most a fifth of it each)
  contained   a 20-40 s excerpt from the middle
  intro       8-20 s of music from outside the library, crossfaded into the original from 2-10 s on
  faster      sox ``tempo`` ×1.04 / ×0.96 (pitch kept) or ``speed`` ×1.03 / ×1.05 (tape)

Look-alike non-copies: the other held-out works of that part (same soundfont, same styles: Essen
folk tunes, Palestrina, Bach chorales, O'Neill's Irish tunes, ...), less any that share a tune with
an original (``common.sharing_music``), all in the same library. ``--split dev`` (for choosing the
settings, not reported): SuperTuxKart pieces 0, 2, 4, ... and the held-out ``outsiders`` works,
with the ``calibration_outsiders`` works (60 min more, Ryan's Mammoth hornpipes and jigs among them)
as further look-alikes.
Intros come from SuperTuxKart pieces of the other split (never in the library).

Scored: pairs of files in one predicted group against pairs in one true group (precision,
recall), per kind; groups found exactly; the shared span's start and end against the truth. Then
the time of ``duplicates()`` on the 2-hour library of ``common.music_library_2h`` (SuperTuxKart
OGGs + their MP3 transcodes at 128 and 64 kbps: each piece with its transcodes is a true group;
pairs with a ``_fast`` variant are left out of that score), median of ``--repeats`` runs.

    python benchmarks/duplicates.py [--split report|dev] [--repeats 3] [--no-timing] [--candidate-runs]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, heldout_music, result_header, music_library_2h, sharing_music, stk_music_library, write_result  # noqa: E402

from indexer import Indexer  # noqa: E402
from search_engine import SearchEngine  # noqa: E402
from search_engine.audio import load  # noqa: E402
from search_engine.catalog import path_key  # noqa: E402

KINDS = ("transcode", "resample", "trim", "contained", "intro", "faster")


def _ffmpeg(src: Path, dst: Path, *args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)


def plant(kind: str, src: Path, out: Path, n: int, intro_pool: list[Path], rng) -> tuple[Path, dict]:
    """Write a copy of ``src`` of ``kind`` into ``out``; returns its path and the truth:
    ``{"original": (start_s, end_s), "copy": (start_s, end_s)}`` of the shared audio."""
    y, sr = sf.read(str(src), dtype="float32", always_2d=True)
    dur = len(y) / sr
    stem = f"copy{n:03d}_{kind}_{src.stem}"
    if kind == "transcode":
        if n % 2:
            dst = out / f"{stem}.mp3"
            _ffmpeg(src, dst, "-c:a", "libmp3lame", "-b:a", "64k")
        else:
            dst = out / f"{stem}.ogg"
            _ffmpeg(src, dst, "-c:a", "libvorbis", "-q:a", "0")
        return dst, {"original": (0.0, dur), "copy": (0.0, dur)}
    if kind == "resample":
        import soxr

        rate = 11025 if n % 2 else 8000
        dst = out / f"{stem}.wav"
        sf.write(str(dst), soxr.resample(y, sr, rate), rate, subtype="PCM_16")
        return dst, {"original": (0.0, dur), "copy": (0.0, dur)}
    if kind == "trim":
        a, b = rng.uniform(3, min(15, 0.2 * dur)), rng.uniform(3, min(15, 0.2 * dur))
        dst = out / f"{stem}.flac"
        sf.write(str(dst), y[int(a * sr) : int((dur - b) * sr)], sr)
        return dst, {"original": (a, dur - b), "copy": (0.0, dur - b - a)}
    if kind == "contained":
        length = min(rng.uniform(20, 40), dur - 4)
        s = rng.uniform(2, dur - length - 2)
        dst = out / f"{stem}.wav"
        sf.write(str(dst), y[int(s * sr) : int((s + length) * sr)], sr, subtype="PCM_16")
        return dst, {"original": (s, s + length), "copy": (0.0, length)}
    if kind == "intro":
        other = intro_pool[n % len(intro_pool)]
        z = load(other, sr=sr)[0]
        length, t0 = rng.uniform(8, 20), rng.uniform(2, 10)
        zs = rng.uniform(0, max(0.0, len(z) / sr - length - 1))
        intro = z[int(zs * sr) : int((zs + length) * sr)]
        intro = np.repeat(intro[:, None], y.shape[1], axis=1) * (np.sqrt(np.mean(y**2)) / max(1e-6, np.sqrt(np.mean(intro**2))))
        rest = y[int(t0 * sr) :].copy()
        fade = int(0.5 * sr)
        ramp = np.linspace(0, 1, fade, dtype=np.float32)[:, None]
        intro[-fade:] *= 1 - ramp
        rest[:fade] *= ramp
        mixed = np.concatenate([intro[:-fade], intro[-fade:] + rest[:fade], rest[fade:]])
        mixed = mixed / max(1.0, float(np.abs(mixed).max()) / 0.99)
        dst = out / f"{stem}.flac"
        sf.write(str(dst), mixed, sr)
        start = (len(intro) - fade) / sr
        return dst, {"original": (t0, dur), "copy": (start, start + dur - t0)}
    if kind == "faster":
        effect, rate = [("tempo", 1.04), ("speed", 1.03), ("tempo", 0.96), ("speed", 1.05)][n % 4]
        dst = out / f"{stem}.wav"
        subprocess.run(["sox", "-G", str(src), str(dst), effect, str(rate)], check=True)
        return dst, {"original": (0.0, dur), "copy": (0.0, dur / rate)}
    raise ValueError(kind)


def build_library(split: str, seed: int) -> tuple[list[Path], list[list[Path]], dict, dict]:
    """Files of the benchmark library, the true groups, each copy's kind and truth spans."""
    rng = np.random.default_rng(seed)
    stk = stk_music_library()
    if split == "report":
        stk_orig, intro_pool, works = stk[1::2], stk[0::2], heldout_music("library")
    else:  # the dev split has more look-alikes than copies' originals: 60 more minutes of works
        stk_orig, intro_pool, works = stk[0::2], stk[1::2], heldout_music("outsiders")
    long_works = [w for w in works if sf.info(str(w)).duration >= 40]
    work_orig = long_works[: len(long_works) // 3]
    lookalikes = [w for w in works if w not in work_orig] + (heldout_music("calibration_outsiders") if split == "dev" else [])
    shared = sharing_music(lookalikes, work_orig)
    lookalikes = [w for w in lookalikes if w not in shared]
    stk_orig = [p for p in stk_orig if sf.info(str(p)).duration >= 30]  # not the short jingles
    originals = stk_orig + work_orig
    out = CACHE / f"duplicates_{split}_{seed}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    groups, kinds, truth, n = [], {}, {}, 0
    for k, src in enumerate(originals):
        members = [src]
        plan = [KINDS[k % len(KINDS)]] + ([KINDS[(k + 3) % len(KINDS)]] if k % 3 == 0 else [])
        for kind in plan:
            if kind == "contained" and sf.info(str(src)).duration < 40:
                kind = "trim"
            dst, spans = plant(kind, src, out, n, intro_pool, rng)
            n += 1
            members.append(dst)
            kinds[dst] = kind
            truth[dst] = (src, spans)
        groups.append(members)
    files = originals + [m for g in groups for m in g[1:]] + lookalikes
    print(f"library: {len(originals)} originals ({len(stk_orig)} SuperTuxKart, {len(work_orig)} held-out works), "
          f"{n} planted copies, {len(lookalikes)} look-alike works ({len(shared)} sharing a tune dropped)", file=sys.stderr)
    return files, groups, kinds, truth


def pairs_of(groups) -> set[frozenset]:
    return {frozenset(p) for g in groups for p in itertools.combinations(sorted(map(str, g)), 2)}


def score(found: list, true_groups: list[list[Path]], kinds: dict, truth: dict) -> dict:
    pred = [[f["path"] for f in g.files] for g in found]
    true_pairs = pairs_of([[path_key(p) for p in g] for g in true_groups])
    pred_pairs = pairs_of(pred)
    tp = len(true_pairs & pred_pairs)
    per_kind = {}
    for copy, kind in kinds.items():
        orig = truth[copy][0]
        hit = frozenset((path_key(copy), path_key(orig))) in pred_pairs
        per_kind.setdefault(kind, []).append(hit)
    exact = sum(1 for g in true_groups if sorted(path_key(p) for p in g) in [sorted(p) for p in pred])
    # spans: groups of two only (a three-file group's spans are unions)
    errors, by_kind = [], {}
    spans = {f["path"]: (f["start_s"], f["end_s"]) for g in found if len(g.files) == 2 for f in g.files}
    for copy, (orig, t) in truth.items():
        c, o = path_key(copy), path_key(orig)
        if c in spans and o in spans and sum(1 for g in true_groups if Path(orig) == g[0] and len(g) == 2):
            for key, path in (("copy", c), ("original", o)):
                e = [abs(spans[path][0] - t[key][0]), abs(spans[path][1] - t[key][1])]
                errors += e
                by_kind.setdefault(kinds[copy], []).extend(e)
    return {
        "true_pairs": len(true_pairs), "found_pairs": len(pred_pairs), "right_pairs": tp,
        "precision": round(tp / max(1, len(pred_pairs)), 4), "recall": round(tp / max(1, len(true_pairs)), 4),
        "groups": len(true_groups), "groups_found_exactly": exact, "groups_predicted": len(pred),
        "recall_per_kind": {k: {"copies": len(v), "found": int(sum(v))} for k, v in sorted(per_kind.items())},
        "span_error_s": {"median": round(float(np.median(errors)), 2) if errors else None,
                         "p90": round(float(np.percentile(errors, 90)), 2) if errors else None, "n": len(errors),
                         "max_per_kind": {k: round(float(max(v)), 2) for k, v in sorted(by_kind.items())}},
        "false_pairs": sorted(sorted(Path(x).name for x in p) for p in pred_pairs - true_pairs),
        "missed_pairs": sorted(sorted(Path(x).name for x in p) for p in true_pairs - pred_pairs),
    }


def _record_candidate_runs() -> list:
    """Make :func:`search_engine.duplicates.find_runs` record every pair's best run whatever its
    coverage and median distance in the list returned (it still answers with the real limits)."""
    import search_engine.duplicates as dup

    seen, real = [], dup.find_runs

    def loose(hits, vectors, **kw):
        runs = real(hits, vectors, **{**kw, "max_median_distance": np.inf, "min_coverage": 0.0})
        seen.extend(runs)
        return [r for r in runs if r.coverage >= kw.get("min_coverage", dup.MIN_COVERAGE) and r.distance <= dup.MAX_MEDIAN_DISTANCE]

    dup.find_runs = loose
    return seen


def _piece(path) -> str:
    """The SuperTuxKart piece a file of ``music_library_2h`` is (its MP3s are ``<piece>_<kbps>k.mp3``)."""
    p = Path(path)
    return p.stem.rsplit("_", 1)[0] if p.suffix == ".mp3" else p.stem


def timed(engine, repeats: int) -> tuple[list, float, list[float]]:
    times, found = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        found = engine.duplicates()
        times.append(time.perf_counter() - t)
    return found, float(np.median(times)), times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["report", "dev"], default="report")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-timing", action="store_true", help="skip the 2-hour library")
    ap.add_argument("--name", default=None, help="result file name (default: duplicates, or duplicates_dev)")
    ap.add_argument("--candidate-runs", action="store_true",
                    help="also list every pair's best run with the coverage and distance limits lifted (labelled true/false), "
                         "to see whether the constants of search_engine/duplicates.py can separate them")
    args = ap.parse_args(argv)
    candidates = _record_candidate_runs() if args.candidate_runs else None

    files, groups, kinds, truth = build_library(args.split, args.seed)
    work = Path(tempfile.mkdtemp(prefix="a2v_dups_"))
    try:
        with SearchEngine.create(work / "planted") as engine:
            report = Indexer(engine).add(files)
            assert not report.failed, report.failed
            found, seconds, _ = timed(engine, 1 if candidates is not None else args.repeats)
            if candidates is not None:  # one timed run: it recorded each pair's best run once
                names = engine.catalog.files_by_id(engine.blocks.file_ids.tolist())
                path = {r: names[int(f)].path for r, f in enumerate(engine.blocks.file_ids)}
        planted = score(found, groups, kinds, truth)
        planted.update(files=report.added, minutes=round(report.audio_s / 60, 1), seconds=round(seconds, 2))
        print(f"planted: precision {planted['precision']:.3f} recall {planted['recall']:.3f} "
              f"({planted['right_pairs']}/{planted['true_pairs']} pairs, {planted['found_pairs']} found), "
              f"groups exact {planted['groups_found_exactly']}/{planted['groups']}, {seconds:.2f} s", file=sys.stderr)
        for k, v in planted["recall_per_kind"].items():
            print(f"  {k:<10} {v['found']}/{v['copies']}", file=sys.stderr)
        print(f"  false {planted['false_pairs']}\n  missed {planted['missed_pairs']}", file=sys.stderr)
        result = {
            **result_header("duplicates", argv),
            "split": args.split,
            "planted": planted,
        }
        if candidates is not None:
            true_pairs = pairs_of([[path_key(p) for p in g] for g in groups])
            rows = sorted(({"true": frozenset((path[r.a], path[r.b])) in true_pairs, "coverage": round(r.coverage, 3), "distance": round(r.distance, 3),
                            "segments": int(r.i1 - r.i0 + 1), "a": Path(path[r.a]).name, "b": Path(path[r.b]).name} for r in candidates), key=lambda x: x["distance"])
            result["candidate_runs"] = rows
            for x in rows:
                print(f"  {'true ' if x['true'] else 'FALSE'} distance {x['distance']:.3f} coverage {x['coverage']:.3f} {x['segments']:>4} segments  {x['a']} / {x['b']}", file=sys.stderr)
        if not args.no_timing:
            lib = music_library_2h()
            with SearchEngine.create(work / "twohours") as engine:
                rep = Indexer(engine).add(lib)
                found, seconds, times = timed(engine, args.repeats)
            stems = {}
            for p in lib:
                stems.setdefault(_piece(p), []).append(p)
            true_groups = [g for g in stems.values() if len(g) > 1]
            fast = {path_key(p) for p in lib if _piece(p).endswith(("_fast", "_f"))}
            pred = pairs_of([[f["path"] for f in g.files] for g in found])
            scored = {p for p in pred if not (p & fast)}
            true_pairs = {p for p in pairs_of([[path_key(x) for x in g] for g in true_groups]) if not (p & fast)}
            tp = len(scored & true_pairs)
            result["two_hours"] = {
                "files": rep.added, "minutes": round(rep.audio_s / 60, 1), "seconds_median": round(seconds, 2),
                "seconds": [round(t, 2) for t in times], "groups": len(found),
                "transcode_pairs": {"true": len(true_pairs), "found": len(scored), "right": tp,
                                    "precision": round(tp / max(1, len(scored)), 4), "recall": round(tp / max(1, len(true_pairs)), 4)},
                "fast_variant_pairs_found": sorted(sorted(Path(x).name for x in p) for p in pred if p & fast),
            }
            print(f"2 hours: {rep.added} files, {rep.audio_s / 60:.0f} min: {seconds:.2f} s (median of {args.repeats}); "
                  f"transcode pairs P {result['two_hours']['transcode_pairs']['precision']} R {result['two_hours']['transcode_pairs']['recall']}",
                  file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    name = args.name or ("duplicates" if args.split == "report" else "duplicates_dev")
    print(f"wrote {write_result(name, result)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
