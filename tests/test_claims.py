"""The claim decision: its features are pure functions of what the match path has, and the
confidence it gives is a probability that an exact excerpt earns and an unrelated clip does not."""

from __future__ import annotations

import numpy as np
import pytest

from search_engine.query import (
    CLAIM_FEATURES,
    aligned_nearest,
    aligned_pairs,
    alignment_support,
    best_offsets,
    best_rate,
    claim_basis,
    claim_confidence,
    claim_features,
    clip_level_db,
    inside_share,
    is_verified,
    neighbour_background,
    tempo_rates,
)
from synth import SR, add_noise, tune

PHASES = 16


def _votes(n_windows: int, offset: int, *, row: int = 3, noise_rows: int = 0, seed: int = 0):
    """k-NN rows/segments of a clip whose windows all sit at ``offset`` in ``row`` (first
    neighbour), the other neighbours random rows."""
    rng = np.random.default_rng(seed)
    i = np.arange(n_windows)
    rows = rng.integers(10, 20, size=(n_windows, 5))
    within = rng.integers(0, 100, size=(n_windows, 5))
    rows[:, 0] = row
    within[:, 0] = np.round((offset + i) / PHASES).astype(int)
    if noise_rows:
        rows[:noise_rows, 0] = 99
    return rows, within


def test_alignment_support_straight_and_scattered():
    rows, within = _votes(90, 40)
    agree, spread = alignment_support(rows, within, 3, 40, phases=PHASES, hop_s=0.032)
    assert agree == pytest.approx(1.0) and spread < 0.2  # within half a segment hop: the windows' phase error only
    rows2, within2 = _votes(90, 40, noise_rows=60)
    agree2, _ = alignment_support(rows2, within2, 3, 40, phases=PHASES, hop_s=0.032)
    assert agree2 == pytest.approx(30 / 90)
    # no window in that recording: nothing agrees, spread is a full segment hop
    assert alignment_support(rows, within, 77, 40, phases=PHASES, hop_s=0.032) == (0.0, pytest.approx(PHASES * 0.032))


def test_background_nearest_level_and_features():
    dist = np.array([[0.1, 0.5, 0.9], [0.2, 0.6, np.inf], [0.3, 0.7, 1.1]])
    assert neighbour_background(dist) == pytest.approx(0.9)  # median of the farthest found: 0.9, 0.6, 1.1
    assert aligned_nearest(dist, 0, phases=2) == pytest.approx((0.1 + 0.3) / 2)  # windows 0 and 2
    assert aligned_nearest(dist, 1, phases=2) == pytest.approx(0.2)
    t = np.arange(SR) / SR
    assert clip_level_db(np.sin(2 * np.pi * 440 * t)) == pytest.approx(-3.01, abs=0.01)
    assert clip_level_db(np.zeros(100)) == -100.0
    f = claim_features(np.array([0.2, 0.7]), background=1.0, nearest=[0.15, 0.6], support=[(0.9, 0.1), (0.2, 0.3)], duration_s=3.0, level_db=-20.0)
    assert [list(x) for x in f] == [list(CLAIM_FEATURES)] * 2
    assert f[0]["margin"] == pytest.approx(0.5) and f[1]["margin"] == pytest.approx(-0.5)
    assert f[0]["relative"] == pytest.approx(0.2) and f[0]["excess"] == pytest.approx(0.05)
    alone = claim_features(np.array([0.3]), background=1.0, nearest=[np.nan], support=[(1.0, 0.1)], duration_s=3.0, level_db=-20.0)[0]
    assert alone["margin"] == pytest.approx(0.7) and alone["excess"] == 0.0  # the background stands in for a second recording
    assert claim_basis(f[0]).shape == (11,) and np.all(np.isfinite(claim_basis(f[0])))
    assert claim_basis(f[0], ("agree", "margin*log_duration")) == pytest.approx([0.9, 0.5 * np.log(3.0)])


def test_confidence_is_a_probability_that_falls_with_distance():
    decision = {"mean": [0.0] * 11, "scale": [1.0] * 11, "coef": [-8.0, 4.0] + [0.0] * 9, "intercept": 3.0}
    base = dict(distance=0.1, margin=0.8, relative=0.1, agree=0.9, spread_s=0.1, duration_s=3.0, level_db=-20.0, excess=0.0)
    near, far = claim_confidence(base, decision), claim_confidence({**base, "distance": 1.0, "margin": 0.0}, decision)
    assert 0.0 <= far < near <= 1.0
    assert claim_confidence({**base, "distance": 1e6}, decision) == pytest.approx(0.0, abs=1e-12)


