"""Similar sounds, side by side: the aisfx teacher, MFCC and Audio2Vec similar models, on the sets of
``similar_sounds.py`` (no Fluid sources), their one-shots (drum hits by kind across kits, single
notes by GM family across soundfonts) and all queries pooled; P@5, mAP and kNN accuracy.

Each method embeds every sound once; the metrics are then computed on three parts of the queries:
``select`` (the labels of one half, by a hash of the label: where recipes are chosen), ``report``
(the other half: what is reported as unseen by the choice) and ``all``. Every sound stays a
candidate neighbour in each part.

    python benchmarks/similar_side_by_side.py --models default runs/d1 [--teacher first] [--name N]

A model is anything ``Encoder.load`` takes; its whole-sound vectors come from its ``similar`` model
(``default``: the shipped similar space). The teacher needs ``make teacher`` (or TEACHER_PYTHON).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import result_header, write_result
from similar_sounds import _encoder, cross_source_metrics, embed_sounds, mfcc_features, teacher_vectors
from sound_sets import DRUM_NOTES, load_set

SETS = ("instruments", "effects", "speech")
PARTS = ("select", "report", "all")
METRICS = ("p_at_k", "map", "knn_acc")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--teacher", default="first", choices=("first", "windows", "none"))
    ap.add_argument("--no-mfcc", action="store_true")
    ap.add_argument("--name", default="similar_side_by_side")
    args = ap.parse_args(argv)

    records = {name: [r for r in load_set(name) if not r.fluid] for name in SETS}
    methods: dict[str, dict[str, np.ndarray]] = {}
    info, timings = {}, {}
    if args.teacher != "none":
        methods["teacher"] = {n: teacher_vectors(load_set(n), args.teacher)[[i for i, r in enumerate(load_set(n)) if not r.fluid]] for n in SETS}
    if not args.no_mfcc:
        methods["mfcc"] = {n: mfcc_features(records[n]) for n in SETS}
    for model in args.models:
        t = time.perf_counter()
        enc = _encoder(model)
        key = f"audio2vec:{model}"
        methods[key] = {n: embed_sounds(records[n], model) for n in SETS}
        timings[key] = round(time.perf_counter() - t, 1)
        info[key] = {"similar_model": enc.similar.name, "similar_model_id": enc.similar.model_id, "dim": enc.similar.dim}
        print(f"{key}: embedded in {timings[key]} s", file=sys.stderr)

    shots = [(n, i) for n in ("effects", "instruments") for i, r in enumerate(records[n])
             if (r.label in DRUM_NOTES if n == "effects" else r.info.get("phrase") == "note")]
    results: dict = {}
    for method, feats in methods.items():
        for part in PARTS:
            per = {}
            for n in SETS:
                per[n] = cross_source_metrics(feats[n], [r.label for r in records[n]], [r.group for r in records[n]], part=part)
            X = np.stack([feats[n][i] for n, i in shots])
            per["oneshots"] = cross_source_metrics(X, [records[n][i].label for n, i in shots], [records[n][i].group for n, i in shots], part=part)
            q = sum(per[n]["queries"] for n in SETS)
            per["pooled"] = {"queries": q, **{m: round(sum(per[n][m] * per[n]["queries"] for n in SETS) / q, 4) for m in METRICS}}
            results[f"{method}/{part}"] = per
    out = {
        **result_header("similar_side_by_side", argv),
        "models": info,
        "teacher": None if args.teacher == "none" else f"aisfx 0.1.2 embedding net, {args.teacher}",
        "parts": {"select": "queries of the labels whose sha1 is even (recipes chosen here)", "report": "the other labels", "all": "every query"},
        "sets": {n: len(records[n]) for n in SETS} | {"oneshots": len(shots)},
        "timings_s": timings,
        "results": results,
    }
    print(f"wrote {write_result(args.name, out)}", file=sys.stderr)
    print(table(out))
    return 0


def table(out: dict) -> str:
    lines = []
    for part in PARTS:
        lines.append(f"part: {part}   (P@5 / mAP / kNN)")
        lines.append(f"{'method':<28}" + "".join(f"{s:>22}" for s in (*SETS, "oneshots", "pooled")))
        for key, per in out["results"].items():
            method, p = key.rsplit("/", 1)
            if p != part:
                continue
            lines.append(f"{method[-28:]:<28}" + "".join(
                f"{per[s]['p_at_k']:>8.3f}{per[s]['map']:>7.3f}{per[s]['knn_acc']:>7.3f}" for s in (*SETS, "oneshots", "pooled")))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
