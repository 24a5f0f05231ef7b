"""Hostile and odd input: every bad file gives one error line and never reaches the index; every
odd-but-valid file (rate, channels, name, extension, level) is indexed and found; queries answer
each clip, bad ones with a clear error."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from hostile_cases import BAD, GOOD, Case
from search_engine.errors import one_line
from synth import SR, tune

runner = CliRunner()

class _Hung(BaseException):
    """Raised by the alarm in :func:`_deadline` (not an OSError, so nothing swallows it)."""


@contextlib.contextmanager
def _deadline(seconds: float):
    def _alarm(*_):
        raise _Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _bytes_read() -> int:
    """Bytes this process has read through read() so far (Linux), 0 elsewhere."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One index that every case adds to: a bad case must leave it exactly as it was."""
    from search_engine import SearchEngine

    with SearchEngine.create(tmp_path_factory.mktemp("hostile_index")) as engine:
        engine.encoder.build()  # outside the deadlines below
        yield engine


def _index(engine, paths):
    from indexer import Indexer

    errors = []
    report = Indexer(engine, on_error=lambda path, msg: errors.append((path, msg))).add(paths)
    return report, errors


def _counts(engine) -> tuple[int, int, int, int]:
    s = engine.stats()
    return s["files"], s["segments"], s["vectors"], len(engine.wholes)


def _files_under(engine, folder: Path):
    return engine.catalog.files_under(str(folder.resolve()))


def _vectors(engine, f) -> np.ndarray:
    return engine.segments.reconstruct(f.first_segment_id + np.arange(f.n_segments, dtype=np.int64))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in BAD])
def test_bad_file_gives_one_error_line_and_never_reaches_the_index(case: Case, shared, tmp_path, monkeypatch):
    engine = shared
    folder = tmp_path / "lib"
    folder.mkdir()
    bad = case.make(folder)
    if case.name == "unreadable" and os.geteuid() == 0:
        # root reads any file: make the permission check see what a user would
        # (test_unreadable_for_real_as_another_user checks real permissions)
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == bad else real_access(p, mode, **kw))
    good = folder / "zz_good.wav"  # walked after the bad file: the run must go on
    sf.write(good, tune(1000 + BAD.index(case), 3.0), SR)
    before = _counts(engine)
    read0, t0 = _bytes_read(), time.perf_counter()
    with _deadline(5.0):
        report, errors = _index(engine, [folder])
    seconds, read = time.perf_counter() - t0, _bytes_read() - read0

    assert len(errors) == 1, errors
    path, message = errors[0]
    assert path == str(bad)
    assert "\n" not in message and message.startswith(one_line(str(bad)) + ": "), message
    assert re.search(case.reason, message, re.I), message
    assert [p for p, _ in report.failed] == [str(bad)]
    assert report.added == 1  # the good file after it
    indexed = _files_under(engine, folder)
    assert [f.path for f in indexed] == [str(good.resolve())]
    n = indexed[0].n_segments
    assert _counts(engine) == (before[0] + 1, before[1] + n, before[2] + n, before[3] + 1)
    # fails fast: a 2 GiB file is refused from its header
    assert read < 256 * 2**20, f"read {read / 2**20:.0f} MiB to refuse {bad.name!r}"
    assert seconds < 4.0