def test_shipped_model_has_a_fitted_decision(engine):
    from search_engine.decision import part
    from search_engine.query import BASIS_INPUTS, CLAIM_BASIS

    d = engine.match_decision
    assert d is not None
    for seconds in (1.0, 3.0, 10.0):
        p = part(d, seconds)
        assert p.get("kind", "logistic") in ("logistic", "trees")
        basis = p.get("basis", CLAIM_BASIS)
        assert set(basis) <= set(BASIS_INPUTS)
        assert 0 < engine.claim_threshold(seconds) < 1
        if p.get("kind", "logistic") == "logistic":
            assert len(p["coef"]) == len(p["mean"]) == len(p["scale"]) == len(basis)
    if d.get("kind") == "by_length":  # 1 s clips are judged apart from 3 s and from 10 s ones
        assert part(d, 1.0) is not part(d, 3.0) and part(d, 3.0) is not part(d, 10.0)


def test_trees_decision_equals_sklearn():
    """The stored trees give the log-odds of the boosted model they were read from (numpy only)."""
    from sklearn.ensemble import GradientBoostingClassifier

    from search_engine.decision import log_odds, trees_from_sklearn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] - 0.5 * X[:, 1] ** 2 + 0.3 * rng.normal(size=400) > 0).astype(int)
    w = np.where(y == 1, 1.0, 3.0)  # weighted, so that the prior is not the plain share
    model = GradientBoostingClassifier(max_depth=2, n_estimators=30, learning_rate=0.1, subsample=0.8, random_state=0).fit(X, y, sample_weight=w)
    d = trees_from_sklearn(model)
    ours = np.array([log_odds(x, d) for x in X[:50]])
    assert np.allclose(ours, model.decision_function(X[:50]), atol=1e-5)
    from sklearn.ensemble import HistGradientBoostingClassifier

    hist = HistGradientBoostingClassifier(max_depth=3, max_iter=20, monotonic_cst=[1, 0, 0, 0], random_state=0).fit(X, y, sample_weight=w)
    dh = trees_from_sklearn(hist)
    assert np.allclose([log_odds(x, dh) for x in X[:50]], hist.decision_function(X[:50]), atol=1e-5)
    logistic = {"mean": [0.0] * 4, "scale": [2.0] * 4, "coef": [1.0, 0, 0, 0], "intercept": -1.0}
    assert log_odds(np.array([4.0, 0, 0, 0]), logistic) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        log_odds(X[0], {"kind": "forest"})


def test_excerpt_claimed_with_high_confidence_unrelated_not(engine, library):
    path, y = list(library.items())[2]
    exact, noisy, unrelated = engine.query_batch(
        [(y[4 * SR : 9 * SR], SR), (add_noise(y[6 * SR : 16 * SR], snr_db=10.0, seed=1), SR), (tune(4242, 5.0), SR)], k=3)
    for res in (exact, noisy):
        assert res.matches[0].path == path and res.matched is True
        assert res.confidence == res.matches[0].confidence and res.confidence >= 0.9
        # the first match is checked against its recording's audio (search_engine.verification)
        assert [list(f) for f in res.features] == [list(CLAIM_FEATURES) + ["peaks", "peaks_backwards"]] + [list(CLAIM_FEATURES)] * (len(res.matches) - 1)
        assert all(0.0 <= m.confidence <= 1.0 for m in res.matches)
        assert all(not m.matched for m in res.matches[1:])  # a second recording is never claimed beside the first
    assert unrelated.matched is False and unrelated.confidence < engine.claim_threshold(5.0, verified=is_verified(unrelated.features[0], engine.match_decision))
    similar = engine.query_batch([(y[4 * SR : 9 * SR], SR)], k=1, mode="similar")[0]
    assert similar.confidence is None and similar.matches[0].confidence is None


def test_compare_uses_the_same_decision(engine):
    y, other = tune(5, 12.0), tune(6, 12.0)
    part = engine.compare((y, SR), (y[3 * SR : 7 * SR], SR))
    assert part.contains and part.confidence >= 0.9 and abs(part.offset_s - 3.0) <= 0.1
    no = engine.compare((y, SR), (other[3 * SR : 7 * SR], SR))
    assert not no.contains and no.confidence < engine.claim_threshold(4.0, verified=engine.match_decision.get("kind") == "verified")


