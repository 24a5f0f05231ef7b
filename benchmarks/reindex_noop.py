"""No-op re-index: how fast ``audio2vec index`` skips a library where nothing changed.

Builds N small distinct WAV files (1.1 s synthetic tones and noise, default 10 000), indexes them
once, then measures re-indexing the same folder (every file unchanged: one stat per file, no read)
in-process and through the CLI, and a re-index after touching every file (new mtime, same bytes:
each file is hashed, none re-embedded). Prints the machine and files/s; writes
benchmarks/results/reindex_noop.json.

    python benchmarks/reindex_noop.py [--files 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, write_result  # noqa: E402

SR = 16000


def make_library(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.1 * SR)) / SR
    for i in range(n):
        f = rng.uniform(100, 4000, size=3)
        y = sum(np.sin(2 * np.pi * fi * t) for fi in f) / 4 + 0.05 * rng.standard_normal(len(t))
        sub = root / f"{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        sf.write(sub / f"s{i:05d}.wav", (0.5 * y).astype(np.float32), SR, subtype="PCM_16")


def timed_cli(*args: str) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    subprocess.run([str(REPO / ".venv/bin/audio2vec"), *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    args = ap.parse_args()
    from indexer import Indexer
    from search_engine import SearchEngine

    info = machine()
    print(info)
    with tempfile.TemporaryDirectory() as tmp:
        lib, idx = Path(tmp) / "lib", Path(tmp) / "idx"
        lib.mkdir()
        make_library(lib, args.files)
        with SearchEngine.create(idx) as engine:
            first = Indexer(engine).add([lib])
            assert first.added == args.files, first.as_dict()
            print(f"first index: {args.files} files in {first.seconds:.1f} s ({args.files / first.seconds:.0f} files/s)")
            noop = Indexer(engine).add([lib])
            assert noop.unchanged == args.files
        cli_s = timed_cli("index", str(lib), "--index", str(idx), "--no-progress")
        for p in lib.rglob("*.wav"):
            os.utime(p)
        with SearchEngine.open(idx) as engine:
            touched = Indexer(engine).add([lib])
            assert touched.unchanged == args.files and touched.added == touched.updated == 0
    result = {
        "machine": info,
        "command": "python benchmarks/reindex_noop.py --files %d" % args.files,
        "files": args.files,
        "first_index_files_per_s": round(args.files / first.seconds, 1),
        "noop_api_s": round(noop.seconds, 3),
        "noop_api_files_per_s": round(args.files / noop.seconds, 1),
        "noop_cli_s_including_startup": round(cli_s, 3),
        "noop_cli_files_per_s": round(args.files / cli_s, 1),
        "touched_api_s": round(touched.seconds, 3),
        "touched_api_files_per_s": round(args.files / touched.seconds, 1),
    }
    for key, value in result.items():
        if key != "machine":
            print(f"{key:32} {value}")
    print("wrote", write_result("reindex_noop", result))


if __name__ == "__main__":
    main()
