"""Query latency and accuracy: a 3 s clip against the 2-hour library, and against 1 million segments.

The library is ``common.music_library_2h`` (2 hours of OGG and MP3 music), indexed with the bundled
model. With ``--pad-to N``, synthetic recordings are added until the index holds N segment vectors
(random unit vectors with the real vectors' mean and covariance, 600 segments = 5 min each), so
the engine itself switches to its large index type (``large_index_factory``, trained on those
vectors) exactly as a growing library would; accuracy is then compared with exact search on the
same catalog and exact store.

Queries: 3 s excerpts of the SuperTuxKart OGG pieces (clean, pink noise at 10 dB and at 0 dB), asked
one at a time through ``SearchEngine.query_batch`` after the model is loaded. Reports per-clip
milliseconds (median, p95) split into decode / encoder (features included) / search / aggregation,
top-1 recording and offset accuracy (an MP3 transcode of the source piece counts as the piece), bytes per segment of the FAISS index in RAM, and the
throughput of one batched call for all clips.

    python benchmarks/query_latency.py [--clips 40] [--pad-to 1000000]
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, music_library_2h, stk_music_library, write_result  # noqa: E402

SR = 16000
KINDS = ("clean", "noise10", "noise0")


def clips(n: int, seed: int):
    """``n`` (kind, waveform, source path, offset s) 3 s clips: clean, pink noise at 10 dB, at 0 dB, in turn."""
    from search_engine.audio import load
    from search_engine.audio2vec.augment import mix_at_snr, pink_noise

    rng = np.random.default_rng(seed)
    files = stk_music_library()
    out = []
    for i in range(n):
        f = files[i % len(files)]
        y, _ = load(f, sr=SR)
        s = int(rng.integers(0, len(y) - 3 * SR))
        clip = y[s : s + 3 * SR]
        kind = KINDS[i % len(KINDS)]
        if kind != "clean":
            clip = mix_at_snr(clip, pink_noise(len(clip), rng=rng), snr_db=10 if kind == "noise10" else 0)
        out.append((kind, clip, str(f), s / SR))
    return out


def _piece(path: str) -> str:
    """The piece a library file holds: its MP3 transcodes (``NAME_128k.mp3``) count as the OGG."""
    return re.sub(r"_\d+k$", "", Path(path).stem)


def pad(engine, target: int, seed: int) -> float:
    """Add synthetic 600-segment recordings until the index holds ``target`` segments; seconds taken."""
    from search_engine.catalog import FileRecord
    from search_engine.engine import IndexedFile

    real = engine.segment_vectors(np.sort(engine.segments.ids()))
    mean, cov = real.mean(0), np.cov(real.T)
    rng = np.random.default_rng(seed)
    hop = engine.segment_hop_s
    t0, i = time.perf_counter(), 0
    while len(engine.segments) < target:
        batch = []
        for _ in range(100):
            n = min(600, target - len(engine.segments) - sum(len(b.vectors) for b in batch))
            if n <= 0:
                break
            v = rng.multivariate_normal(mean, cov, size=n).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            rec = FileRecord(path=f"/synthetic/{i:07d}.ogg", size_bytes=0, mtime_ns=0, content_hash=f"synthetic{i}",
                             duration_s=n * hop, sample_rate_hz=SR, channels=1, tags={})
            batch.append(IndexedFile(rec, v, np.arange(n) * hop))
            i += 1
        engine.add(batch)
        print(f"  {len(engine.segments)} segments, index {engine.segments.factory}", flush=True)
    return time.perf_counter() - t0


def measure(engine, queries) -> dict:
    """Per-clip latency split and accuracy of one-at-a-time queries, and one batched call."""
    rows = []
    for kind, y, src, offset in queries:
        t = time.perf_counter()
        res = engine.query_batch([(y, SR)], k=5)[0]
        total = (time.perf_counter() - t) * 1000
        top = res.matches[0] if res.matches else None
        hit = bool(top and _piece(top.path) == _piece(src))
        rows.append({
            "kind": kind, "ms": total, **{f"{k}_ms": v * 1000 for k, v in res.timings.items()},
            "top1": hit, "offset_ok": hit and abs(top.offset_s - offset) <= 0.5,
        })
    t = time.perf_counter()
    engine.query_batch([(y, SR) for _, y, _, _ in queries], k=5)
    batch_ms = (time.perf_counter() - t) * 1000 / len(queries)
    ms = np.array([r["ms"] for r in rows])
    split = {k: round(float(np.median([r[k] for r in rows])), 2) for k in rows[0] if k.endswith("_ms")}
    out = {"ms_per_clip_median": round(float(np.median(ms)), 2), "ms_per_clip_p95": round(float(np.percentile(ms, 95)), 2),
           "split_median_ms": split, "batched_ms_per_clip": round(batch_ms, 2)}
    for kind in KINDS:
        sel = [r for r in rows if r["kind"] == kind]
        out[f"top1_{kind}"] = round(float(np.mean([r["top1"] for r in sel])), 4)
        out[f"offset_{kind}"] = round(float(np.mean([r["offset_ok"] for r in sel])), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--pad-to", type=int, default=0, help="add synthetic recordings up to this many segments")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=Path, help="keep the index here (default: a temporary folder)")
    args = ap.parse_args()
    from indexer import Indexer
    from search_engine import SearchEngine
    from search_engine.vectors import VectorIndex

    info = machine()
    print(info)
    queries = clips(args.clips, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.index or Path(tmp) / "idx"
        with SearchEngine.create(folder) as engine:
            engine.encoder.build()
            report = Indexer(engine, workers=2).add(music_library_2h())
            print(f"indexed {report.audio_s / 3600:.2f} h, {len(engine.segments)} segments, {report.realtime_factor:.0f}x realtime")
            result = {"machine": info, "command": "python benchmarks/query_latency.py " + " ".join(sys.argv[1:]),
                      "library_hours": round(report.audio_s / 3600, 3), "real_segments": len(engine.segments), "clips": len(queries)}
            if args.pad_to:
                result["padding_s"] = round(pad(engine, args.pad_to, args.seed), 1)
            engine.query_batch([(queries[0][1], SR)])  # warm up: tracing, lazy imports
            stats = engine.stats()
            result.update(segments=len(engine.segments), index_factory=stats["index_factory"], index_type=stats["index_type"],
                          bytes_per_segment=stats["bytes_per_segment"], max_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
            print(f"{result['segments']} segments, {stats['index_factory']}, {stats['bytes_per_segment']} B/segment in the FAISS index")
            result["engine_index"] = measure(engine, queries)
            print("engine index:", result["engine_index"])
            if not engine.segments.is_flat:  # the same catalog and exact store, searched exactly
                compressed = engine.segments
                ids = np.sort(compressed.ids())
                engine.segments = VectorIndex.build(engine.encoder.dim, "IDMap2,Flat", ids, engine.store.__getitem__)
                engine.refresh = lambda: False  # keep the exact index for this comparison
                result["exact_index"] = measure(engine, queries)
                print("exact index:", result["exact_index"])
                q = np.concatenate([engine.encoder.encode_windows(engine.encoder.windows(y, hop_frames=engine.query_hop_frames)[0])
                                    for _, y, _, _ in queries])
                same = compressed.search(q, 1)[1][:, 0] == engine.segments.search(q, 1)[1][:, 0]
                result["recall_at_1"] = round(float(same.mean()), 4)  # per query window, vs exact search
                print(f"recall@1 of {len(q)} query windows against exact search: {result['recall_at_1']:.3f}")
    name = "query_latency_1m" if args.pad_to >= 1_000_000 else "query_latency_2h" if not args.pad_to else f"query_latency_{args.pad_to}"
    print("wrote", write_result(name, result))


if __name__ == "__main__":
    main()
