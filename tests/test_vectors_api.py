"""Using the vectors directly: compare, distance, embed, Encoder.encode, labels and classify."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from search_engine import SearchEngine
from search_engine.cli import app
from synth import SR, add_noise, tune

runner = CliRunner()


def test_compare_self_degraded_and_unrelated(engine):
    y, other = tune(5, 12.0), tune(6, 12.0)
    same = engine.compare((y, SR), (y, SR))
    assert same.distance == pytest.approx(0, abs=1e-5) and same.match_distance == pytest.approx(0, abs=1e-5)
    assert same.contains and same.offset_s == 0
    # the similar space is about the kind of sound: the same tune through noise and another tune
    # of the same synthesiser are both nearer than noise bursts or a held chord
    near = [engine.distance((y, SR), (z, SR)) for z in (add_noise(y, snr_db=20), other)]
    far = [engine.distance((y, SR), (_sound(kind, 1), SR)) for kind in ("noise", "chord")]
    assert max(near) < min(far), (near, far)
    # (20 dB: the 2-hour calibration leaves a 4 s excerpt at 10 dB near its threshold)
    part = engine.compare((y, SR), (add_noise(y[3 * SR : 7 * SR], snr_db=20), SR))
    assert part.contains and abs(part.offset_s - 3.0) <= 0.1
    assert not engine.compare((y, SR), (other[3 * SR : 7 * SR], SR)).contains


def test_vector_is_the_stored_whole_recording_vector(engine, library):
    path = next(iter(library))
    f = engine.catalog.files_by_path([path])[path]
    assert np.allclose(engine.vector(path), engine.wholes.reconstruct(np.array([f.id]))[0], atol=1e-5)
    top = engine.query(path, mode="similar", k=1)[0]
    assert top.path == path and top.distance < 0.05


def test_encoder_encode_keeps_order_and_shape(encoder, library):
    a, b = list(library)[:2]
    z = encoder.encode([a, (library[b], SR), a])
    assert z.shape == (3, encoder.similar.dim) and z.dtype == np.float32
    assert np.allclose(z[0], z[2]) and not np.allclose(z[0], z[1])
    assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_cli_embed_per_file_and_per_window(library, encoder, tmp_path, suffix):
    folder = os.path.dirname(next(iter(library)))
    per_file, per_window = tmp_path / f"files{suffix}", tmp_path / f"windows{suffix}"
    assert runner.invoke(app, ["embed", folder, "--out", str(per_file), "--no-progress"]).exit_code == 0
    assert runner.invoke(app, ["embed", folder, "--out", str(per_window), "--per-window", "--no-progress"]).exit_code == 0

    def read(path):
        if suffix == ".npy":
            rows = np.load(path)
            return list(rows["path"]), rows["start_s"], rows["vector"]
        import pyarrow.parquet as pq

        t = pq.read_table(path).to_pydict()
        return t["path"], np.array(t["start_s"]), np.array(t["vector"], dtype=np.float32)

    paths, starts, vectors = read(per_file)
    assert paths == sorted(library) and vectors.shape == (len(library), encoder.similar.dim) and not starts.any()
    assert np.allclose(vectors, encoder.encode(paths), atol=1e-5)
    wpaths, wstarts, wvectors = read(per_window)
    first = [i for i, p in enumerate(wpaths) if p == paths[0]]
    assert np.allclose(wstarts[first], 0.512 * np.arange(len(first)), atol=1e-3)
    assert len(wvectors) == sum(len(encoder.embed(library[p], hop_frames=32).vectors) for p in paths)


def _sound(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(3 * SR) / SR
    if kind == "tune":
        return tune(seed, 3.0)
    if kind == "noise":  # noise bursts
        env = (np.sin(2 * np.pi * rng.uniform(1, 3) * t) > 0).astype(np.float32)
        return (0.3 * env * rng.standard_normal(len(t))).astype(np.float32)
    f = rng.uniform(200, 800)  # a held chord
    return (0.2 * sum(np.sin(2 * np.pi * f * r * t) for r in (1, 1.25, 1.5))).astype(np.float32)


def test_label_and_classify_by_neighbours(tmp_path):
    from indexer import Indexer

    lib = tmp_path / "lib"
    for kind in ("tune", "noise", "chord"):
        (lib / kind).mkdir(parents=True)
        for i in range(4):
            sf.write(lib / kind / f"{i}.wav", _sound(kind, 10 * i + len(kind)), SR)
    idx = tmp_path / "idx"
    with SearchEngine.create(idx) as engine:
        Indexer(engine).add([lib])
    for kind in ("tune", "noise", "chord"):
        assert runner.invoke(app, ["label", str(lib / kind), "--label", kind, "--index", str(idx)]).exit_code == 0
    clips = []
    for kind in ("tune", "noise", "chord"):
        sf.write(tmp_path / f"new_{kind}.wav", _sound(kind, 999 + len(kind)), SR)
        clips.append(str(tmp_path / f"new_{kind}.wav"))
    result = runner.invoke(app, ["classify", *clips, "--index", str(idx), "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["label"] for a in answers] == ["tune", "noise", "chord"]
    assert all(a["confidence"] > 0.5 and len(a["neighbours"]) == 3 for a in answers)
    with SearchEngine.open(idx, min_confidence=1.0) as engine:
        mixed = engine.classify([(np.concatenate([_sound("tune", 5), _sound("noise", 5)]), SR)], k=6)[0]
        assert mixed.label == "unknown" and mixed.confidence < 1.0
        # a label stays with its file when the file is re-embedded
        sf.write(lib / "tune" / "0.wav", _sound("tune", 12345), SR)
        Indexer(engine).add([lib])
        (f,) = [f for f in engine.catalog.files_under(str(lib / "tune")) if f.path.endswith("0.wav")]
        assert f.label == "tune"
