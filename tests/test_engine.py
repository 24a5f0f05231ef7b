"""Index -> query round trips through the Python API: right file, right offset, reopen, remove."""

from __future__ import annotations

import numpy as np
import pytest

from indexer import Indexer
from search_engine import DecodeError, IndexMismatchError, IndexNotFoundError, SearchEngine
from synth import SR, add_noise, tune


def _clip(y, start_s, seconds):
    return y[int(start_s * SR) : int((start_s + seconds) * SR)]


CASES = [(0, 3.3, 5.0, None), (1, 11.7, 6.0, None), (2, 4.1, 5.0, 10.0), (4, 15.25, 6.0, 10.0), (5, 0.0, 4.0, None)]


@pytest.mark.parametrize("file_no,start_s,seconds,snr_db", CASES)
def test_match_finds_file_and_offset(engine, library, file_no, start_s, seconds, snr_db):
    path, y = list(library.items())[file_no]
    clip = _clip(y, start_s, seconds)
    if snr_db is not None:
        clip = add_noise(clip, snr_db=snr_db, seed=file_no)
    matches = engine.query((clip, SR), k=3)
    assert matches[0].path == path
    assert abs(matches[0].offset_s - start_s) <= 0.5
    assert [m.rank for m in matches] == list(range(1, len(matches) + 1))
    assert all(a.distance <= b.distance for a, b in zip(matches, matches[1:]))


def test_a_clip_played_fast_aligns_at_its_tempo(engine, library, monkeypatch):
    """10 s of a recording played 5 % fast (tape: tempo and pitch) is found where it starts, and
    aligning it at its own tempo brings it nearer than aligning it at the recording's."""
    import soxr

    import search_engine.query as query

    path, y = list(library.items())[5]
    clip = soxr.resample(_clip(y, 6.0, 10.5), SR * 1.05, SR)  # 10.5 s played in 10 s
    fast = engine.query((clip, SR), k=2)[0]
    assert fast.path == path and abs(fast.offset_s - 6.0) <= 0.25 and abs(fast.speed - 1.05) <= 0.015
    monkeypatch.setattr(query, "tempo_rates", lambda n, phases: np.array([1.0]))
    plain = engine.query((clip, SR), k=2)[0]
    assert plain.path == path and fast.distance < plain.distance


def test_a_clip_that_starts_before_the_recording_says_how_much_lies_inside(engine, library):
    """3 s of silence, then the recording's first 5 s: found at -3 s, and its claim features say
    that 5/8 of it lies inside the recording."""
    path, y = list(library.items())[0]
    clip = np.concatenate([np.zeros(3 * SR, dtype=np.float32), y[: 5 * SR]])
    res = engine.query_batch([(clip, SR)], k=2)[0]
    assert res.matches[0].path == path and abs(res.matches[0].offset_s + 3.0) <= 0.3
    assert abs(res.features[0]["inside"] - 5 / 8) <= 0.08


def test_clip_at_other_sample_rate_and_gain(engine, library):
    import soxr

    path, y = list(library.items())[3]
    clip = soxr.resample(0.2 * _clip(y, 8.0, 5.0), SR, 22050)
    m = engine.query((clip, 22050), k=1)[0]
    assert m.path == path and abs(m.offset_s - 8.0) <= 0.5


def test_similar_mode_ranks_the_source_first(engine, library):
    for path, y in list(library.items())[:3]:
        found = engine.query((y, SR), k=3, mode="similar")
        assert found[0].path == path
        assert found[0].distance < found[1].distance


def test_unknown_clip_is_farther_than_a_known_one_and_not_matched(engine, library):
    path, y = next(iter(library.items()))
    known, unknown = engine.query_batch([(_clip(y, 2.0, 5.0), SR), (tune(999, 5.0), SR)], k=1)
    similar = engine.query_batch([(_clip(y, 2.0, 5.0), SR)], k=1, mode="similar")[0]
    assert known.matches[0].distance < unknown.matches[0].distance
    assert known.matched is True and unknown.matched is False  # at the model's calibrated threshold
    assert similar.matched is None  # no threshold in similar mode


def test_match_threshold_follows_clip_length_and_library_size(engine, monkeypatch):
    """Calibrated per library size and clip length, interpolated in log hours and log seconds,
    constant outside; the library size is the index's own unless given."""
    table = {"0.5": {"3": 0.6, "10": 1.0}, "2": {"3": 0.4, "10": 0.8}}
    monkeypatch.setattr(engine.encoder, "config", {**engine.encoder.config, "match_thresholds": table})
    assert engine.match_threshold(3.0, 0.5) == pytest.approx(0.6) and engine.match_threshold(10.0, 2.0) == pytest.approx(0.8)
    assert engine.match_threshold(3.0, 1.0) == pytest.approx(0.5)  # halfway in log hours
    assert engine.match_threshold(30**0.5, 1.0) == pytest.approx(0.7)  # halfway in both
    assert engine.match_threshold(1.0, 0.01) == pytest.approx(0.6) and engine.match_threshold(60.0, 100.0) == pytest.approx(0.8)
    hours = len(engine.segments) * engine.segment_hop_s / 3600
    assert 0 < hours < 0.5 and engine.match_threshold(3.0) == pytest.approx(0.6)
    monkeypatch.setattr(engine.encoder, "config", {**engine.encoder.config, "match_thresholds": table["2"]})  # one size
    assert engine.match_threshold(3.0, 0.01) == engine.match_threshold(3.0, 100.0) == pytest.approx(0.4)