def test_bad_file_named_explicitly_is_reported_too(shared, tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio\n" * 20)
    before = _counts(shared)
    report, errors = _index(shared, [bad])
    assert [p for p, _ in errors] == [str(bad)] and "not a readable audio file" in errors[0][1]
    assert len(report.failed) == 1 and _counts(shared) == before


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in GOOD])
def test_odd_but_valid_file_is_indexed_and_found(case: Case, shared, tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    path = case.make(folder)
    report, errors = _index(shared, [folder])
    assert errors == [] and report.added == 1 and not report.failed
    (f,) = _files_under(shared, folder)
    assert f.path == str(path.resolve())
    assert abs(f.duration_s - case.seconds) < 0.05 * case.seconds + 0.01
    assert np.isfinite(_vectors(shared, f)).all()
    expected = {"sr_8k": ("sample_rate_hz", 8000), "sr_192k": ("sample_rate_hz", 192000), "six_channels": ("channels", 6)}
    if case.name in expected:
        attr, value = expected[case.name]
        assert getattr(f, attr) == value
    match = shared.query(path, k=3)
    assert match[0].path == f.path and np.isfinite([m.distance for m in match]).all()
    similar = shared.query(path, k=3, mode="similar")
    assert similar and np.isfinite([m.distance for m in similar]).all()


def test_whole_recording_query_finds_itself_exactly(tmp_path):
    from search_engine import SearchEngine

    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(3):
        sf.write(lib / f"g{i}.wav", tune(1000 + i, 3.0), SR)
    sf.write(lib / "v.wav", tune(22, 4.0), SR)
    with SearchEngine.create(tmp_path / "idx") as engine:
        _index(engine, [lib])
        for p in sorted(lib.iterdir()):
            m = engine.query(p, k=1)[0]
            assert (m.path, m.offset_s, m.distance) == (str(p.resolve()), 0.0, pytest.approx(0, abs=1e-3)), m


def test_folder_named_like_a_wav_is_walked_and_is_no_clip(shared, tmp_path):
    album = tmp_path / "album.wav"
    album.mkdir()
    inner = album / "track.wav"
    sf.write(inner, tune(60, 3.0), SR)
    report, errors = _index(shared, [tmp_path])
    assert errors == [] and report.added == 1
    assert [f.path for f in _files_under(shared, album)] == [str(inner.resolve())]
    (res,) = shared.query_batch([str(album)])
    assert res.matches == [] and "is a directory" in res.error


def test_symlink_loops_in_a_folder_are_walked_once(shared, tmp_path):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    sf.write(lib / "sub" / "song.wav", tune(61, 3.0), SR)
    (lib / "sub" / "up").symlink_to(lib)  # lib/sub/up/sub/up/... forever
    (lib / "here").symlink_to(".")
    report, errors = _index(shared, [lib])
    assert errors == [] and report.added == 1
    assert len(_files_under(shared, lib)) == 1


def _permission_probe(root: Path) -> dict:
    from search_engine.audio import find_audio_files, load, probe
    from search_engine.errors import DecodeError

    out = {"found": sorted(p.name for p in find_audio_files([root])), "errors": {}}
    for name in ("locked.wav", "locked_dir", "ok.wav"):
        try:
            probe(root / name)
            load(root / name, sr=SR)
            out["errors"][name] = None
        except DecodeError as exc:
            out["errors"][name] = str(exc)
    return out


def _as_nobody(fn, *args) -> dict:
    """``fn(*args)`` in a forked child that has dropped root for 'nobody' (uid/gid 65534 where no such
    user exists), so that permissions are checked for real.

    Forked rather than started: the interpreter lives under /root, which 'nobody' cannot read, and
    every module the child needs is already imported here.
    """
    import pwd
    import select

    import av  # noqa: F401  (the child may not import anything new)

    try:
        uid, gid = pwd.getpwnam("nobody")[2:4]
    except KeyError:  # root may take any uid, named or not
        uid = gid = 65534
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            data = json.dumps(fn(*args)).encode()
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            data = json.dumps({"child_error": repr(exc)}).encode()
        os.write(wfd, data)
        os._exit(0)
    os.close(wfd)
    chunks = []
    try:
        while select.select([rfd], [], [], 30)[0]:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"child_error": "no answer"}')


def test_unreadable_for_real(tmp_path):
    """chmod 000 on a file and on a folder, with real permissions (as 'nobody' when run as root)."""
    root = Path(tempfile.mkdtemp(prefix="a2v_perm_"))
    try:
        root.chmod(0o755)
        sf.write(root / "ok.wav", tune(62, 2.0), SR)
        sf.write(root / "locked.wav", tune(63, 2.0), SR)
        (root / "locked_dir").mkdir()
        sf.write(root / "locked_dir" / "hidden.wav", tune(64, 2.0), SR)
        (root / "locked.wav").chmod(0)
        (root / "locked_dir").chmod(0)
        if os.geteuid() != 0:
            out = _permission_probe(root)
        else:
            out = _as_nobody(_permission_probe, root)
        assert "child_error" not in out, out
        assert out["found"] == ["locked.wav", "locked_dir", "ok.wav"]  # the folder is reported, not skipped
        assert "permission denied" in out["errors"]["locked.wav"]
        assert "cannot read folder: permission denied" in out["errors"]["locked_dir"]
        assert out["errors"]["ok.wav"] is None
    finally:
        for p in (root / "locked_dir", root / "locked.wav"):
            p.chmod(0o755)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_audio_level_refuses_2gib_files_from_their_header(tmp_path):
    from search_engine.audio import load, probe
    from search_engine.errors import DecodeError

    for case in (c for c in BAD if c.name.startswith("big_")):
        path = case.make(tmp_path)
        for step in (probe, lambda p: load(p, sr=SR)):
            read0, t0 = _bytes_read(), time.perf_counter()
            with pytest.raises(DecodeError, match=re.compile(case.reason, re.I)):
                step(path)
            assert _bytes_read() - read0 < 128 * 2**20 and time.perf_counter() - t0 < 3.0, case.name
        path.unlink()


