"""Small things a user trips over: symlinked libraries, paths that are not indexed, removing a
folder, --version, long paths in the table, settings that do not fit an index, embed's hop."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from search_engine.cli import app
from synth import SR, tune

runner = CliRunner()


@pytest.fixture()
def small_index(tmp_path):
    """Three 6 s tunes in lib/ (one in lib/sub/), indexed; returns (index folder, lib folder)."""
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.wav", "b.wav", "sub/c.wav"]):
        sf.write(lib / name, tune(300 + i, 6.0), SR)
    idx = tmp_path / "idx"
    assert runner.invoke(app, ["index", str(lib), "--index", str(idx), "--no-progress"]).exit_code == 0
    return idx, lib


def test_a_library_of_symlinks_is_reported_by_its_own_names(tmp_path):
    """git-annex keeps a library as symlinks into .git/annex/objects: results name the links."""
    objects = tmp_path / "repo" / ".git" / "annex" / "objects" / "Xk" / "p2"
    objects.mkdir(parents=True)
    lib = tmp_path / "repo" / "music"
    lib.mkdir()
    for i in range(2):
        target = objects / f"SHA256E-s{i}--{i:064x}.wav"
        sf.write(target, tune(400 + i, 6.0), SR)
        (lib / f"song{i}.wav").symlink_to(target)
    idx = tmp_path / "idx"
    assert runner.invoke(app, ["index", str(lib), "--index", str(idx), "--no-progress"]).exit_code == 0
    result = runner.invoke(app, ["query", str(lib / "song1.wav"), "--index", str(idx), "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["path"] == str(lib / "song1.wav")
    result = runner.invoke(app, ["remove", str(lib / "song0.wav"), "--index", str(idx), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["removed"] == [str(lib / "song0.wav")]


def test_label_and_remove_of_paths_not_indexed_fail(small_index, tmp_path):
    idx, lib = small_index
    result = runner.invoke(app, ["label", str(tmp_path / "nope.wav"), "--label", "x", "--index", str(idx)])
    assert result.exit_code == 1 and "nope.wav: not in the index" in result.stderr
    result = runner.invoke(app, ["label", str(lib / "a.wav"), str(tmp_path / "nope.wav"), "--label", "x", "--index", str(idx)])
    assert result.exit_code == 3 and "labelled 1 files" in result.stderr  # partly done
    result = runner.invoke(app, ["remove", str(tmp_path / "nope.wav"), "--index", str(idx)])
    assert result.exit_code == 1 and "not in the index" in result.stderr
    result = runner.invoke(app, ["remove", str(lib / "a.wav"), str(tmp_path / "nope.wav"), "--index", str(idx), "--json"])
    assert result.exit_code == 3 and json.loads(result.stdout)["removed"] == [str(lib / "a.wav")]


def test_removing_a_folder_asks_or_needs_yes(small_index):
    idx, lib = small_index
    result = runner.invoke(app, ["remove", str(lib), "--index", str(idx)])  # stdin is no terminal here
    assert result.exit_code == 1 and "--yes" in result.stderr
    stats = json.loads(runner.invoke(app, ["stats", "--index", str(idx), "--json"]).stdout)
    assert stats["files"] == 3  # nothing removed
    result = runner.invoke(app, ["remove", str(lib / "sub"), "--yes", "--index", str(idx), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["removed"] == [str(lib / "sub" / "c.wav")]


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"audio2vec \d+\.\d+\.\d+\S*\n", result.stdout)


def test_the_table_keeps_the_file_name_of_a_long_path(tmp_path):
    deep = tmp_path.joinpath(*[f"a_rather_long_folder_name_{i}" for i in range(6)])
    deep.mkdir(parents=True)
    sf.write(deep / "the_file_name.wav", tune(7, 6.0), SR)
    idx = tmp_path / "idx"
    assert runner.invoke(app, ["index", str(deep), "--index", str(idx), "--no-progress"]).exit_code == 0
    result = runner.invoke(app, ["query", str(deep / "the_file_name.wav"), "--index", str(idx)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "the_file_name.wav" in result.stdout and "…" in result.stdout
    assert max(map(len, result.stdout.splitlines())) <= 80


def test_query_phases_that_do_not_divide_the_segment_hop_are_refused(small_index):
    from search_engine import SearchEngine
    from search_engine.errors import ParameterError

    idx, lib = small_index
    with pytest.raises(ParameterError, match="query_phases=3 does not divide the 32-frame segment hop"):
        SearchEngine.open(idx, query_phases=3)
    with SearchEngine.open(idx, query_phases=4) as engine:  # a divisor works
        assert engine.query(lib / "a.wav", k=1)[0].path == str(lib / "a.wav")


def test_embed_follows_segment_hop_s(tmp_path):
    clip = tmp_path / "clip.wav"
    sf.write(clip, tune(9, 8.0), SR)
    config = tmp_path / "config.yaml"
    rows = {}
    for hop in (0.512, 1.024):
        config.write_text(f"segment_hop_s: {hop}\n")
        out = tmp_path / f"w{hop}.npy"
        result = runner.invoke(app, ["embed", str(clip), "--out", str(out), "--per-window", "--no-progress", "--config", str(config)])
        assert result.exit_code == 0, result.output
        rows[hop] = np.load(out)["start_s"]
    assert np.diff(rows[0.512]) == pytest.approx(0.512) and np.diff(rows[1.024]) == pytest.approx(1.024)
    assert len(rows[0.512]) > len(rows[1.024])


def test_the_library_reports_progress_through_a_callback_and_prints_nothing(tmp_path, capfd):
    from indexer import Indexer
    from search_engine import SearchEngine

    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(3):
        sf.write(lib / f"t{i}.wav", tune(500 + i, 4.0), SR)
    (lib / "zz_bad.wav").write_bytes(b"not audio at all")
    calls = []
    with SearchEngine.create(tmp_path / "idx") as engine:
        report = Indexer(engine, workers=1).add([lib], on_progress=lambda done, total, item: calls.append((done, total, item)))
    assert report.added == 3 and len(report.failed) == 1
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][:2] == (4, 4) and {c[1] for c in calls} == {4}
    assert {c[2] for c in calls} == {str(p) for p in lib.iterdir()}
    out, err = capfd.readouterr()
    assert out == "" and err == ""
