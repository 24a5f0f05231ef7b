"""What a user waits for at the command line: cold commands, batched queries, indexing at the
decode limit, and a folder of many small files.

Every figure is the wall time of a fresh ``audio2vec`` process (start-up included), run through
the installed entry point with no options but ``--index``:

- cold commands, median of ``--repeat`` (5): ``--help``, ``stats``, a refusal (a query against a
  folder with no index), one match query and one similar query of a 3 s clip, on the 2-hour
  library (``common.music_library_2h``: SuperTuxKart OGGs and MP3 transcodes);
- one ``query`` call with 582 clips (half 3 s, half 10 s, cut from the library at random places
  and written as WAV at the source rate), and the per-stage split from the Python API;
- ``audio2vec index`` of the 2-hour library into a new index, beside a decode-only pass over the
  same files with as many processes as the indexer starts (``search_engine.audio.load``, one BLAS
  thread each): the ratio says how close indexing comes to the decoder's own rate;
- ``audio2vec index`` of 10,000 one-shots of 0.05-2 s (``common.oneshot_library``), in files per
  second.

    python benchmarks/cli_speed.py [--repeat 5] [--parts index cold batch oneshots]

``--parts`` measures only those (an index of the library is still built for ``cold`` and
``batch``), keeping the other parts' figures already in ``benchmarks/results/cli_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, music_library_2h, oneshot_library, write_result  # noqa: E402

CLI = [str(Path(sys.executable).with_name("audio2vec"))]
PARTS = ("index", "cold", "batch", "oneshots")
RESULT = Path(__file__).resolve().parent / "results" / "cli_speed.json"


def timed(args: list[str], *, ok=(0,)) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(CLI + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in ok:
        raise SystemExit(f"audio2vec {' '.join(args[:3])}... exited {proc.returncode}: {proc.stderr[-500:]}")
    return wall


def median_of(n: int, args: list[str], **kw) -> dict:
    walls = [timed(args, **kw) for _ in range(n)]
    return {"median_s": round(statistics.median(walls), 3), "runs_s": [round(w, 3) for w in walls]}


def clips(files: list[Path], out: Path, n: int = 582, seed: int = 1) -> list[Path]:
    """``n`` excerpts, alternately 3 s and 10 s, at random places of random library files."""
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = []
    for i in range(n):
        f = files[rng.integers(len(files))]
        info = sf.info(str(f))
        length = 3.0 if i % 2 == 0 else 10.0
        start = rng.uniform(0, info.duration - length - 0.1)
        y, sr = sf.read(str(f), start=int(start * info.samplerate), frames=int(length * info.samplerate), dtype="float32")
        path = out / f"clip{i:03d}_{int(length)}s.wav"
        sf.write(str(path), y, sr)
        made.append(path)
    return made


def _decode(path: str) -> float:
    from search_engine.audio import load

    y, sr = load(path, sr=16000)
    return len(y) / sr


def decode_only(files: list[Path], processes: int) -> dict:
    """Seconds to decode ``files`` in ``processes`` single-threaded processes, pool start included."""
    from indexer.indexer import _worker_init

    t0 = time.perf_counter()
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        audio = sum(pool.map(_decode, [str(f) for f in files]))
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 2), "x_realtime": round(audio / wall, 1), "audio_s": round(audio, 1)}


def index_run(paths: list, index: Path) -> float:
    shutil.rmtree(index, ignore_errors=True)
    return timed(["index", *map(str, paths), "--index", str(index), "--no-progress"])


def stage_split(index: Path, clip_paths: list[Path]) -> dict:
    """Mean seconds per stage of a 3 s and of a 10 s clip, from one batched API call."""
    from search_engine import SearchEngine

    with SearchEngine.open(index) as engine:
        engine.encoder.build()
        results = engine.query_batch([str(c) for c in clip_paths])
    out = {}
    for length in (3, 10):
        rows = [r.timings for r in results if f"_{length}s" in r.query]
        out[f"{length}s"] = {k: round(1000 * float(np.mean([t[k] for t in rows])), 2) for k in rows[0]} | {"unit": "ms per clip"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = ap.parse_args()
    info = machine()
    print(info)
    files = music_library_2h()
    every = set(args.parts) == set(PARTS)
    result: dict = {} if every or not RESULT.exists() else json.loads(RESULT.read_text())
    result["machine"] = info
    command = "python benchmarks/cli_speed.py" + ("" if every else " --parts " + " ".join(args.parts))
    result.setdefault("commands", {}).update({part: command for part in args.parts})
    work = Path(tempfile.mkdtemp(prefix="a2v_cli_speed_"))
    try:
        index = work / "index2h"
        walls = [index_run(files, index) for _ in range(3 if "index" in args.parts else 1)]
        if "index" in args.parts:
            processes = os.cpu_count() or 1  # what `workers: 0` starts
            dec = decode_only(files, processes)
            wall = statistics.median(walls)
            result["index_2h"] = {
                "files": len(files), "audio_s": dec["audio_s"], "workers": processes, "runs_s": [round(w, 2) for w in walls],
                "median_s": round(wall, 2), "x_realtime": round(dec["audio_s"] / wall, 1),
                "decode_only": dec, "share_of_decode_only_rate": round(dec["seconds"] / wall, 3),
            }
            print("index 2h:", result["index_2h"])

        if "cold" in args.parts:
            clip = clips(files, work / "single", n=1, seed=7)[0]  # 3 s
            result["cold"] = {
                "help": median_of(args.repeat, ["--help"]),
                "stats": median_of(args.repeat, ["stats", "--index", str(index)]),
                "refusal": median_of(args.repeat, ["query", str(clip), "--index", str(work / "none")], ok=(1,)),
                "match_query_3s": median_of(args.repeat, ["query", str(clip), "--index", str(index), "--json"]),
                "similar_query_3s": median_of(args.repeat, ["query", str(clip), "--index", str(index), "--json", "--mode", "similar"]),
            }
            print("cold:", json.dumps(result["cold"]))

        if "batch" in args.parts:
            batch = clips(files, work / "clips")
            walls = [timed(["query", *map(str, batch), "--index", str(index), "--json"]) for _ in range(3)]
            wall = statistics.median(walls)
            result["batch_582"] = {
                "clips": len(batch), "runs_s": [round(w, 2) for w in walls], "median_s": round(wall, 2),
                "ms_per_clip": round(1000 * wall / len(batch), 1), "stages": stage_split(index, batch),
            }
            print("batch:", result["batch_582"])

        if "oneshots" in args.parts:
            shots = oneshot_library()
            folder = shots[0].parents[1]
            walls = [index_run([folder], work / "index_shots") for _ in range(3)]
            wall = statistics.median(walls)
            result["oneshots"] = {"files": len(shots), "runs_s": [round(w, 2) for w in walls], "median_s": round(wall, 2),
                                  "files_per_s": round(len(shots) / wall, 1)}
            print("one-shots:", result["oneshots"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("wrote", write_result("cli_speed", result))


if __name__ == "__main__":
    main()