def test_bad_clips_raise_or_report(engine, library, tmp_path):
    assert engine.query((tune(1, 0.2), SR))  # a short sound is padded, not refused
    assert engine.query((tune(1, 0.019), SR))  # a 19 ms tick too (shorter than one STFT frame)
    with pytest.raises(DecodeError, match="too short"):
        engine.query((np.array([0.5], np.float32), SR))
    with pytest.raises(DecodeError, match="silence"):
        engine.query((np.zeros(SR * 2, dtype=np.float32), SR))
    path, y = next(iter(library.items()))
    results = engine.query_batch([str(tmp_path / "missing.wav"), (_clip(y, 5.0, 4.0), SR)], k=1)
    assert results[0].error and "missing.wav" in results[0].error and not results[0].matches
    assert results[1].error is None and results[1].matches[0].path == path


def test_batch_equals_single_queries(engine, library):
    clips = [(_clip(y, 1.0 + i, 4.0), SR) for i, y in enumerate(library.values())]
    batch = engine.query_batch(clips, k=2)
    for clip, res in zip(clips, batch):
        single = engine.query(clip, k=2)
        assert [(m.path, m.offset_s) for m in single] == [(m.path, m.offset_s) for m in res.matches]
        assert np.allclose([m.distance for m in single], [m.distance for m in res.matches], atol=1e-5)


def test_reopened_index_gives_same_answers(built_index, engine, library):
    clip = (_clip(list(library.values())[2], 6.0, 5.0), SR)
    before = engine.query(clip, k=3)
    with SearchEngine.open(built_index) as again:
        after = again.query(clip, k=3)
    assert before == after


def test_catalog_and_vectors_agree(engine, library):
    from sqlalchemy import select

    from search_engine.catalog import Segment

    with engine.catalog.Session() as s:
        seg_ids = set(s.scalars(select(Segment.id)))
    assert seg_ids == set(engine.segments.ids())
    assert len(engine.wholes) == len(library)
    stats = engine.stats()
    assert stats["files"] == len(library) and stats["segments"] == len(seg_ids)


