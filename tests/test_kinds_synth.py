"""data/synth.py: every labelled kind it synthesises is real, bounded, varied audio."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("kinds_synth", Path(__file__).resolve().parents[1] / "data" / "synth.py")
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
