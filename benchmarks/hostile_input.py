"""Hostile input through the real command line: what the user sees for every bad or odd file.

Builds every case of tests/hostile_cases.py (empty, truncated, not audio, 1 sample, silence, DC,
NaN/inf, 2 GiB sparse junk, FIFO, /dev/zero, symlink loops, unreadable, odd names, odd rates and
channels, wrong extensions, Vorbis inside a WAV, ...) in a temporary folder, plus a folder named
``x.wav`` and a folder with a symlink loop, and indexes each case on its own with

    .venv/bin/audio2vec index <case folder> --index <tmp index> --json

into one shared index (each run under a time limit, in its own process group), noting the stderr
error lines, the exit code, whether the file got in, and whether the index stayed as it was (and
still opens). Then queries bad clips (too short, silent, unreadable) next to good ones, and indexes
one 3-hour file (16 kHz mono PCM16, ~330 MiB: a synthetic tune tiled) for its time and the peak
RSS of the CLI process (``os.wait4`` rusage of that child: ``ru_maxrss``).

Prints the machine and a markdown table; writes benchmarks/results/hostile_input.json and .md.

    python benchmarks/hostile_input.py [--hours 3] [--timeout 60] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import REPO, result_header, write_result  # noqa: E402
from hostile_cases import BAD, GOOD, Case  # noqa: E402
from synth import SR, tune  # noqa: E402
from search_engine.catalog import path_key  # noqa: E402

CLI = REPO / ".venv" / "bin" / "audio2vec"


def run_cli(args: list[str], *, timeout: float) -> dict:
    """Run the CLI; returns exit code (None: killed after ``timeout``), stdout, stderr, wall
    seconds and the child's own peak RSS (MiB, from wait4)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(CLI), *args], stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True)
        killed = threading.Event()

        def kill():
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return {
            "exit": None if killed.is_set() else proc.returncode,
            "stdout": out.read().decode("utf-8", "backslashreplace"),
            "stderr": err.read().decode("utf-8", "backslashreplace"),
            "seconds": round(seconds, 2),
            "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
        }


def index_stats(index: Path) -> dict | None:
    r = run_cli(["stats", "--index", str(index), "--json"], timeout=120)
    if r["exit"] != 0:
        return None
    s = json.loads(r["stdout"].strip().splitlines()[-1])
    return {k: s[k] for k in ("files", "segments", "vectors")}


