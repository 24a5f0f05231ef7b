"""Long recordings: a query of minutes that plays several indexed recordings (a DJ set, a radio
capture) must return each one as its own result, with the span of the query it fills
(``query_start_s``, ``query_end_s``) and where that span starts in the recording (``offset_s``),
and claim nothing in stretches of music the library does not hold.

Splits (none of it used in training; as ``claims.py`` splits them):

- ``report`` (the default): library = 70 min of held-out music21 works rendered with sf_GMbank
  (``heldout_music("library")``) + SuperTuxKart pieces 1, 3, 5, ... (recorded music); unknown
  music = the ``outsiders`` works (less those sharing a tune with the library) and SuperTuxKart
  pieces 0, 2, 4, ...
- ``dev`` (for choosing the settings; not reported): library = ``calibration_library`` works +
  SuperTuxKart pieces 0, 2, ...; unknown music = ``calibration_outsiders`` + pieces 1, 3, ...

Each mix: 3-6 excerpts (12-40 s, random places) of random library recordings, with one or two
stretches of unknown music (10-30 s) between them, consecutive parts crossfaded over 1-3 s, the
whole under pink noise at 20-30 dB SNR. Also ``--unknown-mixes`` mixes (60-150 s) of unknown
music only.

(``found_at_a_repeat``: ends right, and ``offset_s`` at another place where the recording plays
the same audio sample for sample — rendered scores repeat sections exactly — counted apart.)
An excerpt is *found* when a claimed result names its recording with both ends of
``query_start_s..query_end_s`` within 2.5 s of the excerpt's (its crossfades included) and the
recording time at ``query_start_s`` within 1.5 s of ``offset_s``. A claimed result is *false*
when it overlaps no excerpt of its recording by half its length; ``unknown_s_claimed`` sums the
seconds of claimed results inside unknown stretches beyond their crossfades.

    python benchmarks/long_recordings.py [--split report] [--mixes 40] [--unknown-mixes 10]
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
from common import heldout_music, result_header, stk_music_library, without_shared_music, write_result  # noqa: E402

from indexer import Indexer  # noqa: E402
from search_engine import SearchEngine  # noqa: E402
from search_engine.audio import load  # noqa: E402
from search_engine.audio2vec import augment  # noqa: E402
from search_engine.catalog import path_key  # noqa: E402

SR = 16000
BOUNDARY_S, OFFSET_S = 2.5, 1.5


def split_data(split: str) -> tuple[list[Path], list[Path]]:
    stk = stk_music_library()
    if split == "report":
        library = heldout_music("library") + stk[1::2]
        unknown = without_shared_music(heldout_music("outsiders"), library) + stk[0::2]
    else:
        library = heldout_music("calibration_library") + stk[0::2]
        unknown = without_shared_music(heldout_music("calibration_outsiders"), library) + stk[1::2]
    return library, unknown


def make_mix(library: dict, unknown: dict, rng, *, only_unknown: bool = False) -> tuple[np.ndarray, list[dict]]:
    """A mix and its parts: ``{"path" (None: unknown), "start_s", "end_s", "offset_s"}``."""
    parts = []
    if only_unknown:
        total = rng.uniform(60, 150)
        while sum(p[2] for p in parts) < total:
            parts.append((None, *_pick(unknown, rng.uniform(15, 40), rng)))
    else:
        n = int(rng.integers(3, 7))
        parts = [(k, *_pick(library, rng.uniform(12, 40), rng)) for k in range(n)]
        for _ in range(int(rng.integers(1, 3))):
            parts.insert(int(rng.integers(0, len(parts) + 1)), (None, *_pick(unknown, rng.uniform(10, 30), rng)))
    out = np.zeros(0, np.float32)
    truth = []
    for _, path, seconds, offset, y in parts:
        piece = y[int(offset * SR) : int(offset * SR) + int(seconds * SR)].astype(np.float32)
        piece = piece / max(1e-6, float(np.sqrt(np.mean(piece**2)))) * 0.1
        fade = int(rng.uniform(1, 3) * SR) if len(out) else 0
        at = len(out) - fade
        if fade:
            ramp = np.linspace(0, 1, fade, dtype=np.float32)
            mixed = out[at:] * (1 - ramp) + piece[:fade] * ramp
            out = np.concatenate([out[:at], mixed, piece[fade:]])
        else:
            out = piece
        truth.append({"path": path, "start_s": at / SR, "end_s": at / SR + len(piece) / SR, "offset_s": offset, "fade_s": fade / SR})
    for t, p in zip(truth, parts):
        t["path"] = None if p[0] is None else p[1]
    noisy = augment.mix_at_snr(out, augment.pink_noise(len(out), rng=rng), snr_db=float(rng.uniform(20, 30)), rng=rng)
    return noisy.astype(np.float32), truth


def _pick(pool: dict, seconds: float, rng) -> tuple[str, float, float, np.ndarray]:
    paths = [p for p, y in pool.items() if len(y) > (seconds + 2) * SR]
    path = paths[int(rng.integers(len(paths)))]
    y = pool[path]
    return path, seconds, float(rng.uniform(0, len(y) / SR - seconds - 1)), y


def same_audio(y: np.ndarray, a_s: float, b_s: float, seconds: float = 4.0) -> bool:
    """Whether a recording plays the same audio at ``a_s`` and ``b_s`` (a repeat: rendered
    scores repeat sections sample for sample): normalised correlation of ``seconds`` of waveform
    from each, at the best lag within ±0.5 s, of 0.95 or more."""
    n, lag = int(seconds * SR), int(0.5 * SR)
    a0 = int(a_s * SR)
    b = y[max(0, int(b_s * SR)) : max(0, int(b_s * SR)) + n]
    if len(b) < n:
        return False
    best = 0.0
    for k in range(-lag, lag + 1, 8):
        a = y[max(0, a0 + k) : max(0, a0 + k) + n]
        if len(a) == n:
            best = max(best, float(np.dot(a, b) / max(1e-9, np.linalg.norm(a) * np.linalg.norm(b))))
    return best >= 0.95


def score(answer, truth: list[dict], library: dict) -> dict:
    claimed = [m for m in answer.matches if m.matched and m.query_start_s is not None]
    excerpts = [t for t in truth if t["path"] is not None]
    found, errors, offsets, repeats = 0, [], [], 0
    for t in excerpts:
        best = None
        for m in claimed:
            if m.path != t["path"]:
                continue
            overlap = min(m.query_end_s, t["end_s"]) - max(m.query_start_s, t["start_s"])
            if overlap > 0 and (best is None or overlap > best[0]):
                best = (overlap, m)
        if best is None:
            continue
        m = best[1]
        e0, e1 = abs(m.query_start_s - t["start_s"]), abs(m.query_end_s - t["end_s"])
        true_offset = t["offset_s"] + m.query_start_s - t["start_s"]
        off = abs(m.offset_s - true_offset)
        errors += [e0, e1]
        offsets.append(off)
        ends_ok = e0 <= BOUNDARY_S and e1 <= BOUNDARY_S
        found += int(ends_ok and off <= OFFSET_S)
        repeats += int(ends_ok and off > OFFSET_S and same_audio(library[m.path], m.offset_s, true_offset))
    false = 0
    for m in claimed:
        same = sum(max(0.0, min(m.query_end_s, t["end_s"]) - max(m.query_start_s, t["start_s"])) for t in excerpts if t["path"] == m.path)
        false += int(same < 0.5 * (m.query_end_s - m.query_start_s))
    unknown_s = 0.0
    for t in truth:
        if t["path"] is None:
            lo, hi = t["start_s"] + t["fade_s"], t["end_s"] - 3.0  # the crossfades in and out belong to both sides
            unknown_s += sum(max(0.0, min(m.query_end_s, hi) - max(m.query_start_s, lo)) for m in claimed)
    return {"excerpts": len(excerpts), "found": found, "found_at_a_repeat": repeats, "claimed": len(claimed), "false": false,
            "unknown_s_claimed": unknown_s, "boundary_errors": errors, "offset_errors": offsets}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["report", "dev"], default="report")
    ap.add_argument("--mixes", type=int, default=40)
    ap.add_argument("--unknown-mixes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=Path, help="keep (or reuse) the index here (default: a temporary folder)")
    ap.add_argument("--name", default=None, help="result file name (default: long_recordings, or long_recordings_dev)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    lib_files, unknown_files = split_data(args.split)
    index_dir = args.index or Path(tempfile.mkdtemp(prefix="a2v_long_"))
    engine = SearchEngine.create(index_dir)
    report = Indexer(engine).add(lib_files)
    library = {path_key(p): load(p, sr=SR)[0] for p in lib_files}
    unknown = {path_key(p): load(p, sr=SR)[0] for p in unknown_files}
    print(f"library {len(library)} files ({sum(len(y) for y in library.values()) / SR / 60:.0f} min), "
          f"unknown pool {len(unknown)} files", file=sys.stderr)
    totals = {"excerpts": 0, "found": 0, "found_at_a_repeat": 0, "claimed": 0, "false": 0, "unknown_s_claimed": 0.0}
    errors, offsets, seconds, times = [], [], [], []
    unknown_claims, unknown_seconds = 0, 0.0
    for k in range(args.mixes + args.unknown_mixes):
        only_unknown = k >= args.mixes
        y, truth = make_mix(library, unknown, rng, only_unknown=only_unknown)
        t0 = time.perf_counter()
        answer = engine.query_batch([(y, SR)], k=5)[0]
        times.append(time.perf_counter() - t0)
        seconds.append(len(y) / SR)
        s = score(answer, truth, library)
        if only_unknown:
            unknown_claims += s["claimed"]
            unknown_seconds += len(y) / SR
            continue
        for key in totals:
            totals[key] += s[key]
        errors += s["boundary_errors"]
        offsets += s["offset_errors"]
        if s["found"] < s["excerpts"] or s["false"]:
            print(f"mix {k}: found {s['found']}/{s['excerpts']}, false {s['false']}; truth "
                  + "; ".join(f"{Path(t['path']).stem[:18] if t['path'] else 'UNKNOWN'} {t['start_s']:.1f}-{t['end_s']:.1f} @{t['offset_s']:.1f}" for t in truth)
                  + " | claimed " + "; ".join(f"{Path(m.path).stem[:18]} {m.query_start_s:.1f}-{m.query_end_s:.1f} @{m.offset_s:.1f} c{m.confidence}"
                                              for m in answer.matches if m.matched and m.query_start_s is not None), file=sys.stderr)
    engine.close()
    if args.index is None:
        shutil.rmtree(index_dir, ignore_errors=True)
    recall = totals["found"] / max(1, totals["excerpts"])
    result = {
        **result_header("long_recordings", argv),
        "split": args.split,
        "library": {"files": report.added, "minutes": round(report.audio_s / 60, 1)},
        "mixes": args.mixes, "mix_seconds_median": round(float(np.median(seconds[: args.mixes])), 1) if args.mixes else None,
        "excerpts": totals["excerpts"],
        "excerpt_recall": round(recall, 4),
        "criterion": f"both ends within {BOUNDARY_S} s, offset within {OFFSET_S} s",
        # ends right, offset at another place where the recording plays the same audio (rendered
        # scores repeat sections sample for sample: either place is right)
        "found_at_a_repeat": totals["found_at_a_repeat"],
        "excerpt_recall_repeats_counted": round((totals["found"] + totals["found_at_a_repeat"]) / max(1, totals["excerpts"]), 4),
        "boundary_error_s": {"median": round(float(np.median(errors)), 2) if errors else None,
                             "p90": round(float(np.percentile(errors, 90)), 2) if errors else None},
        "offset_error_s": {"median": round(float(np.median(offsets)), 3) if offsets else None,
                           "p90": round(float(np.percentile(offsets, 90)), 3) if offsets else None},
        "claimed": totals["claimed"], "false_spans": totals["false"],
        "unknown_s_claimed_in_mixes": round(totals["unknown_s_claimed"], 1),
        "unknown_only_mixes": {"mixes": args.unknown_mixes, "minutes": round(unknown_seconds / 60, 1), "claimed": unknown_claims},
        "seconds_per_query": {"median": round(float(np.median(times)), 2), "per_minute_of_query": round(float(np.sum(times) / (np.sum(seconds) / 60)), 2)},
    }
    print(f"excerpts found {totals['found']}/{totals['excerpts']} = {recall:.3f}; false spans {totals['false']}; "
          f"unknown seconds claimed {totals['unknown_s_claimed']:.1f}; unknown-only mixes: {unknown_claims} claims in "
          f"{unknown_seconds / 60:.1f} min; boundary error median {result['boundary_error_s']['median']} s", file=sys.stderr)
    print(f"wrote {write_result(args.name or ('long_recordings' if args.split == 'report' else 'long_recordings_dev'), result)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