def test_operating_point_bound_and_threshold_never_lower():
    from search_engine.calibration import Calibration, LengthCalibration, operating_point, threshold, upper95

    conf = np.linspace(0, 1, 1000, endpoint=False)  # 0.000, 0.001, ..., 0.999
    t = operating_point(conf, 0.01)
    assert np.sum(conf >= t) == 10 and t <= 0.9891  # the 11th highest (0.989) is refused
    assert upper95(0, 1000) == pytest.approx(0.002991, abs=2e-6)  # 1 - 0.05 ** (1 / 1000)
    assert 0.01 < upper95(10, 1000) < 0.02 and upper95(5, 5) == 1.0
    decision = {"threshold": 0.6}
    cal = Calibration(target=0.01, model_id="m", library_hours=10.0, files=100, lengths=[
        LengthCalibration(1.0, 1000, 0.6, 0.9, 8, 0.015), LengthCalibration(10.0, 1000, 0.6, 0.6, 1, 0.004)])
    assert threshold(decision, 1.0, cal, "m") == pytest.approx(0.9)
    assert threshold(decision, 10.0, cal, "m") == pytest.approx(0.6)
    assert 0.6 < threshold(decision, 3.0, cal, "m") < 0.9  # log-duration interpolation
    assert threshold(decision, 0.3, cal, "m") == pytest.approx(0.9)  # held outside
    assert threshold(decision, 1.0, cal, "other model") == 0.6 and threshold(decision, 1.0, None) == 0.6
    assert Calibration.from_dict(cal.as_dict()) == cal