def user_sees(r: dict, tmp: Path) -> str:
    """The stderr lines a user reads (errors first), the temp folder shortened to ``…``."""
    if r["exit"] is None:
        return f"(nothing: still running after {r['timeout']:.0f} s, killed)"
    lines = [line for line in r["stderr"].splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        shown = errors
    elif any(line.startswith("Traceback") for line in lines):
        shown = ["CRASH: " + lines[-1]]
    else:
        shown = lines[-1:]
    return " / ".join(line.replace(str(tmp), "…") for line in shown)


def build_cases(root: Path) -> list[tuple[Case, Path, Path]]:
    """Every case in its own folder: (case, folder to index, the file itself)."""
    out = []
    for case in [*BAD, *GOOD, *EXTRA]:
        folder = root / case.name
        folder.mkdir()
        out.append((case, folder, case.make(folder)))
    return out


def _folder_named_wav(d: Path) -> Path:
    (d / "album.wav").mkdir()
    sf.write(d / "album.wav" / "track.wav", tune(70, 4.0), SR)
    return d / "album.wav"


def _folder_symlink_loop(d: Path) -> Path:
    (d / "sub").mkdir()
    sf.write(d / "sub" / "song.wav", tune(71, 4.0), SR)
    (d / "sub" / "up").symlink_to(d)
    (d / "here").symlink_to(".")
    return d / "sub" / "song.wav"


EXTRA = [
    Case("folder_named_wav", _folder_named_wav, "index", what="a folder named album.wav holding a track (walked)"),
    Case("folder_symlink_loop", _folder_symlink_loop, "index", what="folder with symlinks back to itself"),
]


def long_file(path: Path, hours: float) -> float:
    """``hours`` of 16 kHz mono PCM16: one 60 s tune tiled, written a minute at a time."""
    minute = tune(99, 60.0)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(int(round(hours * 60))):
            f.write(minute)
    return path.stat().st_size / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=3.0, help="length of the long file (0: skip it)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one case may take before it counts as hung")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    ap.add_argument("--name", default="hostile_input")
    args = ap.parse_args(argv)

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="a2v_hostile_"))
    tmp.mkdir(parents=True, exist_ok=True)
    cases_dir, index = tmp / "cases", tmp / "index"
    try:
        cases_dir.mkdir()
        built = build_cases(cases_dir)
        # a first file, so that "unchanged" means something
        seed = tmp / "seed"
        seed.mkdir()
        sf.write(seed / "first.wav", tune(1, 10.0), SR)
        assert run_cli(["index", str(seed), "--index", str(index), "--json"], timeout=300)["exit"] == 0
        before = index_stats(index)

        rows = []
        for case, folder, path in built:
            r = run_cli(["index", str(folder), "--index", str(index), "--json"], timeout=args.timeout)
            r["timeout"] = args.timeout
            summary = None
            if r["exit"] in (0, 3) and r["stdout"].strip():
                summary = json.loads(r["stdout"].strip().splitlines()[-1])
                after = {k: summary["index"][k] for k in ("files", "segments", "vectors")}
            else:  # crashed or hung: does the index still open, and is it as it was?
                after = index_stats(index)
            indexed = bool(summary) and summary["added"] + summary["copied"] + summary["moved"] > 0
            unchanged = after == before
            expect = case.expect
            if case.name == "unreadable" and os.geteuid() == 0:
                expect = "index"  # root reads a chmod 000 file: indexing it is right
            if expect == "fail":
                ok = not indexed and unchanged and r["exit"] == 3 and len([l for l in r["stderr"].splitlines() if l.startswith("error:")]) == 1
            else:
                ok = indexed and r["exit"] == 0
            rows.append({
                "case": case.name,
                "what": case.what,
                "expect": expect,
                "user_sees": user_sees(r, tmp),
                "exit": r["exit"],
                "indexed": indexed,
                "index_unchanged": unchanged,
                "index_after": after,
                "seconds": r["seconds"],
                "ok": ok,
            })
            print(f"{case.name:<22} exit={r['exit']!s:<5} {r['seconds']:6.1f} s  {'ok ' if ok else 'BAD'} {rows[-1]['user_sees'][:110]}",
                  file=sys.stderr, flush=True)
            before = after if after is not None else before

        # a bad file is refused from its header: it takes no longer than the quick refusals
        quick = float(np.median([r["seconds"] for r in rows if r["expect"] == "fail" and r["exit"] == 3]))
        for r in rows:
            r["slow"] = r["expect"] == "fail" and r["seconds"] > quick + 3.0
            r["ok"] = r["ok"] and not r["slow"]
        queries = query_cases(tmp, index)
        long = index_long_file(tmp, args.hours) if args.hours > 0 else None
    finally:
        for p in cases_dir.rglob("*") if cases_dir.exists() else []:
            try:
                if not p.is_symlink():
                    p.chmod(0o755)
            except OSError:
                pass
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)

    out = {
        **result_header("hostile_input", argv),
        "run_as_root": os.geteuid() == 0,
        "cases": rows,
        "queries": queries,
        "long_file": long,
        "cases_ok": sum(r["ok"] for r in rows),
        "cases_total": len(rows),
    }
    md = markdown(out)
    print(f"wrote {write_result(args.name, out, markdown=md)}", file=sys.stderr)
    print(md)
    return 0


def query_cases(tmp: Path, index: Path) -> dict:
    """``query --json`` with bad clips between good ones: one line each, in order."""
    d = tmp / "clips"
    d.mkdir()
    y = tune(1, 10.0)  # the seed file of the index
    clips = {
        "good.wav": lambda p: sf.write(p, y[2 * SR : 7 * SR], SR),
        "short_0.3s.wav": lambda p: sf.write(p, y[SR : SR + int(0.3 * SR)], SR),
        "short_0.8s.wav": lambda p: sf.write(p, y[SR : SR + int(0.8 * SR)], SR),
        "silent.wav": lambda p: sf.write(p, np.zeros(3 * SR, np.float32), SR),
        "unreadable.wav": lambda p: p.write_bytes(b"not audio\n" * 40),
        "good_again.wav": lambda p: sf.write(p, y[4 * SR : 9 * SR], SR),
    }
    paths = []
    for name, make in clips.items():
        make(d / name)
        paths.append(str(d / name))
    r = run_cli(["query", *paths, "--index", str(index), "--json", "-k", "1"], timeout=120)
    lines = [json.loads(line) for line in r["stdout"].strip().splitlines()]
    answers = []
    for line in lines:
        top = line["results"][0] if line["results"] else None
        answers.append({
            "clip": Path(line["query"]).name,
            "answer": (f"error: {line['error']}".replace(str(tmp), "…") if "error" in line else
                       f"{Path(top['path']).name} at {top['offset_s']} s, distance {top['distance']:.3f}" if top else "no results"),
        })
    return {"exit": r["exit"], "lines": len(lines), "clips": len(paths), "answers": answers, "seconds": r["seconds"]}


