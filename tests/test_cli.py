"""The CLI contract: --help everywhere, --json lines, exit codes; the CLI agrees with the API."""

from __future__ import annotations

import json
import os

import pytest
import soundfile as sf
from typer.testing import CliRunner

from search_engine.cli import app
from synth import SR, tune

runner = CliRunner()


@pytest.mark.parametrize("command", ["index", "query", "remove", "stats", "train", "calibrate"])
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert len(result.output) > 200
    if command == "query":
        for opt in ("--index", "--json", "--mode", "-k"):
            assert opt in result.output


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, library):
    folder = tmp_path_factory.mktemp("cli_index")
    lib = os.path.dirname(next(iter(library)))
    bad = tmp_path_factory.mktemp("bad") / "bad.wav"
    bad.write_bytes(b"not audio")
    result = runner.invoke(app, ["index", lib, str(bad), "--index", str(folder), "--json"])
    assert result.exit_code == 3, result.output  # some files failed, the rest indexed
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["added"] == len(library) and summary["failed"] == 1
    assert "bad.wav" in result.stderr and "not a readable audio file" in result.stderr
    return folder


def test_query_json_contract_and_api_agreement(cli_index, library, tmp_path):
    from search_engine import SearchEngine

    clips = []
    for i, (path, y) in enumerate(list(library.items())[:3]):
        clip = tmp_path / f"clip{i}.wav"
        sf.write(clip, y[(2 + i) * SR : (7 + i) * SR], SR)
        clips.append(str(clip))
    missing = str(tmp_path / "missing.wav")
    outside = tmp_path / "outside.wav"
    sf.write(outside, tune(999, 5.0), SR)  # a tune in no indexed recording
    result = runner.invoke(app, ["query", clips[0], missing, clips[1], clips[2], str(outside), "--index", str(cli_index), "--json", "-k", "2"])
    assert result.exit_code == 3
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["query"] for line in lines] == [clips[0], missing, clips[1], clips[2], str(outside)]
    assert lines[1]["results"] == [] and "missing.wav" in lines[1]["error"] and "matched" not in lines[1]
    assert lines[4]["matched"] is False and not any(r["matched"] for r in lines[4]["results"])
    with SearchEngine.open(cli_index) as engine:
        for line, clip, (path, _) in zip([lines[0], lines[2], lines[3]], clips, library.items()):
            assert list(line) == ["query", "matched", "confidence", "results"] and line["matched"] is True  # key order kept, confidence added
            assert [list(r) for r in line["results"]] == [["rank", "path", "distance", "offset_s", "speed", "matched", "confidence", "tags"]] * 2
            assert line["results"][0]["path"] == path and line["results"][0]["matched"]
            assert line["confidence"] == line["results"][0]["confidence"] and 0.0 <= line["confidence"] <= 1.0
            api = engine.query(clip, k=2)
            assert [(r["path"], r["offset_s"]) for r in line["results"]] == [(m.path, m.offset_s) for m in api]
            assert [r["confidence"] for r in line["results"]] == [m.confidence for m in api]
            assert [r["distance"] for r in line["results"]] == pytest.approx([m.distance for m in api], abs=1e-5)


