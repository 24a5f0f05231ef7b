"""data/kind_synth.py: every labelled kind it synthesises is real, bounded, varied audio."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("kinds_synth", Path(__file__).resolve().parents[1] / "data" / "kind_synth.py")
kinds_synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kinds_synth)

PHRASE = [(0.0, 0.4, 60, 100), (0.4, 0.4, 64, 90), (0.8, 0.6, 67, 110)]


def _check(y: np.ndarray) -> None:
    assert y.ndim == 1 and np.all(np.isfinite(y))
    assert 0.05 * kinds_synth.SR <= len(y) <= 5 * kinds_synth.SR
    assert np.max(np.abs(y)) > 1e-3  # not silent


@pytest.mark.parametrize("label", sorted(kinds_synth.INSTRUMENTS))
def test_instrument_patches_play_phrases_and_differ(label):
    make = kinds_synth.INSTRUMENTS[label]
    a = kinds_synth.render_notes(make(np.random.default_rng(1)), PHRASE)
    b = kinds_synth.render_notes(make(np.random.default_rng(2)), PHRASE)
    _check(a)
    assert np.max(np.abs(a)) == pytest.approx(1.0)  # render_notes peaks at 1
    n = min(len(a), len(b))
    assert not np.allclose(a[:n], b[:n], atol=1e-3)  # a new patch per sound


@pytest.mark.parametrize("label", sorted(kinds_synth.EVENTS))
def test_events_are_sound(label):
    _check(kinds_synth.EVENTS[label](np.random.default_rng(3)))


def test_groove_plays_each_part_on_one_kit():
    notes = [(0.0, 0.1, 36, 100), (0.25, 0.1, 38, 100), (0.5, 0.1, 36, 60)]
    y = kinds_synth.render_groove(np.random.default_rng(4), notes, {36: "kick", 38: "snare"}.__getitem__)
    _check(y)
    sr = kinds_synth.SR
    first, third = y[: int(0.1 * sr)], y[int(0.5 * sr) : int(0.6 * sr)]
    # the same kick voice, played softer the second time
    assert np.corrcoef(first, third)[0, 1] > 0.9 and np.max(np.abs(third)) < np.max(np.abs(first))


@pytest.fixture(scope="module")
def kinds():
    """data/kinds.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("kinds", Path(__file__).resolve().parents[1] / "data" / "kinds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sampler_pitches_a_recording_by_resampling(kinds):
    sr = kinds.SR
    recording = np.sin(2 * np.pi * 220.0 * np.arange(sr) / sr)  # 1 s at 220 Hz
    play = kinds.sampler(recording, 220.0, 0.1)
    up = play(440.0, 2.0, 0.5)  # an octave up: the recording plays in 0.5 s, before the note ends
    assert len(up) == sr // 2
    assert np.argmax(np.abs(np.fft.rfft(up))) * sr / len(up) == pytest.approx(440.0, abs=4.0)
    assert np.max(np.abs(up)) == pytest.approx(0.5, abs=1e-3)  # velocity as gain
    short = play(220.0, 0.3, 1.0)  # the note ends first: cut after its 0.1 s release
    assert len(short) == kinds_synth.n_of(0.4) and abs(short[-1]) < 0.02


def test_render_sampled_plays_every_family_from_lmms_recordings(kinds, tmp_path):
    entries = kinds.render_sampled(tmp_path, 3, seed=0)
    assert sorted({e["label"] for e in entries}) == sorted(kinds.SAMPLER_FAMILIES) and len(entries) == 3 * len(kinds.SAMPLER_FAMILIES)
    sounds = [kinds.sf.read(tmp_path / e["file"])[0] for e in entries]
    assert all(len(y) >= kinds.MIN_S * kinds.SR - 1 and 0.5 < np.max(np.abs(y)) <= 1.0 for y in sounds)
    assert len({y[: kinds.SR // 2].tobytes() for y in sounds}) == len(sounds)  # no two alike
