"""Load on `audio2vec serve`: concurrent uploads of short clips to a server on 127.0.0.1.

A library of synthetic tunes (tests/synth.py) is indexed; CLIPS clips of SECONDS s are cut from it
(a tenth with noise added, a tenth from tunes not in the library); `audio2vec query --json` answers
them all once (the reference). Then a server (`audio2vec serve`, its own process) gets CLIPS
concurrent uploads (POST /query) per round, ROUNDS rounds: throughput, latency p50/p95/p99, errors,
the server's memory (VmRSS) after each round, and how many answers equal the CLI's (same recordings,
ranks, offsets and matched, distances within 1e-4). Then the same while `audio2vec index` adds more
tunes in another process, committing every 2 files: the server must keep answering and see the
commits; after that run the CLI answers again and one more round is compared with it.

    python benchmarks/serve_load.py            # writes benchmarks/results/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import REPO, machine, write_result  # noqa: E402
from synth import SR, add_noise, tune  # noqa: E402

CLI = [sys.executable, "-m", "search_engine.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "TF_CPP_MIN_LOG_LEVEL": "3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mib": out.get("VmRSS"), "peak_rss_mib": out.get("VmHWM")}


def make_library(folder: Path, n: int, seconds: float, seed0: int) -> dict[Path, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        y = tune(seed0 + i, seconds)
        p = folder / f"tune{seed0 + i}.wav"
        sf.write(p, y, SR)
        out[p] = y
    return out


def make_clips(folder: Path, library: dict[Path, np.ndarray], n: int, seconds: float, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = list(library.items())
    clips = []
    for i in range(n):
        kind = "outside" if i % 10 == 9 else "noisy" if i % 10 == 4 else "clean"
        if kind == "outside":
            y = tune(900_000 + i, seconds)
        else:
            _, full = items[rng.integers(len(items))]
            start = int(rng.uniform(0, len(full) / SR - seconds) * SR)
            y = full[start : start + int(seconds * SR)]
            if kind == "noisy":
                y = add_noise(y, snr_db=10, seed=i)
        p = folder / f"clip{i:03d}_{kind}.wav"
        sf.write(p, y, SR)
        clips.append(p)
    return clips


def cli_answers(index: Path, clips: list[Path], k: int) -> dict[str, dict]:
    t0 = time.perf_counter()
    run = subprocess.run(CLI + ["query", *map(str, clips), "--index", str(index), "--json", "-k", str(k)], env=ENV, capture_output=True, text=True)
    if run.returncode not in (0, 3):
        raise SystemExit(f"CLI query failed: {run.stderr}")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    print(f"  CLI: {len(lines)} clips in {time.perf_counter() - t0:.1f} s (one process, models loaded once)", flush=True)
    return {Path(line["query"]).name: line for line in lines}


def same(a: dict, b: dict) -> tuple[bool, bool, float]:
    """(whole answer equal but the query name, top result equal, largest distance difference)."""
    ra, rb = a.get("results", []), b.get("results", [])
    strip = lambda rs: [{k: v for k, v in r.items() if k != "distance"} for r in rs]  # noqa: E731
    diff = max((abs(x["distance"] - y["distance"]) for x, y in zip(ra, rb)), default=0.0)
    whole = strip(ra) == strip(rb) and a.get("matched") == b.get("matched") and diff <= 1e-4 and "error" not in a
    top = bool(ra) and bool(rb) and strip(ra[:1]) == strip(rb[:1]) and a.get("matched") == b.get("matched")
    return whole, top, diff


async def one_round(url: str, clips: list[Path], k: int) -> tuple[list[float], list[dict | str], float]:
    import httpx

    payloads = [(p.name, p.read_bytes()) for p in clips]
    limits = httpx.Limits(max_connections=len(clips), max_keepalive_connections=len(clips))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(600.0)) as client:

        async def ask(name: str, data: bytes):
            t0 = time.perf_counter()
            try:
                r = await client.post("/query", params={"k": k}, files={"clip": (name, data, "audio/wav")})
                body = r.json() if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}"
            except Exception as exc:  # noqa: BLE001 - counted as an error
                body = f"{type(exc).__name__}: {exc}"
            return time.perf_counter() - t0, body

        t0 = time.perf_counter()
        got = await asyncio.gather(*(ask(n, d) for n, d in payloads))
        wall = time.perf_counter() - t0
    return [g[0] for g in got], [g[1] for g in got], wall


def summarise(name: str, lat: list[float], answers: list, wall: float, references: dict[str, dict[str, dict]], clips: list[Path], server_mem: dict, health: dict) -> dict:
    """One round's figures; answers compared with each reference (CLI answers) in ``references``."""
    errors = [a for a in answers if not isinstance(a, dict)]
    ms = np.array(lat) * 1000
    row = {
        "round": name,
        "uploads": len(clips),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": round(wall, 2),
        "throughput_per_s": round(len(clips) / wall, 1),
        "latency_ms": {q: round(float(np.percentile(ms, int(q[1:]))), 1) for q in ("p50", "p95", "p99")} | {"max": round(float(ms.max()), 1)},
        "server": server_mem,
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        "index_after": {k: health[k] for k in ("files", "segments", "generation")},
    }
    either = 0
    for ref_name, reference in references.items():
        whole = top = top_indexed = indexed = 0
        worst = 0.0
        for clip, a in zip(clips, answers):
            from_index = not clip.stem.endswith("outside")
            indexed += from_index
            if isinstance(a, dict):
                w, t, d = same(a, reference[clip.name])
                whole, top, top_indexed, worst = whole + w, top + t, top_indexed + (t and from_index), max(worst, d)
        row[f"same_as_cli{ref_name}"] = whole
        row[f"top_result_same_as_cli{ref_name}"] = top
        row[f"top_result_same_as_cli{ref_name}_clips_from_indexed_tunes"] = f"{top_indexed}/{indexed}"
        row[f"max_distance_diff{ref_name}"] = round(worst, 7)
    if len(references) > 1:
        for clip, a in zip(clips, answers):
            either += isinstance(a, dict) and any(same(a, ref[clip.name])[0] for ref in references.values())
        row["same_as_one_of_the_cli_answers"] = either
    first = next(iter(references))
    print(
        f"  {name}: {row['throughput_per_s']}/s, p50 {row['latency_ms']['p50']} ms, p95 {row['latency_ms']['p95']} ms, "
        f"p99 {row['latency_ms']['p99']} ms, errors {row['errors']}, same as CLI{first} {row['same_as_cli' + first]}/{len(clips)} "
        f"(top {row['top_result_same_as_cli' + first]})" + (f", same as one of the CLI answers {either}" if len(references) > 1 else "")
        + f", RSS {server_mem['rss_mib']} MiB, index {row['index_after']}",
        flush=True,
    )
    return row


