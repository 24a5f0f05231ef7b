"""kill -9 at random moments, many times: the index always reopens consistent and loses nothing
that was committed; running the same command again finishes the job. Also: queries from another
process keep answering while an indexing run commits, and a second indexer is turned away."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from search_engine import SearchEngine
from search_engine.catalog import Catalog
from synth import SR, tune

#: kills per run of the test; AUDIO2VEC_KILLS=100 for a longer soak
KILLS = int(os.environ.get("AUDIO2VEC_KILLS", "12"))
FILES, SECONDS = 40, 8.0
SEGMENT = slice(int(1.024 * SR), int(5.024 * SR))  # a 4 s excerpt starting on a segment boundary


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    root = tmp_path_factory.mktemp("killlib")
    for i in range(FILES):
        sf.write(root / f"song {i:02d}.wav", tune(1000 + i, SECONDS), SR)
    return root


def _index_cmd(lib, idx, *extra):
    return [sys.executable, "-m", "search_engine.cli", "index", str(lib), "--index", str(idx), "--no-progress", *extra]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "AUDIO2VEC_COMMIT_EVERY_FILES": "2", **extra}


def _generation(idx) -> int:
    if not (idx / "catalog.sqlite").exists():
        return -1
    catalog = Catalog(f"sqlite:///{idx / 'catalog.sqlite'}")
    try:
        return int(catalog.settings().get("generation", -1))
    except Exception:  # tables not made yet
        return -1
    finally:
        catalog.close()


def _committed(idx, lib) -> dict[str, int]:
    """Open the index as a new process would, check it, query every committed file; {path: file id}."""
    with SearchEngine.open(idx) as engine:
        report = engine.check()
        assert report["ok"], report["problems"]
        files = {f.path: f.id for f in engine.catalog.files_under(str(lib))}
        clips = [(tune(1000 + int(os.path.basename(p)[5:7]), SECONDS)[SEGMENT], SR) for p in files]
        for path, result in zip(files, engine.query_batch(clips, k=1)):
            assert result.matches and result.matches[0].path == path, (path, result)
    return files


def _finish(lib, idx, committed: dict[str, int]) -> None:
    """Run the command to the end; everything is there and nothing committed was embedded again."""
    done = subprocess.run(_index_cmd(lib, idx), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    final = _committed(idx, lib)
    assert len(final) == FILES and all(final[p] == committed[p] for p in committed)
    assert not [p.name for p in idx.iterdir() if p.name.endswith(".tmp")]


def test_kill_9_at_random_moments_never_loses_or_corrupts(lib, tmp_path):
    rng = random.Random(20261126)
    rounds, idx = 0, tmp_path / "idx0"
    committed: dict[str, int] = {}
    kills = reopened = 0
    while kills < KILLS:
        proc = subprocess.Popen(_index_cmd(lib, idx), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        start_gen = _generation(idx)
        if rng.random() < 0.25:  # anywhere, start-up included
            time.sleep(rng.uniform(0.5, 6.0))
        else:  # after a few more commits, at a random moment between two of them
            wait_for = start_gen + rng.randint(1, 4)
            deadline = time.monotonic() + 60
            while _generation(idx) < wait_for and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is not None:  # it finished first: check it, then start over in a new index
            assert proc.returncode == 0, proc.stderr.read()
            _finish(lib, idx, committed)
            rounds, idx, committed = rounds + 1, tmp_path / f"idx{rounds + 1}", {}
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        now = _committed(idx, lib) if _generation(idx) >= 0 else {}
        reopened += 1
        lost = {p for p in committed if now.get(p) != committed[p]}
        assert not lost, f"committed files lost or re-embedded after kill {kills}: {sorted(lost)}"
        committed = now
    _finish(lib, idx, committed)
    print(f"\nkill test: {kills} kills in {rounds + 1} indexes, {reopened} consistent reopenings, 0 files lost")


def test_queries_keep_answering_while_another_process_indexes(lib, tmp_path):
    idx = tmp_path / "idx"
    with SearchEngine.create(idx) as reader:
        proc = subprocess.Popen(_index_cmd(lib, idx), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        answers, errors, generations = 0, [], set()
        probe = (tune(1000, SECONDS)[SEGMENT], SR)
        while proc.poll() is None:
            try:
                res = reader.query_batch([probe], k=1)[0]
                generations.add(reader.generation)
                if res.error:
                    errors.append(res.error)
                answers += 1
            except Exception as exc:  # pragma: no cover - the failure this test is about
                errors.append(repr(exc))
        assert proc.returncode == 0, proc.stderr.read()
        assert reader.query((tune(1000 + FILES - 1, SECONDS)[SEGMENT], SR), k=1)[0].path.endswith(f"song {FILES - 1:02d}.wav")
    print(f"\nconcurrent queries: {answers} answered during indexing, {len(errors)} errors, {len(generations)} generations seen")
    assert not errors and answers > 0 and len(generations) > 2


def test_a_second_indexer_is_turned_away_with_a_clear_message(lib, tmp_path):
    idx = tmp_path / "idx"
    with SearchEngine.create(idx) as engine, engine.writing():
        second = subprocess.run(_index_cmd(lib, idx), env=_env(), capture_output=True, text=True)
    assert second.returncode == 1
    assert "being written by another process" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    with SearchEngine.open(idx) as engine:
        assert engine.stats()["files"] == 0


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (from /proc), at this moment."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_decoding_workers_end_with_a_killed_indexer(lib, tmp_path):
    """kill -9 of an indexing run leaves no decoding worker (nor their forkserver) behind."""
    proc = subprocess.Popen(_index_cmd(lib, tmp_path / "idx", "--workers", "2"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, children = time.monotonic() + 60, set()
    while len(children) < 3 and proc.poll() is None and time.monotonic() < deadline:  # forkserver + 2 workers
        time.sleep(0.05)
        children = _descendants(proc.pid)
    assert len(children) >= 3, "the run ended before its workers started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(c) for c in children):
        time.sleep(0.1)
    alive = [c for c in children if running(c)]
    assert not alive, f"left running after the indexer was killed: {alive}"