def test_calibrate_backwards_clips_on_the_index(built_index, library, tmp_path):
    """``calibrate`` queries backwards clips of the library, stores per-length operating points
    no lower than the model's, and later queries decide with them; excerpts keep their claims."""
    import shutil

    from search_engine import SearchEngine
    from search_engine.calibration import backwards_clips

    y = np.arange(SR * 3, dtype=np.float32)
    clip = backwards_clips(lambda p: y, [("a", 3.0)], 1.0, 1, sr=SR, shift_semitones=0)[0]
    assert len(clip) == SR and np.all(np.diff(clip) < 0)  # played backwards
    assert backwards_clips(lambda p: y, [("a", 0.5)], 1.0, 3, sr=SR) == []  # too short
    tone = np.sin(2 * np.pi * 440 * np.arange(SR * 4) / SR).astype(np.float32)
    for c in backwards_clips(lambda p: tone, [("a", 4.0)], 1.0, 6, sr=SR):  # four semitones up or down
        peak = np.argmax(np.abs(np.fft.rfft(c))) * SR / len(c)
        assert len(c) == SR and min(abs(peak - 440 * 2 ** (4 / 12)), abs(peak - 440 * 2 ** (-4 / 12))) < 3
    folder = tmp_path / "idx"
    shutil.copytree(built_index, folder)
    with SearchEngine.open(folder) as e:
        before = {v: e.claim_threshold(3.0, verified=v) for v in (False, True)}
        seen = []
        cal = e.calibrate(target=0.05, clips=40, lengths=(1.0, 3.0), on_progress=lambda done, total, item: seen.append((done, total)))
        assert seen[-1] == (80, 80) and (folder / "calibration.json").exists()
        assert [c.seconds for c in cal.lengths] == [1.0, 3.0] and all(c.clips == 40 for c in cal.lengths)
        for c in cal.lengths:
            assert c.threshold >= c.model_threshold and c.claimed <= 0.05 * 40 and c.claimed / 40 <= c.upper95 <= 1
        # the calibration holds for claims checked as its clips were (search_engine.verification)
        assert cal.verified == (e.match_decision.get("kind") == "verified")
        assert e.claim_threshold(3.0, verified=cal.verified) == pytest.approx(max(before[cal.verified], cal.lengths[1].threshold))
        assert e.claim_threshold(3.0, verified=not cal.verified) == before[not cal.verified]
        path, wave = list(library.items())[1]
        res = e.query_batch([(wave[5 * SR : 8 * SR], SR)], k=1)[0]
        assert res.matches[0].path == path and res.matched
    # the command: a thin shell over the same call, --json one object
    import json

    from typer.testing import CliRunner

    from search_engine.cli import app

    out = CliRunner().invoke(app, ["calibrate", "--index", str(folder), "--clips", "50", "--length", "3", "--json", "--no-progress"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert [c["seconds"] for c in got["lengths"]] == [3.0] and got["lengths"][0]["clips"] == 50 and got["target"] == 0.01
    assert json.loads((folder / "calibration.json").read_text()) == got


def test_aligned_pairs_at_rate_one_are_the_exactly_aligned_windows():
    win, seg = aligned_pairs(5, 1.0, 40, phases=PHASES)
    assert win.tolist() == [11, 27] and seg.tolist() == [1, 2]  # 5 + i a multiple of 16
    # 8 % faster, stretched about the middle window (200): each end reaches 16 hops (a segment) further
    assert aligned_pairs(0, 1.0, 401, phases=PHASES)[1].tolist() == list(range(26))
    win, seg = aligned_pairs(0, 1.08, 401, phases=PHASES)
    assert seg.tolist() == list(range(-1, 27))
    assert np.all(np.abs(win + 0.08 * (win - 200) - seg * PHASES) <= 1.08 / 2 + 1e-9)  # each the nearest window


def test_tempo_rates_only_for_clips_long_enough():
    assert tempo_rates(94, phases=PHASES).tolist() == [1.0]  # 3 s of 32 ms hops
    rates = tempo_rates(313, phases=PHASES)  # 10 s
    assert rates[0] == 1.0 and len(rates) > 1 and np.all(np.abs(rates - 1) <= 0.08)
    step = PHASES / (2 * 313)
    for r in (0.95, 1.05, 1.07):
        assert np.min(np.abs(rates - r)) <= step / 2 + 1e-9


def _stretched(rate: float, *, n_windows: int = 313, offset: int = 900, dim: int = 32, seed: int = 0):
    """Segment vectors of a slowly changing recording, and clip windows read from it at
    ``rate`` (recording hops per clip hop) about the clip's middle, placed at ``offset``."""
    rng = np.random.default_rng(seed)
    freqs, phase = rng.uniform(0.002, 0.02, size=dim), rng.uniform(0, 2 * np.pi, size=dim)

    def at(hops):
        return np.sin(np.asarray(hops, dtype=np.float64)[:, None] * freqs + phase)

    segments = at(np.arange(200) * PHASES)
    i = np.arange(n_windows)
    windows = at(offset + i + (rate - 1) * (i - (n_windows - 1) / 2))
    return segments, windows


def test_best_rate_finds_a_clip_played_fast():
    segments, windows = _stretched(1.05)

    def distance(qi, seg):
        return np.linalg.norm(windows[qi] - segments[seg], axis=1)

    (offset, d1, _), = best_offsets([900], lambda _, qi, seg: distance(qi, seg), len(windows), [len(segments)], phases=PHASES)
    found = best_rate(offset, distance, len(windows), len(segments), phases=PHASES, rates=tempo_rates(len(windows), phases=PHASES))
    o, d, n, rate = found
    assert abs(rate - 1.05) <= PHASES / (4 * len(windows)) + 1e-9  # the nearest rate tried
    assert abs(o - 900) <= 2 and d < d1 / 2 and n >= len(windows) // PHASES
    # a clip at rate 1 keeps rate 1
    segments, windows = _stretched(1.0)
    assert best_rate(900, distance, len(windows), len(segments), phases=PHASES, rates=tempo_rates(len(windows), phases=PHASES))[3] == 1.0


def test_inside_share_is_the_part_of_the_clip_within_the_recording():
    # 100 windows, a recording of 20 segments (positions 0..304 hops, to half a segment beyond)
    assert inside_share(50, 1.0, 100, 20, phases=PHASES) == 1.0
    assert inside_share(-50, 1.0, 100, 20, phases=PHASES) == pytest.approx(0.58)  # windows 42.. lie at -8 and on
    assert inside_share(260, 1.0, 100, 20, phases=PHASES) == pytest.approx(0.53)  # windows ..52 lie up to 312
    assert inside_share(0, 1.0, 100, 20, phases=PHASES) == 1.0
    assert inside_share(1000, 1.0, 100, 20, phases=PHASES) == 0.0
