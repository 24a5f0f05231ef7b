"""Similar sounds across independent sources: does a sound's nearest neighbour have its label?

Sets (``benchmarks/sound_sets.py``, rendered once into benchmarks/.cache): ``instruments`` (GM
family of a phrase played by other soundfonts/synths), ``effects`` (category of a sound effect from
other collections and synths), ``speech`` (the same sentence spoken by other espeak-ng voices).

Methods: ``audio2vec``: :meth:`Encoder.encode`, the whole-sound vector an index stores (the model's
``similar`` model, windows every 1.024 s, averaged and normalised); ``mfcc``: librosa MFCC (20 coefficients,
16 kHz) mean and std per sound (40-d), each dimension standardised over the set. Both Euclidean.

Metrics count as neighbours only sounds from another *group* than the query (its own group is
removed from its candidates; the group is the unit of independence, e.g. sf_GMbank and TimGM6mb
share samples and are one group, see sound_sets.py): precision@5, mAP, and k-NN accuracy
leave-one-group-out (k=5, votes weighted by 1/distance). Queries whose label no other group has
are left out (counted). ``chance_p_at_k`` is the expected P@5 of a random ranking, ``max_p_at_k``
that of a perfect one (below 1 where a label has fewer than 5 sounds in other groups).

Each set is reported without the Fluid-family sources (the default model was trained on FluidR3_GM
renders) and, where the set has them, with them (``+fluid``); effects also with groups = whole
collections (``by_collection``: all OpenSFX recordings count as one source).

    python benchmarks/similar_sounds.py [--sets instruments effects speech] [--model default] [--limit N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import result_header, write_result
from sound_sets import DRUM_NOTES, SETS, Record, load_set

from search_engine.audio import load
from search_engine.audio2vec.encoder import WHOLE_HOP_FRAMES

SR = 16000
METHODS = ("audio2vec", "mfcc")
#: the teacher's environment (``make teacher``); override with TEACHER_PYTHON
TEACHER_PYTHON = Path(os.environ.get("TEACHER_PYTHON", Path(__file__).resolve().parents[1] / ".teacher-venv" / "bin" / "python"))
TEACHER_SCRIPT = Path(__file__).resolve().parents[1] / "teacher" / "aisfx_teacher.py"


# ---------------------------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------------------------

_ENCODERS: dict = {}


def _encoder(model: str):
    """The loaded model, warmed up (TensorFlow builds and traces it on the first call)."""
    from search_engine.audio2vec.encoder import Encoder

    if model not in _ENCODERS:
        enc = Encoder.load(model)
        enc.encode([np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1])
        _ENCODERS[model] = enc
    return _ENCODERS[model]


def embed_sounds(records: list[Record], model: str = "default") -> np.ndarray:
    """One whole-sound Audio2Vec vector per sound, as an index stores it: ``[n, dim]`` float32, unit length."""
    return _encoder(model).encode([r.path for r in records])


def mfcc_features(records: list[Record], n_mfcc: int = 20) -> np.ndarray:
    """MFCC mean and std per sound (``[n, 2 * n_mfcc]``), each dimension standardised over the set.

    Only the sound itself is measured (its padding, if any, is left out).
    """
    import librosa

    feats = np.empty((len(records), 2 * n_mfcc), dtype=np.float64)
    for i, r in enumerate(records):
        y = load(r.path, sr=SR)[0]
        if r.padded_s > 0:
            y = y[: max(int(r.duration_s * SR), 2048)]
        m = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=n_mfcc)
        feats[i] = np.concatenate([m.mean(axis=1), m.std(axis=1)])
    sd = feats.std(axis=0)
    return ((feats - feats.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def teacher_vectors(records: list[Record], pooling: str = "first") -> np.ndarray:
    """aisfx's whole-sound vectors (``teacher/aisfx_teacher.py --whole``), made in the teacher's own
    environment (torch) and cached in benchmarks/.cache keyed by the sounds and the checkpoint:
    ``first``: its first 2.3 s block (the package's block), ``windows``: the mean of its unit
    window vectors every 1.024 s, as the student pools. Unit length; Euclidean ranks like cosine."""
    from common import CACHE

    if not TEACHER_PYTHON.exists():
        raise SystemExit(f"{TEACHER_PYTHON} missing: run `make teacher` (or set TEACHER_PYTHON)")
    ckpt = subprocess.run(
        [str(TEACHER_PYTHON), "-c", "import importlib.util as u; print(list(u.find_spec('aisfx').submodule_search_locations)[0])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    digest = hashlib.sha256(Path(ckpt, "models", "checkpoint.pth").read_bytes()).hexdigest()[:16]
    paths = "\n".join(str(r.path) for r in records)
    key = hashlib.sha256(f"{digest}:{pooling}:{paths}".encode()).hexdigest()[:16]
    out = CACHE / "teacher" / f"{key}.npy"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        listing = out.with_suffix(".txt")
        listing.write_text(paths + "\n")
        subprocess.run([str(TEACHER_PYTHON), str(TEACHER_SCRIPT), "--files", str(listing), "--whole", pooling, "--out", str(out)], check=True)
    v = np.load(out)
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def pairwise_distances(X: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``X``."""
    X = np.asarray(X, dtype=np.float64)
    sq = np.sum(X * X, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    return np.sqrt(np.maximum(d2, 0.0))


def label_part(label: str) -> str:
    """``select`` or ``report``: which half of the labels a query belongs to (a stable hash of the
    label), so that recipes can be chosen on one half of the queries and reported on the other."""
    return "select" if int(hashlib.sha1(str(label).encode()).hexdigest(), 16) % 2 == 0 else "report"


def cross_source_metrics(X: np.ndarray, labels, sources, k: int = 5, part: str = "all") -> dict:
    """Retrieval and k-NN metrics counting only neighbours from another source than the query.

    Parameters
    ----------
    X : [n, d] vectors (Euclidean distance).
    labels, sources : length-n sequences; a query's own source is removed from its candidates.
    k : neighbours for precision@k and the k-NN vote.
    part : ``all``, or only the queries of one half of the labels (:func:`label_part`); every
        sound is still a candidate neighbour.

    Returns
    -------
    dict with ``p_at_k`` (mean precision of the k nearest other-source sounds), ``map`` (mean
    average precision over the whole other-source ranking), ``knn_acc`` (distance-weighted
    majority vote of the k nearest, ties to the nearest), ``chance_p_at_k`` (random ranking),
    ``max_p_at_k`` (perfect ranking: below 1 where fewer than k relevant sounds exist),
    ``queries`` (those whose label some other source has), ``skipped`` (the rest), and ``per_label`` (p_at_k and
    knn_acc per label). Ties in distance are broken by index, so results are deterministic.
    """
    labels = np.asarray(labels)
    sources = np.asarray(sources)
    n = len(labels)
    D = pairwise_distances(X)
    p_at_k, aps, hits, chance, ceiling, used = [], [], [], [], [], []
    for i in range(n):
        if part != "all" and label_part(labels[i]) != part:
            continue
        cand = np.flatnonzero(sources != sources[i])
        rel = labels[cand] == labels[i]
        if not rel.any():
            continue
        order = np.lexsort((cand, D[i, cand]))
        cand, rel, dist = cand[order], rel[order], D[i, cand[order]]
        top = rel[:k]
        p_at_k.append(top.mean())
        ranks = np.flatnonzero(rel) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        chance.append(rel.mean())
        ceiling.append(min(k, int(rel.sum())) / k)
        votes: dict = {}
        for j in range(min(k, len(cand))):
            lab = labels[cand[j]]
            votes[lab] = votes.get(lab, 0.0) + 1.0 / (dist[j] + 1e-9)
        best = max(votes.values())
        pred = next(labels[cand[j]] for j in range(min(k, len(cand))) if votes[labels[cand[j]]] == best)
        hits.append(pred == labels[i])
        used.append(i)
    used = np.asarray(used, dtype=int)
    per_label = {}
    for lab in sorted(set(labels[used].tolist())):
        sel = labels[used] == lab
        per_label[str(lab)] = {
            "n": int(sel.sum()),
            "p_at_k": round(float(np.mean(np.asarray(p_at_k)[sel])), 4),
            "knn_acc": round(float(np.mean(np.asarray(hits)[sel])), 4),
        }
    return {
        "k": k,
        "p_at_k": round(float(np.mean(p_at_k)), 4) if used.size else None,
        "map": round(float(np.mean(aps)), 4) if used.size else None,
        "knn_acc": round(float(np.mean(hits)), 4) if used.size else None,
        "chance_p_at_k": round(float(np.mean(chance)), 4) if used.size else None,
        "max_p_at_k": round(float(np.mean(ceiling)), 4) if used.size else None,
        "queries": int(used.size),
        "skipped": int(n - used.size),
        "part": part,
        "labels": len(set(labels.tolist())),
        "sources": len(set(sources.tolist())),
        "per_label": per_label,
    }


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------


def _limit(records: list[Record], limit: int | None) -> list[Record]:
    """At most ``limit`` sounds per (label, source), the first ones (for a quick run)."""
    if not limit:
        return records
    seen: dict = {}
    out = []
    for r in records:
        key = (r.label, r.source)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            out.append(r)
    return out


def variants(name: str, records: list[Record]) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Evaluation variants of a set: ``{variant: (record indices, group of each)}``."""
    idx = np.arange(len(records))
    no_fluid = idx[[not r.fluid for r in records]]
    out = {name: (no_fluid, [records[i].group for i in no_fluid])}
    if len(no_fluid) < len(records):
        out[f"{name}+fluid"] = (idx, [records[i].group for i in idx])
    if name == "effects":
        out["effects/by_collection"] = (no_fluid, [records[i].group.split("/")[0] for i in no_fluid])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, help="at most N sounds per label and source (quick run)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--name", default="similar_sounds", help="result file name under benchmarks/results/")
    ap.add_argument("--teacher", choices=("first", "windows"), help="also score the aisfx teacher (make teacher), "
                    "pooled as its first 2.3 s block or as the mean of its window vectors")
    ap.add_argument("--part", default="all", choices=("all", "select", "report"),
                    help="queries of one half of the labels only (select: where recipes are chosen; report: the rest)")
    args = ap.parse_args(argv)
    methods = METHODS + (("teacher",) if args.teacher else ())

    t0 = time.perf_counter()
    _encoder(args.model)
    load_s = time.perf_counter() - t0
    model_id = _encoder(args.model).model_id
    results, sets_info, timings = {}, {}, {"model_load_s": round(load_s, 2)}
    per_set, per_feats = {}, {}
    for name in args.sets:
        t = time.perf_counter()
        records = _limit(load_set(name), args.limit)
        timings[f"{name}/load_set_s"] = round(time.perf_counter() - t, 2)
        audio_s = sum(r.duration_s + r.padded_s for r in records)
        feats = {}
        for method in methods:
            t = time.perf_counter()
            if method == "audio2vec":
                feats[method] = embed_sounds(records, args.model)
            elif method == "teacher":
                feats[method] = teacher_vectors(records, args.teacher)
            else:
                feats[method] = mfcc_features(records)
            sec = time.perf_counter() - t
            timings[f"{name}/{method}_s"] = round(sec, 2)
            print(
                f"{name}: {method} of {len(records)} sounds ({audio_s / 60:.1f} min) in {sec:.1f} s "
                f"= {audio_s / max(sec, 1e-9):.0f}x realtime",
                file=sys.stderr,
            )
        sources = sorted({r.source for r in records})
        per_set[name], per_feats[name] = records, feats
        sets_info[name] = {
            "sounds": len(records),
            "minutes": round(sum(r.duration_s for r in records) / 60, 2),
            "labels": sorted({r.label for r in records}),
            "sources": {s: sum(r.source == s for r in records) for s in sources},
            "groups": len({r.group for r in records}),
            "padded": sum(r.padded_s > 0 for r in records),
        }
        for variant, (idx, groups) in variants(name, records).items():
            labels = [records[i].label for i in idx]
            for method in methods:
                key = f"{variant}/{method}"
                results[key] = cross_source_metrics(feats[method][idx], labels, groups, k=args.k, part=args.part)
                r = results[key]
                print(
                    f"{key:<34} P@{args.k}={r['p_at_k']:.3f} mAP={r['map']:.3f} kNN={r['knn_acc']:.3f} "
                    f"(chance P@{args.k} {r['chance_p_at_k']:.3f}, {r['queries']} queries)",
                    file=sys.stderr,
                )
    if {"instruments", "effects"} <= set(args.sets):  # one-shots: drum hits by kind across kits, single notes by family
        shots = [(n, i) for n in ("effects", "instruments") for i, r in enumerate(per_set[n])
                 if not r.fluid and (r.label in DRUM_NOTES if n == "effects" else r.info.get("phrase") == "note")]
        labels = [per_set[n][i].label for n, i in shots]
        groups = [per_set[n][i].group for n, i in shots]
        sets_info["oneshots"] = {"sounds": len(shots), "labels": sorted(set(labels)),
                                 "what": "effects' drum hits (by kind) + instruments' single notes (by family), no Fluid sources"}
        for method in methods:
            X = np.stack([per_feats[n][method][i] for n, i in shots])
            results[f"oneshots/{method}"] = cross_source_metrics(X, labels, groups, k=args.k, part=args.part)
    for method in methods:  # every query of the main variants (no Fluid sources) counted once
        parts = [results[f"{name}/{method}"] for name in args.sets]
        q = sum(r["queries"] for r in parts)
        results[f"pooled/{method}"] = {
            "k": args.k, "queries": q, "part": args.part, "sets": list(args.sets),
            **{m: round(sum(r[m] * r["queries"] for r in parts) / q, 4) for m in ("p_at_k", "map", "knn_acc", "chance_p_at_k", "max_p_at_k")},
        }
    timings["total_s"] = round(time.perf_counter() - t0, 2)

    out = {
        **result_header("similar_sounds", argv),
        "model_id": model_id,
        "similar_model_id": _encoder(args.model).similar.model_id,
        "settings": {
            "whole_hop_frames": WHOLE_HOP_FRAMES,
            "k": args.k,
            "limit": args.limit,
            "mfcc": "20 coeffs, mean+std, standardised",
            "teacher": f"aisfx 0.1.2 embedding net, {args.teacher}" if args.teacher else None,
            "part": args.part,
            "neighbours": "only other groups than the query's (leave-one-group-out)",
        },
        "sets": sets_info,
        "timings": timings,
        "results": results,
    }
    print(f"wrote {write_result(args.name, out)}", file=sys.stderr)
    print(_table(out))
    return 0


def _table(out: dict) -> str:
    m = out["machine"]
    k = out["settings"]["k"]
    lines = [
        f"machine: {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB)   model {out['model_id']} (similar: {out['similar_model_id']})",
        (
            f"{'set / variant':<24}{'method':<11}{'n':>5}{f'P@{k}':>8}{'mAP':>8}{'kNN acc':>9}"
            f"{f'chance P@{k}':>13}{f'max P@{k}':>10}"
        ),
    ]
    for key, r in out["results"].items():
        variant, method = key.rsplit("/", 1)
        lines.append(
            f"{variant:<24}{method:<11}{r['queries']:>5}{r['p_at_k']:>8.3f}{r['map']:>8.3f}"
            f"{r['knn_acc']:>9.3f}{r['chance_p_at_k']:>13.3f}{r['max_p_at_k']:>10.3f}"
        )
    t = out["timings"]
    lines.append("timings (s): " + ", ".join(f"{k2} {v}" for k2, v in t.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