def test_open_missing_index_fails_clearly(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index"):
        SearchEngine.open(tmp_path / "nothing")


def test_index_refuses_another_model(built_index, tmp_path):
    import shutil

    from search_engine.audio2vec import DEFAULT_MODEL_DIR

    other = tmp_path / "other_model"
    shutil.copytree(DEFAULT_MODEL_DIR, other)
    import json

    cfg = json.loads((other / "config.json").read_text())
    cfg["model_id"] = "0123456789abcdef"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(IndexMismatchError, match="rebuild") as err:
        SearchEngine.open(built_index, model=str(other))
    assert "model_id: index has" in str(err.value) and "'0123456789abcdef'" in str(err.value)


def test_an_index_from_before_similar_models_keeps_pooled_whole_vectors(tmp_path, library):
    """An index made before whole-sound vectors had their own model (no ``similar_model_id``)
    goes on pooling segment vectors, so its old and new rows stay comparable; an index naming a
    similar model that no model here has is refused."""
    from sqlalchemy import delete

    from search_engine.catalog import Catalog, IndexSetting
    from search_engine.query import pool

    path, y = next(iter(library.items()))
    with SearchEngine.create(tmp_path / "idx") as engine:
        assert engine.catalog.settings()["similar_model_id"] == engine.encoder.similar.model_id
        with engine.catalog.Session.begin() as s:
            s.execute(delete(IndexSetting).where(IndexSetting.key == "similar_model_id"))
    with SearchEngine.open(tmp_path / "idx") as engine:
        assert engine.whole_encoder is None
        Indexer(engine).add([path])
        f = engine.catalog.files_by_path([path])[path]
        segments = engine.segment_vectors(f.first_segment_id + np.arange(f.n_segments))
        assert np.allclose(engine.wholes.reconstruct([f.id])[0], pool(segments), atol=1e-6)
        assert np.allclose(engine.vector(path), pool(segments), atol=1e-6)
        assert engine.query((y, SR), k=1, mode="similar")[0].path == path
        with engine.catalog.Session.begin() as s:
            Catalog.put_settings(s, {"similar_model_id": "0123456789abcdef"})
    with pytest.raises(IndexMismatchError, match="similar model 0123456789abcdef"):
        SearchEngine.open(tmp_path / "idx")


def test_index_built_with_other_features_says_what_differs(tmp_path, library):
    from search_engine.catalog import Catalog

    with SearchEngine.create(tmp_path / "idx") as engine:
        features = dict(engine.encoder.features.as_dict(), n_mels=96)
        with engine.catalog.Session.begin() as s:
            Catalog.put_settings(s, {"features": features})
    with pytest.raises(IndexMismatchError) as err:
        SearchEngine.open(tmp_path / "idx")
    assert "features.n_mels: index has 96, now 64" in str(err.value)
    assert "model_id" not in str(err.value)


def test_an_index_of_the_former_default_model_keeps_using_it(tmp_path, library):
    """An index whose recorded model is "default" but whose model id is another bundled model's
    (built before the default changed) still opens and answers with that model."""
    from search_engine.audio2vec.encoder import bundled_models
    from search_engine.catalog import Catalog

    assert "default" in bundled_models() and "similar" in bundled_models()
    path, y = next(iter(library.items()))
    with SearchEngine.create(tmp_path / "idx", model="similar") as engine:
        Indexer(engine).add([path])
        similar_id = engine.encoder.model_id
        with engine.catalog.Session.begin() as s:
            Catalog.put_settings(s, {"model": "default"})  # as written before the default changed
    with SearchEngine.open(tmp_path / "idx") as engine:
        assert engine.encoder.model_id == similar_id and engine.model == "similar"
        assert engine.query((_clip(y, 3.0, 5.0), SR), k=1)[0].path == path


@pytest.mark.parametrize("recorded", ["default", "autoencoder"])
def test_an_index_of_a_retired_model_is_told_to_rebuild(tmp_path, library, recorded):
    """The seed autoencoder left the package (models/autoencoder in the repository): an index
    built with it, recorded as the old default or by name, is refused with a message naming the
    retired model and the command that rebuilds it; with the model's folder it still opens."""
    from pathlib import Path

    from search_engine.audio2vec.encoder import bundled_models
    from search_engine.audio2vec.retired import RETIRED_MODELS
    from search_engine.catalog import Catalog
    from search_engine.errors import IndexMismatchError

    folder = Path(__file__).resolve().parents[1] / "models" / "autoencoder"
    assert "autoencoder" not in bundled_models()
    path, y = next(iter(library.items()))
    with SearchEngine.create(tmp_path / "idx", model=str(folder)) as engine:
        Indexer(engine).add([path])
        assert RETIRED_MODELS[engine.encoder.model_id][0] == "autoencoder"
        with engine.catalog.Session.begin() as s:
            Catalog.put_settings(s, {"model": recorded})
    with pytest.raises(IndexMismatchError) as err:
        SearchEngine.open(tmp_path / "idx")
    msg = str(err.value)
    assert "'autoencoder'" in msg and "no longer bundles" in msg and "audio2vec index YOUR_FOLDERS" in msg
    with SearchEngine.open(tmp_path / "idx", model=str(folder)) as engine:  # the old model, by folder
        assert engine.query((_clip(y, 3.0, 5.0), SR), k=1)[0].path == path


@pytest.mark.parametrize("name", ["match_v1", "match_v2"])
def test_an_index_recorded_with_a_retired_match_model_is_told_to_rebuild(tmp_path, library, name):
    """``match_v1`` left the package with the third match model and ``match_v2`` with the fourth:
    an index that names one is refused with a message naming it and the command that rebuilds the
    index, not a bare 'no such model'."""
    from search_engine.audio2vec.encoder import bundled_models
    from search_engine.catalog import Catalog
    from search_engine.errors import IndexMismatchError

    assert name not in bundled_models()
    path, _ = next(iter(library.items()))
    with SearchEngine.create(tmp_path / "idx") as engine:
        Indexer(engine).add([path])
        with engine.catalog.Session.begin() as s:
            Catalog.put_settings(s, {"model": name})
    with pytest.raises(IndexMismatchError) as err:
        SearchEngine.open(tmp_path / "idx")
    assert f"'{name}'" in str(err.value) and "no longer bundles" in str(err.value) and "audio2vec index" in str(err.value)


def test_an_index_of_the_previous_default_keeps_its_model(tmp_path, library):
    """An index built when ``match_v3`` was the default (recorded as ``"default"``) opens with
    ``match_v3``, still bundled, and finds its clips; a new index gets today's default."""
    from search_engine.catalog import Catalog

    path, y = next(iter(library.items()))
    with SearchEngine.create(tmp_path / "old", model="match_v3") as engine:
        Indexer(engine).add([path])
        old_id = engine.encoder.model_id
        with engine.catalog.Session.begin() as s:
            Catalog.put_settings(s, {"model": "default"})
    with SearchEngine.open(tmp_path / "old") as engine:
        assert engine.encoder.model_id == old_id
        assert engine.query((_clip(y, 3.0, 5.0), SR), k=1)[0].path == path
    with SearchEngine.create(tmp_path / "new") as engine:
        assert engine.encoder.model_id != old_id
