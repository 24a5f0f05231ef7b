"""Duplicates: recordings that hold the same audio are grouped, with the span each shares; pieces
that merely sound alike are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from search_engine.cli import app
from search_engine.duplicates import best_diagonal, group_pairs, line_hits, max_sum_stretch, pair_distances
from synth import SR, add_noise, tune


def test_best_diagonal_finds_offset_and_slope():
    rng = np.random.default_rng(0)
    i = np.arange(200)
    j = np.round(1.05 * i + 17).astype(int)
    noise_i, noise_j = rng.integers(0, 200, 300), rng.integers(0, 230, 300)
    slope, intercept, on = best_diagonal(np.concatenate([i, noise_i]), np.concatenate([j, noise_j]))
    assert abs(slope - 1.05) < 0.005 and abs(intercept - 17) < 1.0 and on >= 190


def test_max_sum_stretch_and_groups():
    assert max_sum_stretch(np.array([-1, 2, -0.5, 3, -5, 1.0])) == (1, 3)
    assert group_pairs(6, [(0, 3), (3, 5), (1, 2)]) == [[0, 3, 5], [1, 2]]


def test_line_hits_uses_the_nearest_of_b():
    rng = np.random.default_rng(1)
    b = rng.normal(size=(50, 8))
    a = b[10:40] + 0.3 * rng.normal(size=(30, 8))  # not equal, but nearest on the line
    hits = line_hits(pair_distances(a, b), 1.0, 10.0, rank=1, max_distance=0.0)
    assert hits.mean() > 0.8
    assert line_hits(pair_distances(a, b), 1.0, 25.0, rank=1, max_distance=0.0).mean() < 0.3


@pytest.fixture(scope="module")
def dup_index(tmp_path_factory):
    """An index of one 40 s tune A, four copies of it, and three other tunes of the same kind."""
    from indexer import Indexer
    from search_engine import SearchEngine

    root = tmp_path_factory.mktemp("dups")
    a = tune(500, 40.0)
    files = {
        "a.wav": (a, SR),
        "a_noisy_44k.flac": (soxr.resample(add_noise(a, snr_db=30, seed=3), SR, 44100), 44100),
        "a_trimmed.wav": (a[int(5.3 * SR) : int(33.0 * SR)], SR),  # off the segment grid
        "a_faster.wav": (soxr.resample(a, SR * 1.04, SR), SR),  # tape 4 % faster
        "a_intro.wav": (np.concatenate([tune(900, 8.0), a[int(12.2 * SR) :]]), SR),
        "b.wav": (tune(501, 40.0), SR),
        "c.wav": (tune(502, 35.0), SR),
        "d.wav": (tune(503, 30.0), SR),
    }
    for name, (y, sr) in files.items():
        sf.write(root / name, y, sr)
    folder = tmp_path_factory.mktemp("dups_index")
    with SearchEngine.create(folder) as engine:
        Indexer(engine).add([root])
    return folder, root


def test_copies_are_one_group_with_their_spans(dup_index):
    from search_engine import SearchEngine

    folder, root = dup_index
    with SearchEngine.open(folder) as engine:
        groups = engine.duplicates()
    assert len(groups) == 1
    spans = {f["path"].rsplit("/", 1)[-1]: (f["start_s"], f["end_s"]) for f in groups[0].files}
    assert set(spans) == {"a.wav", "a_noisy_44k.flac", "a_trimmed.wav", "a_faster.wav", "a_intro.wav"}
    assert spans["a_intro.wav"][0] == pytest.approx(8.0, abs=2.0)  # the new intro is not shared
    assert spans["a_trimmed.wav"][1] == pytest.approx(27.7, abs=1.5)
    assert spans["a.wav"][0] <= 1.5 and spans["a.wav"][1] >= 38.0


def test_min_overlap_and_cli_json(dup_index):
    folder, _ = dup_index
    result = CliRunner().invoke(app, ["duplicates", "--index", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 1 and len(lines[0]["files"]) == 5
    assert all(set(f) == {"path", "start_s", "end_s"} for f in lines[0]["files"])
    # no shared span is 60 s long
    result = CliRunner().invoke(app, ["duplicates", "--index", str(folder), "--json", "--min-overlap", "60"])
    assert result.exit_code == 0 and result.stdout.strip() == ""
