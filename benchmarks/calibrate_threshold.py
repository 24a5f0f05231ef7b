"""Calibrate a model's match threshold on held-apart data, and optionally store it with the model.

A query is "matched" when its best aligned distance is at most the threshold for its length and
library size. One threshold per clip length (3 s and 10 s) and library size (``--library-minutes``,
by default 30 and 120; the engine interpolates in log duration and log hours), each the strictest
of the per-condition thresholds at which clips from *outside* the library are matched at most
``--target-fpr`` of the time:

- library: the first 30 min, and all 2 hours, of held-out music21 works
  (``common.heldout_music("calibration_library")``; 2 h is as large as the excerpt benchmark's
  library): outsiders find nearer neighbours in a larger library;
- outsiders: 60 min of other held-out works (``"calibration_outsiders"``) plus held-out espeak-ng
  speech, as 3 s and 10 s clips, clean and with pink noise + babble at 10 dB and 0 dB; works that
  share a tune or phrase with a library work (``common.sharing_music``: 12 identical notes in a
  row) are left out, since the library rightly matches their clips;
- in-library clips (same durations and conditions) show what the threshold costs in hits.

None of this data is used in training or by the benchmarks (``excerpt_id.py`` measures the
false-match rate on its own outsiders). ``--write`` puts ``match_threshold`` and the calibration
record into the model's ``config.json`` as ``match_thresholds`` (the model id, a hash of the
weights, does not change).

    python benchmarks/calibrate_threshold.py [--model default] [--target-fpr 0.01] [--library-minutes 30 120] [--write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    babble_speech,
    heldout_music,
    machine,
    model_config_text,
    without_shared_music,
    write_result,
)
from excerpt_id import SR, cut_clips, degraded_batch  # noqa: E402

from indexer import Indexer  # noqa: E402
from search_engine import SearchEngine  # noqa: E402
from search_engine.audio import load  # noqa: E402

CONDITIONS = ("clean", "noise10", "noise0")
DURATIONS = (3.0, 10.0)


def best_distances(engine, batch) -> np.ndarray:
    return np.array([a.matches[0].distance if a.matches else np.inf for a in engine.query_batch(batch, k=1)])


def threshold_for(outsider_d: np.ndarray, target_fpr: float) -> float:
    """The largest threshold at which at most ``target_fpr`` of the outsiders are matched (halfway
    between the last outsider distance allowed and the next one)."""
    d = np.sort(outsider_d)
    allowed = int(np.floor(target_fpr * len(d)))
    below = d[allowed - 1] if allowed > 0 else d[0] - 0.02
    return float((below + d[allowed]) / 2) if allowed < len(d) else float(d[-1])


def calibrate(model: str, library: list[Path], speech_files: list[Path], speech: list[np.ndarray], target_fpr: float, clips_per_file: int, rng) -> tuple[dict, dict, object]:
    """Thresholds ``{seconds: t}`` for a library of these files, the per-cell table, and the encoder
    (``speech``: the decoded ``speech_files``, babble and outsiders)."""
    tmp = Path(tempfile.mkdtemp(prefix="a2v_calib_"))
    try:
        engine = SearchEngine.create(tmp / "idx", model=model)
        Indexer(engine, workers=2).add(library)
        inside, inside_audio = cut_clips(library, DURATIONS, clips_per_file, rng)
        outsider_works = without_shared_music(heldout_music("calibration_outsiders"), library)
        outside, outside_audio = cut_clips(outsider_works + speech_files, DURATIONS, clips_per_file, rng)
        cells = {}
        for cond in CONDITIONS:
            for seconds in DURATIONS:
                batch, truth = degraded_batch(cond, seconds, inside, inside_audio, speech, rng)
                answers = engine.query_batch(batch, k=1)
                hit_d = np.array([a.matches[0].distance if a.matches and a.matches[0].path == p else np.inf for a, (p, _) in zip(answers, truth)])
                o_batch, _ = degraded_batch(cond, seconds, outside, outside_audio, speech, rng)
                o_d = best_distances(engine, o_batch)
                cells[f"{cond}/{seconds:g}s"] = (hit_d, o_d)
        thresholds = {f"{s:g}": round(min(threshold_for(cells[f"{c}/{s:g}s"][1], target_fpr) for c in CONDITIONS), 4) for s in DURATIONS}
        table = {}
        for key, (hit_d, o_d) in cells.items():
            threshold = thresholds[key.split("/")[1][:-1]]
            table[key] = {"inside": len(hit_d), "matched": round(float(np.mean(hit_d <= threshold)), 4),
                          "outsiders": len(o_d), "false_match": round(float(np.mean(o_d <= threshold)), 4),
                          "inside_median_distance": round(float(np.median(hit_d[np.isfinite(hit_d)])), 4) if np.isfinite(hit_d).any() else None,
                          "outsider_min_distance": round(float(o_d.min()), 4)}
            print(f"{key:<12} matched {table[key]['matched']:.3f}  false {table[key]['false_match']:.3f}  "
                  f"inside median {table[key]['inside_median_distance']}  outsider min {table[key]['outsider_min_distance']}")
        encoder = engine.encoder
        engine.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return thresholds, table, encoder


def first_minutes(files: list[Path], minutes: float) -> list[Path]:
    """The first files, in order, until they hold ``minutes`` of audio (read from their headers)."""
    out, total = [], 0.0
    for f in files:
        if total >= minutes * 60:
            break
        out.append(f)
        total += sf.info(f).duration
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--target-fpr", type=float, default=0.01)
    ap.add_argument("--library-minutes", type=float, nargs="+", default=[30.0, 120.0], help="library sizes to calibrate at")
    ap.add_argument("--clips-per-file", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="store the threshold in the model's config.json")
    args = ap.parse_args(argv)
    pool = heldout_music("calibration_library")
    speech_files = babble_speech()
    speech = [load(p, sr=SR)[0] for p in speech_files]
    thresholds, table = {}, {}
    for minutes in args.library_minutes:
        library = first_minutes(pool, minutes)
        hours = f"{round(minutes / 60, 3):g}"
        print(f"library of {len(library)} works, {minutes:g} min")
        rng = np.random.default_rng(args.seed)  # each size its own draws: adding a size changes no other
        thresholds[hours], table[hours], encoder = calibrate(args.model, library, speech_files, speech, args.target_fpr, args.clips_per_file, rng)
    model_id, folder = encoder.model_id, encoder.folder
    record = {"match_thresholds": thresholds, "target_fpr": args.target_fpr,
              "command": "python benchmarks/calibrate_threshold.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "data": f"held-out music21 works (sf_GMbank): libraries of their first {' and '.join(f'{m:g}' for m in args.library_minutes)} min, "
                      "60 min other works + held-out espeak-ng speech as outsiders",
              "cells": table}
    print(f"thresholds (library hours: {{clip seconds: threshold}}) {thresholds} for model {model_id}")
    write_result(f"calibration_{model_id}", {"machine": machine(), "model_id": model_id, **record})
    if args.write:
        cfg_path = folder / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.pop("match_threshold", None)
        cfg["match_thresholds"] = thresholds
        cfg["calibration"] = {k: v for k, v in record.items() if k != "match_thresholds"}
        cfg_path.write_text(model_config_text(cfg))
        print(f"wrote match_thresholds {thresholds} to {cfg_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
