"""Indexing throughput: seconds of audio stored per second of wall time, at 1 and 2 workers.

Library (default ``2h``): 2 hours of OGG and MP3 music, the SuperTuxKart pieces (OGG, 44.1/48 kHz
stereo) plus MP3 transcodes of them (``common.music_library_2h``); ``stk``: only the 31 OGG pieces
(51 min) that earlier figures used. Each run indexes the library into a fresh index through the
Python API with the network already built (model loading is not counted; starting the worker
processes is), from decode to committed vectors. Also prints where one process spends its time per
stage.

    python benchmarks/indexing_speed.py [--workers 1 2] [--library 2h|stk]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, music_library_2h, stk_music_library, write_result  # noqa: E402


def stages(files) -> dict:
    """Seconds per stage for the files, in this process (decode, spectrogram, encoder: the
    segment vectors, whole: the whole-sound vector by the similar model)."""
    from search_engine.audio import load
    from search_engine.audio2vec import Encoder
    from search_engine.audio2vec.encoder import spectrogram

    enc = Encoder.load("default").build()
    t = dict(decode=0.0, spectrogram=0.0, encoder=0.0, whole=0.0)
    audio = 0.0
    for f in files:
        t0 = time.perf_counter()
        y, sr = load(f, sr=enc.features.sample_rate_hz)
        t1 = time.perf_counter()
        mel = spectrogram(y, enc.features)
        t2 = time.perf_counter()
        enc.embed_spectrogram(mel, hop_frames=32, duration_s=len(y) / sr)
        t3 = time.perf_counter()
        enc.whole(mel)
        t["whole"] += time.perf_counter() - t3
        t["decode"] += t1 - t0
        t["spectrogram"] += t2 - t1
        t["encoder"] += t3 - t2
        audio += len(y) / sr
    return {k: {"seconds": round(v, 2), "x_realtime": round(audio / v)} for k, v in t.items()} | {"audio_s": round(audio, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--library", choices=["2h", "stk"], default="2h")
    args = ap.parse_args()
    from indexer import Indexer
    from search_engine import SearchEngine

    info = machine()
    print(info)
    files = music_library_2h() if args.library == "2h" else stk_music_library()
    runs = {}
    for w in args.workers:
        with tempfile.TemporaryDirectory() as tmp, SearchEngine.create(tmp) as engine:
            engine.encoder.build()
            report = Indexer(engine, workers=w).add(files)
            runs[str(w)] = {"seconds": round(report.seconds, 2), "audio_s": round(report.audio_s, 1), "x_realtime": round(report.realtime_factor, 1)}
            print(f"workers {w}: {report.audio_s / 60:.1f} min of audio in {report.seconds:.1f} s = {report.realtime_factor:.0f}x realtime")
    split = stages(files)
    print("one process, per stage:", split)
    result = {"machine": info, "command": f"python benchmarks/indexing_speed.py --workers {' '.join(map(str, args.workers))} --library {args.library}",
              "library": args.library, "files": len(files), "workers": runs, "stages_one_process": split}
    print("wrote", write_result("indexing_speed" if args.library == "2h" else "indexing_speed_stk", result))


if __name__ == "__main__":
    main()