# --- the command line -----------------------------------------------------------------------------


def test_cli_index_prints_exactly_one_line_per_bad_file(tmp_path):
    from search_engine.cli import app

    lib = tmp_path / "lib"
    lib.mkdir()
    wanted = {"empty", "truncated_wav", "text_as_wav", "newline_name_text", "silence", "dc", "nan_float"}
    bad = [c.make(lib) for c in BAD if c.name in wanted]
    sf.write(lib / "zz_good.wav", tune(65, 3.0), SR)
    result = runner.invoke(app, ["index", str(lib), "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["added"] == 1 and summary["failed"] == len(bad) and summary["index"]["files"] == 1
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == len(bad), result.stderr
    for path in bad:
        shown = f"error: {one_line(str(path))}: "
        assert sum(line.startswith(shown) for line in errors) == 1, (shown, errors)
    assert r"bad\nname.wav" in result.stderr and not any(line.startswith("name.wav") for line in lines)


@pytest.fixture(scope="module")
def clips(library, tmp_path_factory):
    """Query clips: two good excerpts of the library, and every kind of bad one."""
    d = tmp_path_factory.mktemp("clips")
    (src1, y1), (src2, y2) = list(library.items())[:2]
    out = {}
    sf.write(d / "good1.wav", y1[3 * SR : 8 * SR], SR)
    sf.write(d / "good2.wav", y2[5 * SR : 10 * SR], SR)
    sf.write(d / "short.wav", y1[SR : SR + int(0.05 * SR)], SR)  # 50 ms: padded with silence
    sf.write(d / "padded.wav", y1[SR : SR + int(0.8 * SR)], SR)  # under one window: padded
    sf.write(d / "silent.wav", np.zeros(3 * SR, np.float32), SR)
    (d / "unreadable.wav").write_bytes(b"no audio here\n" * 30)
    sf.write(d / "nan.wav", np.full(SR, np.nan, np.float32), SR, subtype="FLOAT")
    (d / "folder.wav").mkdir()
    for name in ("good1", "good2", "short", "padded", "silent", "unreadable", "nan", "folder"):
        out[name] = str(d / f"{name}.wav")
    out["missing"] = str(d / "missing.wav")
    return out, src1, src2


BAD_CLIPS = {
    "silent": "silence",
    "unreadable": "not a readable audio file",
    "nan": "NaN",
    "folder": "is a directory",
    "missing": "cannot read",
}


def test_cli_query_json_answers_every_clip_in_order(built_index, clips):
    from search_engine.cli import app

    c, src1, src2 = clips
    order = ["good1", "short", "silent", "padded", "unreadable", "nan", "folder", "missing", "good2"]
    result = runner.invoke(app, ["query", *[c[n] for n in order], "--index", str(built_index), "--json", "-k", "2"])
    assert result.exit_code == 3, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["query"] for line in lines] == [c[n] for n in order]
    for name, line in zip(order, lines):
        if name in BAD_CLIPS:
            assert line["results"] == [], name
            assert line["error"].startswith(c[name] + ": ") and BAD_CLIPS[name] in line["error"], line
        else:
            assert "error" not in line and len(line["results"]) == 2, line
            assert all(np.isfinite(r["distance"]) for r in line["results"])
    assert lines[0]["results"][0]["path"] == src1 and lines[-1]["results"][0]["path"] == src2


def test_cli_query_table_reports_each_bad_clip_on_one_stderr_line(built_index, clips):
    from search_engine.cli import app

    c, _, _ = clips
    names = ["good1", *BAD_CLIPS]
    result = runner.invoke(app, ["query", *[c[n] for n in names], "--index", str(built_index)])
    assert result.exit_code == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(BAD_CLIPS), result.stderr
    for name, line in zip(BAD_CLIPS, errors):
        assert line.startswith(f"error: {c[name]}: ") and BAD_CLIPS[name] in line
    assert "good1.wav" in result.stdout