def health(url: str) -> dict:
    import httpx

    return httpx.get(url + "/health", timeout=60).json()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--library", type=int, default=40, help="tunes indexed before the server starts")
    ap.add_argument("--tune-s", type=float, default=30.0)
    ap.add_argument("--extra", type=int, default=24, help="tunes indexed while the server answers")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--out", default="serve_load")
    ap.add_argument("--no-writer", action="store_true", help="quiet rounds only (no index run)")
    args = ap.parse_args()
    info = machine()
    print(f"machine: {info}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="audio2vec-serve-load-"))
    server = None
    try:
        library = make_library(work / "library", args.library, args.tune_s, 1000)
        make_library(work / "extra", args.extra, args.tune_s, 5000)
        clips = make_clips(work / "clips", library, args.clips, args.seconds, seed=7)
        index = work / "index"
        t0 = time.perf_counter()
        subprocess.run(CLI + ["index", str(work / "library"), "--index", str(index)], env=ENV, check=True, capture_output=True)
        print(f"indexed {args.library} tunes of {args.tune_s:g} s in {time.perf_counter() - t0:.1f} s", flush=True)
        reference = cli_answers(index, clips, args.k)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(work / "server.log", "w")
        t0 = time.perf_counter()
        server = subprocess.Popen(CLI + ["serve", "--index", str(index), "--port", str(port)], env=ENV, stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                h = health(url)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if server.poll() is not None:
                    raise SystemExit(f"server exited: {(work / 'server.log').read_text()}")
                time.sleep(0.2)
        startup_s = time.perf_counter() - t0
        print(f"server up in {startup_s:.1f} s: {h}; RSS {rss_mib(server.pid)}", flush=True)
        start_rss = rss_mib(server.pid)

        quiet = []
        for r in range(args.rounds):
            lat, answers, wall = asyncio.run(one_round(url, clips, args.k))
            quiet.append(summarise(f"quiet {r + 1}", lat, answers, wall, {"": reference}, clips, rss_mib(server.pid), health(url)))

        if args.no_writer:
            write_result(args.out, {"command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]), "machine": info, "server_at_start": start_rss, "quiet_rounds": quiet})
            return
        env = {**ENV, "AUDIO2VEC_COMMIT_EVERY_FILES": "2"}
        gen0 = health(url)["generation"]
        t0 = time.perf_counter()
        writer = subprocess.Popen(CLI + ["index", str(work / "extra"), "--index", str(index)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        raw = []
        while len(raw) < args.rounds and (writer.poll() is None or not raw):
            lat, answers, wall = asyncio.run(one_round(url, clips, args.k))
            raw.append((lat, answers, wall, rss_mib(server.pid), health(url), writer.poll() is None))
            print(f"  while indexing {len(raw)}: {len(clips) / wall:.1f}/s, generation {raw[-1][4]['generation']}", flush=True)
        writer_err = writer.communicate()[1]
        index_s = time.perf_counter() - t0
        after_health = health(url)
        commits = after_health["generation"] - gen0
        print(f"index run: {writer.returncode=} in {index_s:.1f} s, {commits} commits seen by the server; {after_health}", flush=True)
        reference_after = cli_answers(index, clips, args.k)
        during = []
        for i, (lat, answers, wall, mem, h, running) in enumerate(raw, 1):
            refs = {"_before_index_run": reference, "_after_index_run": reference_after}
            during.append(summarise(f"while indexing {i}", lat, answers, wall, refs, clips, mem, h) | {"writer_running_at_end": running})
        lat, answers, wall = asyncio.run(one_round(url, clips, args.k))
        after = summarise("after indexing", lat, answers, wall, {"": reference_after}, clips, rss_mib(server.pid), health(url))

        result = {
            "benchmark": "serve_load",
            "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
            "machine": info,
            "note": "2-core machine shared with other sessions' benchmarks; this one ran under nice -n 10, so a round that "
            "stalls (p99 far above p95, low throughput, high loadavg) was starved by them; client (httpx, one asyncio loop), "
            "server and index run share the same cores",
            "setup": {
                "library_tunes": args.library, "tune_s": args.tune_s, "extra_tunes_indexed_while_serving": args.extra,
                "clips": args.clips, "clip_s": args.seconds, "k": args.k,
                "clip_kinds": "9 in 10 excerpts of indexed tunes (1 in 10 of all with white noise at 10 dB SNR), 1 in 10 from tunes not indexed",
                "commit_every_files_while_serving": 2,
            },
            "server_startup_s": round(startup_s, 1),
            "server_at_start": start_rss,
            "quiet_rounds": quiet,
            "while_indexing": {
                "rounds": during,
                "index_run_s": round(index_s, 1),
                "index_exit_code": writer.returncode,
                "index_stderr_tail": writer_err.strip().splitlines()[-2:],
                "commits_seen": commits,
                "files_after": after_health["files"],
                "note": "answers compared with the CLI's before and after the run: a round during it sees intermediate generations, "
                "where new tunes may enter the lists (and be the nearest, unmatched, to a clip from a tune not indexed)",
            },
            "after_indexing_vs_cli_after": after,
        }
        out = write_result(args.out, result)
        print(f"wrote {out}")
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