def test_table_output_stats_and_remove(cli_index, library):
    path, y = next(iter(library.items()))
    result = runner.invoke(app, ["query", path, "--index", str(cli_index), "--mode", "similar", "-k", "1"])
    assert result.exit_code == 0 and os.path.basename(path) in result.stdout
    stats = json.loads(runner.invoke(app, ["stats", "--index", str(cli_index), "--json"]).stdout)
    assert stats["files"] == len(library) and stats["index_factory"] == "IDMap2,Flat"
    assert stats["similar_model"] == "similar+similar_plus" and stats["similar_model_id"] != stats["model_id"]
    result = runner.invoke(app, ["remove", path, "--index", str(cli_index), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["removed"] == [path]
    stats = json.loads(runner.invoke(app, ["stats", "--index", str(cli_index), "--json"]).stdout)
    assert stats["files"] == len(library) - 1


def test_query_without_index_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["query", "x.wav", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no index" in result.stderr


def test_train_refuses_too_little_audio_and_trains_a_loadable_model(tmp_path):
    from synth import tune

    lib = tmp_path / "train"
    lib.mkdir()
    sf.write(lib / "a.wav", tune(1, 5.0), SR)
    result = runner.invoke(app, ["train", str(lib), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "too little training audio" in result.stderr
    for i in range(4):
        sf.write(lib / f"b{i}.wav", tune(10 + i, 12.0), SR)
    result = runner.invoke(app, ["train", str(lib), "--out", str(tmp_path / "m"), "--epochs", "1", "--steps", "3", "--batch-size", "8", "--pair-snr", "-5", "10",
                                 "--embedding-dim", "48", "--learning-rate", "3e-4"])
    assert result.exit_code == 0, result.output
    recipe = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["recipe"]
    assert recipe["pair_snr_db"] == [-5.0, 10.0] and recipe["learning_rate"] == 3e-4
    from search_engine.audio2vec import Encoder

    enc = Encoder.load(tmp_path / "m")
    v = enc.embed(tune(50, 3.0), hop_frames=32).vectors
    assert v.shape[1] == enc.dim == 48


def test_index_on_a_full_disk_says_so_and_keeps_the_index(tmp_path, library, monkeypatch):
    from search_engine.vectors import VectorIndex

    idx = tmp_path / "idx"
    folder = os.path.dirname(next(iter(library)))

    def disk_full(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(VectorIndex, "save", disk_full)
    result = runner.invoke(app, ["index", folder, "--index", str(idx), "--no-progress"])
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr and "run the command again" in result.stderr
    monkeypatch.undo()
    assert runner.invoke(app, ["check", "--index", str(idx)]).exit_code == 0


def _modules_loaded(args: list[str], cwd) -> set[str]:
    """Top-level modules a fresh ``audio2vec ARGS`` process imports (``python -X importtime``)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "search_engine.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    return {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("mode", ["match", "similar"])
def test_commands_import_only_what_they_use(cli_index, library, tmp_path, mode):
    """--help, stats, a refusal and a query each load what they use: no TensorFlow or Keras
    anywhere (the models run on ONNX Runtime), no librosa or Alembic to answer a query, no model
    runtime or FAISS for --help or stats."""
    heavy = {"tensorflow", "keras", "torch", "librosa", "numba", "alembic", "scipy", "distributed", "dask"}
    clip = tmp_path / "clip.wav"  # 3 s: a long clip would rightly load SciPy's FFT (features.SCIPY_FFT_MIN_FRAMES)
    y, sr = sf.read(str(next(iter(library))), frames=3 * SR)
    sf.write(str(clip), y, sr)
    help_mods = _modules_loaded(["--help"], tmp_path)
    stats_mods = _modules_loaded(["stats", "--index", str(cli_index)], tmp_path)
    refusal = _modules_loaded(["query", str(clip), "--index", str(tmp_path / "none")], tmp_path)
    query_mods = _modules_loaded(["query", str(clip), "--index", str(cli_index), "--mode", mode, "--json"], tmp_path)
    assert "search_engine" in query_mods and "onnxruntime" in query_mods and "faiss" in query_mods
    for mods in (help_mods, stats_mods, refusal, query_mods):
        assert not mods & heavy, mods & heavy
    assert not help_mods & {"onnxruntime", "faiss", "sqlalchemy", "soundfile"}
    assert not (stats_mods | refusal) & {"onnxruntime", "soundfile"}


def test_a_match_query_builds_only_the_match_model(cli_index, library):
    from search_engine import SearchEngine

    with SearchEngine.open(cli_index) as engine:
        engine.query(next(iter(library)))
        assert "_call" in vars(engine.encoder)
        assert all("_call" not in vars(m) for m in getattr(engine.encoder.similar, "members", [engine.encoder.similar]))
        engine.query(next(iter(library)), mode="similar")
        assert all("_call" in vars(m) for m in engine.encoder.similar.members)


def test_offsets_print_as_clock_times_with_their_sign():
    """A clip that starts before the recording does has a negative offset: said, not hidden as 0."""
    from search_engine.cli import _clock

    assert [_clock(x) for x in (None, 0.0, 3.5, 125.25, -3.0)] == ["-", "0:00.00", "0:03.50", "2:05.25", "-0:03.00"]
