"""Segment search at 1 million vectors: bytes per segment, ms per clip and recall of the nearest
neighbour for candidate FAISS index types, on real queries.

Vectors: the real segment vectors of the SuperTuxKart music (about 6 800) plus synthetic
distractors up to --size (default 1 000 000): random unit vectors shaped like real ones, drawn from
a Gaussian with the real vectors' mean and covariance, then normalised. Queries: 3 s clips of the
music with pink noise at 10 dB, embedded every 32 ms as a real query is (about 80 vectors per
clip). Recall@1 compares each query vector's nearest neighbour with the exact (flat) search.
Prints the machine and a table; writes benchmarks/results/scale_1m.json.

    python benchmarks/scale_1m.py [--size 1000000] [--clips 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, stk_music_library, write_result  # noqa: E402

FACTORIES = ["IDMap2,Flat", "IVF4096,PQ32", "IVF4096,PQ16", "IVF4096,PQ32x4fs", "HNSW32"]


def real_vectors(clips: int, seed: int):
    from search_engine.audio import load
    from search_engine.audio2vec import Encoder
    from search_engine.audio2vec.augment import mix_at_snr, pink_noise

    enc = Encoder.load("default").build()
    rng = np.random.default_rng(seed)
    base, queries = [], []
    files = stk_music_library()
    for i, f in enumerate(files):
        y, sr = load(f, sr=16000)
        base.append(enc.embed(y, hop_frames=32).vectors)
        for _ in range(max(1, clips // len(files)) + (i < clips % len(files))):
            s = int(rng.integers(0, len(y) - 3 * sr))
            clip = mix_at_snr(y[s : s + 3 * sr], pink_noise(3 * sr, rng=rng), snr_db=10)
            queries.append(enc.embed(clip, hop_frames=2).vectors)
    return np.concatenate(base), queries[:clips]


def distractors(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean, cov = real.mean(0), np.cov(real.T)
    x = rng.multivariate_normal(mean, cov, size=n).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    info = machine()
    print(info)
    real, clips = real_vectors(args.clips, args.seed)
    xb = np.concatenate([real, distractors(real, args.size - len(real), args.seed)])
    ids = np.arange(len(xb), dtype=np.int64)
    print(f"{len(xb)} vectors ({len(real)} real), {len(clips)} clips of ~{np.mean([len(c) for c in clips]):.0f} query vectors")
    truth = None
    rows = {}
    for factory in FACTORIES:
        index = faiss.index_factory(xb.shape[1], factory, faiss.METRIC_L2)
        if not isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexIVF)):
            index = faiss.IndexIDMap2(index)
        t0 = time.perf_counter()
        if not index.is_trained:
            sample = xb[np.random.default_rng(args.seed).choice(len(xb), size=min(len(xb), 256 * 4096), replace=False)]
            index.train(sample)
        index.add_with_ids(xb, ids)
        build_s = time.perf_counter() - t0
        try:
            faiss.extract_index_ivf(index).nprobe = args.nprobe
        except Exception:
            pass
        nbytes = len(faiss.serialize_index(index))
        times, found = [], []
        for q in clips:
            t = time.perf_counter()
            _, nn = index.search(q, 10)
            times.append((time.perf_counter() - t) * 1000)
            found.append(nn[:, 0])
        found = np.concatenate(found)
        if truth is None:
            truth = found
        rows[factory] = {
            "bytes_per_segment": round(nbytes / len(xb), 1),
            "build_s": round(build_s, 1),
            "ms_per_clip_median": round(float(np.median(times)), 2),
            "ms_per_clip_p95": round(float(np.percentile(times, 95)), 2),
            "recall_at_1": round(float(np.mean(found == truth)), 4),
        }
        print(f"{factory:20} {rows[factory]}")
        del index
    result = {"machine": info, "command": f"python benchmarks/scale_1m.py --size {args.size} --clips {args.clips} --nprobe {args.nprobe}",
              "vectors": len(xb), "real_vectors": len(real), "clips": len(clips), "nprobe": args.nprobe, "factories": rows}
    print("wrote", write_result("scale_1m", result))


if __name__ == "__main__":
    main()
