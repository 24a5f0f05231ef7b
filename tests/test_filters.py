"""Tags and filters: tags read with mutagen (title, artist, album, genre, track) and duration,
rate and channels are stored as catalog columns, shown with every result, and filter ``query``,
``classify`` and the Python API inside the FAISS search (``--where``, ``--under``), so that ``k``
results come back whenever ``k`` recordings pass: exactly the ``k`` nearest of those that pass.
The library is indexed twice, into SQLite and into PostgreSQL, and every test runs on both."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from indexer import Indexer
from search_engine import ParameterError, SearchEngine
from search_engine.cli import app
from search_engine.filters import Filter, parse_condition
from synth import SR, tune

runner = CliRunner()

#: name -> (folder, seconds, genre, artist, track, stereo 44.1 kHz)
LIBRARY = {
    "d0": ("kit", 8.0, "Drums", "Ann", 1, False),
    "d1": ("kit", 7.0, "Drums", "Ann", 2, True),
    "d2": ("kit", 1.5, "drums", "Bob", 3, False),
    "d3": ("loops", 6.0, "Drums", "Bob", 4, True),
    "p0": ("keys", 8.0, "Piano", "Cat", 1, False),
    "p1": ("keys", 7.5, "Piano", "Cat", 2, True),
    "p2": ("keys", 1.2, "Piano", "Dan", 3, False),
    "p3": ("loops", 6.5, "Piano", "Dan", 4, False),
    "n0": ("loops", 6.0, None, None, None, False),
    "n1": ("kit", 1.8, None, None, None, True),
}


def _write(path, y, stereo: bool, tags: dict) -> None:
    import mutagen.flac
    import soxr

    if stereo:
        y = soxr.resample(y, SR, 44100)
        sf.write(path, np.stack([y, 0.7 * y], axis=1), 44100)
    else:
        sf.write(path, y, SR)
    f = mutagen.flac.FLAC(path)
    for key, value in tags.items():
        f[key] = value
    f.save()


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """Ten FLAC files in three folders, with tags; returns ``(root, {name: path})``."""
    root = tmp_path_factory.mktemp("tagged")
    paths = {}
    for i, (name, (folder, seconds, genre, artist, track, stereo)) in enumerate(LIBRARY.items()):
        (root / folder).mkdir(exist_ok=True)
        path = root / folder / f"{name}.flac"
        tags = {"title": f"Piece {name}", "album": f"Album of {folder}"}
        if genre:
            tags.update(genre=genre, artist=artist, tracknumber=f"{track}/9")
        _write(path, tune(700 + i, seconds), stereo, tags)
        paths[name] = str(path.resolve())
    return root, paths


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def index(request, tagged, tmp_path_factory):
    """The tagged library indexed into an SQLite catalog, then into a PostgreSQL one; returns the
    settings overrides that open it."""
    root, _ = tagged
    folder = tmp_path_factory.mktemp(f"filter_index_{request.param}")
    opts = {"catalog_url": request.getfixturevalue("postgres").create_database()} if request.param == "postgres" else {}
    with SearchEngine.create(folder, **opts) as engine:
        report = Indexer(engine, workers=1).add([root])
    assert report.added == len(LIBRARY) and not report.failed
    return {"index": folder, **opts}


@pytest.fixture(scope="module")
def engine(index):
    with SearchEngine.open(index["index"], catalog_url=index.get("catalog_url")) as e:
        yield e


def _cli(index, *args):
    extra = ["--catalog-url", index["catalog_url"]] if "catalog_url" in index else []
    return runner.invoke(app, [*args, "--index", str(index["index"]), *extra], env={"COLUMNS": "300"})  # a table on one line


def _clip(tmp_path, paths, name, start_s=1.0, seconds=3.0):
    y, sr = sf.read(paths[name], dtype="float32", always_2d=True)
    clip = tmp_path / f"clip_{name}.wav"
    sf.write(clip, y[int(start_s * sr) : int((start_s + seconds) * sr)].mean(axis=1), sr)
    return str(clip)


def test_conditions_parse_and_bad_ones_are_refused():
    assert parse_condition("genre=Drums") == parse_condition(" genre == Drums ")
    assert parse_condition("duration<2").value == 2.0 and parse_condition("rate>=44100").op == ">="
    assert parse_condition('artist="Ann Lee"').value == "Ann Lee"
    for bad, why in (("genre", "FIELD OP VALUE"), ("colour=red", "unknown field"), ("duration<short", "is a number"),
                     ("genre<Drums", "is text"), ("track=nan", "finite")):
        with pytest.raises(ParameterError, match=why):
            parse_condition(bad)
    assert not Filter.parse() and Filter.parse(where="genre=Drums")


def test_tags_are_stored_and_shown_with_every_result(engine, index, tagged, tmp_path):
    _, paths = tagged
    files = engine.catalog.files_by_path([paths["d1"], paths["n0"]])
    d1 = files[paths["d1"]]
    assert (d1.genre, d1.artist, d1.album, d1.title, d1.track) == ("Drums", "Ann", "Album of kit", "Piece d1", 2)
    assert (d1.sample_rate_hz, d1.channels) == (44100, 2) and abs(d1.duration_s - 7.0) < 0.01
    assert files[paths["n0"]].genre is None and files[paths["n0"]].track is None
    clip = _clip(tmp_path, paths, "d1")
    result = _cli(index, "query", clip, "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["results"][0]
    assert first["path"] == paths["d1"]
    assert first["tags"] == {"title": "Piece d1", "album": "Album of kit", "genre": "Drums", "artist": "Ann", "track": 2,
                             "duration_s": 7.0, "sample_rate_hz": 44100, "channels": 2}
    table = _cli(index, "query", clip, "-k", "1")
    assert table.exit_code == 0 and "Ann - Piece d1" in table.stdout and "Drums" in table.stdout and "44.1 kHz stereo" in table.stdout
    similar = engine.query(clip, k=1, mode="similar")[0]
    assert similar.tags["genre"] == "Drums" and similar.as_dict()["tags"] == similar.tags


def _exact_similar(engine, clip, allowed_paths, k):
    """The k recordings nearest to the clip in the similar space among ``allowed_paths``, by brute force."""
    files = engine.catalog.files_by_path(allowed_paths)
    ids = np.array([f.id for f in files.values()])
    d = np.linalg.norm(engine.wholes.reconstruct(ids) - engine.vector(clip), axis=1)
    by_id = {f.id: f.path for f in files.values()}
    return [by_id[i] for i in ids[np.argsort(d, kind="stable")][:k]]


@pytest.mark.parametrize(
    "where, under, passing",
    [
        (["genre=drums"], None, ["d0", "d1", "d2", "d3"]),  # any case: "drums" and "Drums"
        (["genre=Drums", "duration>2"], None, ["d0", "d1", "d3"]),
        (["duration<2"], None, ["d2", "p2", "n1"]),
        (["genre!=Drums"], None, ["p0", "p1", "p2", "p3", "n0", "n1"]),  # a file without a genre is != Drums
        (["rate=44100", "channels=2"], None, ["d1", "d3", "p1", "n1"]),
        (["track>=3", "artist=*a*"], None, ["p2", "p3"]),  # Dan; wildcards
        ([], ["loops"], ["d3", "p3", "n0"]),
        (["genre=Piano"], ["keys", "loops"], ["p0", "p1", "p2", "p3"]),
    ],
)
def test_similar_filters_return_exactly_the_k_nearest_that_pass(engine, tagged, tmp_path, where, under, passing):
    root, paths = tagged
    clip = _clip(tmp_path, paths, "p0")  # piano: unfiltered, the drums are not its nearest
    under_paths = [root / u for u in under] if under else None
    allowed = [paths[n] for n in passing]
    for k in (2, len(passing), len(passing) + 3):
        got = [m.path for m in engine.query(clip, k=k, mode="similar", where=where, under=under_paths)]
        assert got == _exact_similar(engine, clip, allowed, min(k, len(passing)))
    unfiltered = [m.path for m in engine.query(clip, k=2, mode="similar")]
    if "p0" not in passing:
        assert set(unfiltered) - set(allowed), "the filter must change the answer for this test to mean anything"


def test_match_filter_searches_inside_the_passing_recordings(engine, tagged, tmp_path):
    """match mode: a clip of d0 filtered to the other long drums still gets k results: the
    neighbours are searched among the passing recordings only (a filter applied to the
    unfiltered neighbours would find d0's segments and little else)."""
    _, paths = tagged
    clip = _clip(tmp_path, paths, "d0", seconds=3.0)
    assert engine.query(clip, k=1)[0].path == paths["d0"]
    where = ["genre=Drums", "duration>2", "artist!=Ann"]  # d3 only
    assert [m.path for m in engine.query(clip, k=3, where=where)] == [paths["d3"]]
    passing = ["d1", "d3", "p0", "p1", "p3", "n0"]  # long recordings, d0 excluded
    got = engine.query(clip, k=len(passing), where=["duration>2", "title!=Piece d0"])
    assert sorted(m.path for m in got) == sorted(paths[n] for n in passing)
    assert [m.rank for m in got] == list(range(1, len(passing) + 1)) and all(m.distance > 0.05 for m in got)
    assert not any(m.matched for m in got)  # the clip is in none of them
    batch = engine.query_batch([clip, clip], k=4, filter=Filter.parse(where=["duration>2", "title!=Piece d0"]))
    assert [len(r.matches) for r in batch] == [4, 4] and batch[0].matches == got[:4]


def test_query_cli_filters_and_bad_where(index, tagged, tmp_path):
    root, paths = tagged
    clip = _clip(tmp_path, paths, "p1")
    result = _cli(index, "query", clip, "--json", "-k", "5", "--mode", "similar", "--where", "genre=Drums", "--where", "duration>2",
                  "--under", str(root / "kit"))
    assert result.exit_code == 0, result.output
    got = [r["path"] for r in json.loads(result.stdout)["results"]]
    assert sorted(got) == sorted([paths["d0"], paths["d1"]]) and all(r["tags"]["genre"] == "Drums" for r in json.loads(result.stdout)["results"])
    bad = _cli(index, "query", clip, "--where", "loudness>3")
    assert bad.exit_code == 1 and "unknown field 'loudness'" in bad.stderr


def test_classify_filters_the_voters(engine, index, tagged, tmp_path):
    _, paths = tagged
    engine.label([paths[n] for n in ("d0", "d1", "d3")], "drums")
    engine.label([paths[n] for n in ("p0", "p1", "p3")], "piano")
    try:
        clip = _clip(tmp_path, paths, "d1")
        [plain] = engine.classify([clip], k=3)
        assert plain.label == "drums"
        [only_keys] = engine.classify([clip], k=3, under=os.path.dirname(paths["p0"]))
        assert only_keys.label == "piano" and {n["path"] for n in only_keys.neighbours} == {paths["p0"], paths["p1"]}
        result = _cli(index, "classify", clip, "--json", "-k", "3", "--where", "genre=Piano")
        assert result.exit_code == 0, result.output
        line = json.loads(result.stdout)
        assert line["label"] == "piano" and len(line["neighbours"]) == 3
    finally:
        engine.label(list(paths.values()), None)


def test_similar_to_takes_filters(engine, tagged):
    _, paths = tagged
    got = engine.similar_to(paths["p0"], k=3, where="genre=Drums")
    assert len(got.matches) == 3 and all(m.tags["genre"].lower() == "drums" for m in got.matches)


def test_search_with_allowed_ids_returns_min_k_allowed_on_every_index_type():
    """VectorIndex.search(allowed=...) on flat, IVF (probing too few lists for the allowed ids:
    searched again over all) and HNSW (selector search stops early: exact distances to the allowed vectors): each query gets
    min(k, allowed) neighbours, only allowed ones, the exact nearest on a flat index."""
    from search_engine.vectors import VectorIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    ids = np.arange(4000, dtype=np.int64) * 3 + 7
    allowed = np.zeros(ids.max() + 1, dtype=bool)
    allowed[ids[rng.choice(4000, 40, replace=False)]] = True
    q = rng.standard_normal((25, 32)).astype(np.float32)
    pool = ids[allowed[ids]]
    d_all = np.linalg.norm(q[:, None] - x[allowed[ids]][None], axis=2)
    exact = pool[np.argsort(d_all, axis=1)]
    for factory in ("IDMap2,Flat", "IVF64,Flat", "IVF64,PQ8x4fs", "HNSW16"):
        v = VectorIndex.create(32, factory)
        if v.needs_training:
            v.index.train(x)
        v.add(x, ids)
        v.set_nprobe(1)
        for k in (5, 40, 60):
            dist, got = v.search(q, k, allowed=allowed)
            want = min(k, 40)
            assert ((got >= 0).sum(axis=1) == want).all(), factory
            assert allowed[got[got >= 0]].all() and np.isinf(dist[got < 0]).all()
            if factory in ("IDMap2,Flat", "IVF64,Flat"):
                assert (got[:, :want] == exact[:, :want]).all(), factory


def test_migration_0003_moves_stored_tags_into_columns(tmp_path):
    """A catalog of release 0002 (tags only in JSON) gets its tag columns filled on upgrade."""
    import datetime as dt

    from alembic import command
    from sqlalchemy import text

    from search_engine.catalog import Catalog

    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    cfg, _ = catalog._alembic()
    with catalog.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with catalog.engine.begin() as conn:
        row = "INSERT INTO files (path, size_bytes, mtime_ns, content_hash, duration_s, sample_rate_hz, channels, tags, first_segment_id, n_segments, indexed_at) VALUES (:p, 1, 1, 'h', 2.0, 44100, 2, :t, 0, 3, :now)"
        conn.execute(text(row), {"p": "/a.ogg", "t": json.dumps({"genre": "Drums", "artist": "Ann", "track": "3/12"}), "now": dt.datetime(2026, 1, 1)})
        conn.execute(text(row), {"p": "/b.ogg", "t": "{}", "now": dt.datetime(2026, 1, 1)})
    catalog.upgrade()
    files = catalog.files_by_path(["/a.ogg", "/b.ogg"])
    assert (files["/a.ogg"].genre, files["/a.ogg"].artist, files["/a.ogg"].track, files["/a.ogg"].title) == ("Drums", "Ann", 3, None)
    assert files["/b.ogg"].genre is None
    assert list(catalog.file_ids_where(Filter.parse(where="genre=drums").clause())) == [files["/a.ogg"].id]
    catalog.close()
