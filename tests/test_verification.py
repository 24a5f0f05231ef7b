"""Checking an alignment against the recording's audio: spectral peaks, excerpts read from files,
and the decision's part for checked matches."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from search_engine.verification import BINS_PER_OCTAVE, FMIN_HZ, log_spectrogram, peak_check, spectral_peaks
from synth import SR, add_noise, tune


def peak_agreement(clip, passage, sr):
    return peak_check(clip, passage, sr)[0]


def test_peaks_of_a_chord_sit_at_its_notes():
    t = np.arange(SR) / SR
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)).astype(np.float32)
    spec = log_spectrogram(chord, SR)
    assert spec.shape[0] == BINS_PER_OCTAVE * 5 and spec.shape[1] == pytest.approx(SR / (0.02 * SR) + 1, abs=1)
    peaks = spectral_peaks(spec, 5)
    assert peaks.sum(axis=0).max() <= 5
    middle = np.flatnonzero(peaks[:, spec.shape[1] // 2])
    expect = [round(BINS_PER_OCTAVE * np.log2(f / FMIN_HZ)) for f in (220.0, 277.2, 329.6)]
    assert all(np.min(np.abs(middle - e)) <= 1 for e in expect)
    assert not spectral_peaks(log_spectrogram(np.zeros(SR, np.float32), SR), 5).any()  # silence has none


def test_agreement_high_for_the_passage_low_for_other_music():
    y = tune(1, 6.0)
    passage = y[: 3 * SR]
    assert peak_agreement(passage, passage, SR) == 1.0
    noisy = [peak_agreement(add_noise(passage, snr_db=0.0, seed=k), passage, SR) for k in range(3)]
    assert min(noisy) > 0.95  # white noise at 0 dB hides few of the passage's peaks
    others = [peak_agreement(tune(s, 3.0), passage, SR) for s in range(2, 8)]
    assert max(others) < 0.7 and min(noisy) - max(others) > 0.3
    assert peak_agreement(passage, np.zeros(3 * SR, np.float32), SR) == 0.0  # a silent passage
    assert peak_agreement(np.zeros(3 * SR, np.float32), passage, SR) == 0.0  # a silent clip


def test_backwards_share_tells_a_held_chord_from_a_melody():
    t = np.arange(3 * SR) / SR
    held = (sum(np.sin(2 * np.pi * f * t) for f in (196.0, 246.9, 293.7, 392.0)) / 4).astype(np.float32)
    # a clip of the same chord from another piece: it shares every peak in either order
    other_take = add_noise(held * 0.7, snr_db=10.0, seed=1)
    share, backwards = peak_check(other_take, held, SR)
    assert share > 0.95 and backwards > 0.95
    # an excerpt of a melody shares its peaks in the passage's order only (under loud white noise
    # the clip has maxima nearly everywhere, and the backwards share rises towards the share)
    melody = tune(5, 3.0)
    share, backwards = peak_check(add_noise(melody, snr_db=30.0, seed=2), melody, SR)
    assert share > 0.95 and backwards < share - 0.3
    assert peak_check(melody, np.zeros(3 * SR, np.float32), SR) == (0.0, 0.0)
    assert peak_check(melody, melody, SR)[0] == 1.0


def test_agreement_allows_a_semitone_and_the_alignments_tempo():
    y = tune(3, 8.0)
    rate = 2 ** (1 / 12)  # a tape a semitone fast: higher and shorter
    fast = soxr.resample(y, SR * rate, SR)[: 3 * SR]
    assert peak_agreement(fast, y[: int(round(3 * SR * rate))], SR) > 0.85  # the passage as long as the alignment's rate says
    assert peak_agreement(fast, y[: 3 * SR], SR) < peak_agreement(fast, y[: int(round(3 * SR * rate))], SR)


def test_load_excerpt_reads_the_part_and_pads_outside(tmp_path):
    from search_engine.audio import excerpt, load, load_excerpt
    from search_engine.errors import DecodeError

    y = tune(4, 5.0)
    wav, flac = tmp_path / "a.wav", tmp_path / "a.flac"
    sf.write(wav, y, SR)
    y44 = soxr.resample(y, SR, 44100)
    sf.write(flac, np.stack([y44, y44], axis=1), 44100)  # another rate, stereo
    whole = load(wav, sr=SR)[0]
    assert np.allclose(load_excerpt(wav, 1.0, 2.0, sr=SR), whole[SR : 3 * SR], atol=1e-4)
    head = load_excerpt(wav, -0.5, 2.0, sr=SR)
    assert len(head) == 2 * SR and not head[: SR // 2].any() and np.allclose(head[SR // 2 :], whole[: int(1.5 * SR)], atol=1e-4)
    tail = load_excerpt(wav, 4.0, 2.0, sr=SR)
    assert np.allclose(tail[:SR], whole[4 * SR :], atol=1e-4) and not tail[SR + 10 :].any()
    assert not load_excerpt(wav, 9.0, 1.0, sr=SR).any()  # wholly past the end: silence
    resampled = load_excerpt(flac, 1.0, 2.0, sr=SR)
    assert len(resampled) == 2 * SR and np.corrcoef(resampled[100:-100], whole[SR + 100 : 3 * SR - 100])[0, 1] > 0.99
    assert np.array_equal(excerpt(whole, -1.0, 2.0, sr=SR)[SR:], whole[:SR])
    with pytest.raises(DecodeError):
        load_excerpt(tmp_path / "gone.wav", 0.0, 1.0, sr=SR)


def test_verified_decision_judges_checked_matches_with_their_own_part():
    from search_engine.decision import log_odds, part
    from search_engine.query import claim_confidence, claim_threshold, is_verified

    plain = {"mean": [0.0], "scale": [1.0], "coef": [-4.0], "intercept": 2.0, "basis": ["distance"], "threshold": 0.7}
    checked = {"mean": [0.0, 0.0], "scale": [1.0, 1.0], "coef": [-4.0, 6.0], "intercept": -2.0, "basis": ["distance", "peaks^16"],
               "thresholds": {"3": 0.6, "10": 0.5}}
    decision = {"kind": "verified", "verified": checked, "unverified": plain}
    f = dict(distance=0.5, margin=0.5, relative=0.5, agree=1.0, spread_s=0.1, duration_s=3.0, level_db=-20.0, excess=0.0, inside=1.0)
    assert not is_verified(f, decision) and is_verified({**f, "peaks": 0.9}, decision)
    assert not is_verified({**f, "peaks": 0.9}, plain)  # a decision without the part ignores the check
    assert claim_confidence(f, decision) == pytest.approx(1 / (1 + np.exp(-(2.0 - 4.0 * 0.5))))
    assert claim_confidence({**f, "peaks": 0.9}, decision) == pytest.approx(1 / (1 + np.exp(-(-2.0 - 2.0 + 6.0 * 0.9**16))))
    assert claim_confidence({**f, "peaks": 0.9}, decision) > claim_confidence({**f, "peaks": 0.3}, decision)
    assert claim_threshold(decision, 3.0) == 0.7 and claim_threshold(decision, 3.0, verified=True) == pytest.approx(0.6)
    assert part(decision, 3.0) is plain and part(decision, 3.0, verified=True) is checked
    with pytest.raises(ValueError):
        log_odds(np.zeros(1), decision)


def test_calibration_applies_only_to_claims_checked_as_its_clips_were():
    from search_engine.calibration import Calibration, LengthCalibration, threshold

    decision = {"kind": "verified", "verified": {"threshold": 0.5}, "unverified": {"threshold": 0.6}}
    cal = Calibration(target=0.01, model_id="m", library_hours=1.0, files=10, verified=True,
                      lengths=[LengthCalibration(3.0, 1000, 0.5, 0.8, 9, 0.016)])
    assert threshold(decision, 3.0, cal, "m", verified=True) == pytest.approx(0.8)
    assert threshold(decision, 3.0, cal, "m", verified=False) == pytest.approx(0.6)
    old = Calibration.from_dict({k: v for k, v in cal.as_dict().items() if k != "verified"})  # a file from before the check
    assert old.verified is False and threshold(decision, 3.0, old, "m", verified=False) == pytest.approx(0.8)


def test_queries_check_the_first_match_against_its_file(built_index, library, tmp_path):
    """The first match of a short clip carries ``peaks`` (its file read back); with ``verify``
    off, or its file gone, the claim is decided on the vectors alone and the query still answers."""
    from indexer import Indexer
    from search_engine import SearchEngine

    path, y = list(library.items())[0]
    clip = (add_noise(y[5 * SR : 8 * SR], snr_db=0.0, seed=3), SR)
    with SearchEngine.open(built_index) as e:
        res, unrelated = e.query_batch([clip, (tune(4242, 3.0), SR)], k=2)
        assert res.matches[0].path == path and res.features[0]["peaks"] > 0.8 and "peaks" not in res.features[1]
        assert "verify" in res.timings
        assert unrelated.features[0]["peaks"] < 0.6 and not unrelated.matched
    with SearchEngine.open(built_index, verify=False) as e:
        off = e.query_batch([clip], k=1)[0]
        assert off.matches[0].path == path and "peaks" not in off.features[0]
    own = tmp_path / "lib"
    own.mkdir()
    sf.write(own / "a.wav", tune(77, 12.0), SR)
    sf.write(own / "b.wav", tune(78, 12.0), SR)
    with SearchEngine.create(tmp_path / "idx") as e:
        Indexer(e).add([own])
        excerpt = (tune(77, 12.0)[2 * SR : 5 * SR], SR)
        before = e.query_batch([excerpt], k=1)[0]
        (own / "a.wav").unlink()
        after = e.query_batch([excerpt], k=1)[0]
    assert before.matches[0].path == after.matches[0].path == str(own / "a.wav")
    assert before.features[0]["peaks"] > 0.95 and "peaks" not in after.features[0] and after.error is None