def index_long_file(tmp: Path, hours: float) -> dict:
    folder = tmp / "long"
    folder.mkdir()
    path = folder / f"tune_{hours:g}h.wav"
    mib = long_file(path, hours)
    r = run_cli(["index", str(path), "--index", str(tmp / "index_long"), "--json"], timeout=3600)
    summary = json.loads(r["stdout"].strip().splitlines()[-1]) if r["exit"] == 0 else None
    clip = folder / "clip.wav"
    sf.write(clip, tune(99, 60.0)[20 * SR : 30 * SR], SR)
    q = run_cli(["query", str(clip), "--index", str(tmp / "index_long"), "--json", "-k", "1"], timeout=300)
    line = json.loads(q["stdout"].strip().splitlines()[-1]) if q["exit"] == 0 else {}
    return {
        "hours": hours,
        "file_mib": round(mib, 1),
        "exit": r["exit"],
        "wall_seconds": r["seconds"],
        "indexing_seconds": summary and summary["seconds"],
        "realtime_factor": summary and summary["realtime_factor"],
        "segments": summary and summary["index"]["segments"],
        "cli_max_rss_mib": r["max_rss_mib"],
        "error": None if r["exit"] == 0 else r["stderr"].strip().splitlines()[-1:],
        "query_found_it": bool(line.get("results")) and line["results"][0]["path"] == path_key(path),
        "query_seconds": q["seconds"],
        "query_max_rss_mib": q["max_rss_mib"],
    }


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", "\\n")


def markdown(out: dict) -> str:
    m = out["machine"]
    lines = [
        f"# Hostile input ({out['date']})",
        "",
        f"machine: {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB), Python {m['python']}"
        + ("; run as root (chmod 000 does not stop root)" if out["run_as_root"] else ""),
        f"command: `{out['command'].strip()}`; each case indexed on its own with "
        "`audio2vec index <case folder> --index <shared index> --json`",
        "",
        f"{out['cases_ok']} of {out['cases_total']} cases behave as they should (ok column: a bad file gives one "
        "error line, exit 3, no change to the index, in about the time of the quick refusals (s: seconds of the "
        "whole CLI run, mostly loading TensorFlow); a good one is indexed).",
        "",
        "| case | file | expect | what the user sees (stderr) | exit | indexed? | index unchanged by it | s | ok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["cases"]:
        unchanged = "yes" if r["index_unchanged"] else ("no (+1 file)" if r["indexed"] else "NO")
        if r["index_after"] is None:
            unchanged = "index does not open"
        lines.append(
            f"| {r['case']} | {_cell(r['what'])} | {r['expect']} | {_cell(r['user_sees'])} | {r['exit']} | "
            f"{'yes' if r['indexed'] else 'no'} | {unchanged} | {r['seconds']:.1f} | "
            f"{'ok' if r['ok'] else '**NO** (hung)' if r['exit'] is None else '**NO** (slow)' if r['slow'] else '**NO**'} |"
        )
    q = out["queries"]
    lines += [
        "",
        f"`audio2vec query <{q['clips']} clips> --json -k 1`: exit {q['exit']}, {q['lines']} lines, in order:",
        "",
        "| clip | answer |",
        "|---|---|",
        *[f"| {a['clip']} | {_cell(a['answer'])} |" for a in q["answers"]],
    ]
    long = out["long_file"]
    if long:
        lines += [
            "",
            f"Long file: {long['hours']:g} h of 16 kHz mono PCM16 ({long['file_mib']} MiB), `audio2vec index FILE --json`: "
            f"exit {long['exit']}, {long['wall_seconds']} s wall (indexing {long['indexing_seconds']} s, "
            f"{long['realtime_factor']}x realtime, {long['segments']} segments), peak RSS of the CLI process "
            f"{long['cli_max_rss_mib']} MiB; a 10 s clip query found it: {long['query_found_it']} "
            f"({long['query_seconds']} s, {long['query_max_rss_mib']} MiB).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
