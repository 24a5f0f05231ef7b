"""`audio2vec serve`: every endpoint on a small synthetic index, the CLI's JSON, errors, traversal."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from search_engine.cli import app as cli
from synth import SR, tune


@pytest.fixture(scope="module")
def service(built_index):
    from search_engine import SearchEngine
    from search_engine.service import create_app

    with SearchEngine.open(built_index) as engine:
        with TestClient(create_app(engine)) as client:
            yield client, engine


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    out = io.BytesIO()
    sf.write(out, y, sr, format="WAV", subtype="PCM_16")
    return out.getvalue()


def excerpt(library: dict, i: int, start_s: float, seconds: float = 3.0) -> tuple[str, np.ndarray]:
    path, y = list(library.items())[i]
    return path, y[int(start_s * SR) : int((start_s + seconds) * SR)]


def test_health(service):
    client, engine = service
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["files"] == 6 and h["segments"] > 0 and h["model"] == engine.model


@pytest.mark.parametrize("mode", ["match", "similar"])
def test_query_answers_exactly_as_the_cli(service, library, built_index, tmp_path, mode):
    client, _ = service
    path, y = excerpt(library, 2, 4.0)
    clip = tmp_path / "excerpt two.wav"
    clip.write_bytes(wav_bytes(y))
    r = client.post("/query", params={"k": 3, "mode": mode}, files={"clip": ("excerpt two.wav", clip.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    got = r.json()
    cli_run = CliRunner().invoke(cli, ["query", str(clip), "--index", str(built_index), "--json", "-k", "3", "--mode", mode])
    assert cli_run.exit_code == 0, cli_run.output
    want = json.loads(cli_run.stdout.strip())
    assert got["query"] == "excerpt two.wav"
    assert set(got) == set(want)
    assert got.get("matched") == want.get("matched")
    assert [{k: v for k, v in r.items() if k != "distance"} for r in got["results"]] == [
        {k: v for k, v in r.items() if k != "distance"} for r in want["results"]
    ]
    assert [r["distance"] for r in got["results"]] == pytest.approx([r["distance"] for r in want["results"]], abs=1e-4)
    if mode == "match":
        assert got["results"][0]["path"] == path and got["matched"] is True and got["results"][0]["offset_s"] == pytest.approx(4.0, abs=0.05)


def test_concurrent_uploads_are_batched_and_each_gets_its_own_answer(service, library):
    from concurrent.futures import ThreadPoolExecutor

    client, _ = service
    jobs = [(f"c{i}.wav", *excerpt(library, i % 6, 1.0 + i)) for i in range(8)]

    def ask(job):
        name, path, y = job
        return name, path, client.post("/query", params={"k": 1}, files={"clip": (name, wav_bytes(y), "audio/wav")})

    with ThreadPoolExecutor(8) as pool:
        for name, path, r in pool.map(ask, jobs):
            assert r.status_code == 200 and r.json()["query"] == name and r.json()["results"][0]["path"] == path


def test_where_and_under_filter_the_search_as_the_cli(service, library, tmp_path):
    client, engine = service
    path, y = excerpt(library, 4, 3.0)  # tune4 is 28 s long: outside "duration<25"
    clip = wav_bytes(y)
    r = client.post("/query", params={"k": 5, "mode": "similar", "where": ["duration<25"]}, files={"clip": ("c.wav", clip, "audio/wav")})
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    passing = sorted(p for p in library if sf.info(p).duration < 25)
    assert sorted(x["path"] for x in got) == passing and all(x["tags"]["duration_s"] < 25 for x in got)
    api = engine.query_batch([(y, 16000)], k=5, mode="similar", where="duration<25")[0].as_dict()["results"]
    assert [x["path"] for x in got] == [x["path"] for x in api]
    r = client.post("/query", params={"where": ["duration<30"], "under": [str(tmp_path)]}, files={"clip": ("c.wav", clip, "audio/wav")})
    assert r.status_code == 200 and r.json()["results"] == []  # nothing indexed under that folder
    r = client.post("/query", params={"where": ["loudness>3"]}, files={"clip": ("c.wav", clip, "audio/wav")})
    assert r.status_code == 422 and "unknown field" in r.json()["error"]
    r = client.get("/similar", params={"path": list(library)[0], "k": 6, "where": "duration>=25"})
    assert r.status_code == 200 and {x["path"] for x in r.json()["results"]} == {p for p in library if sf.info(p).duration >= 25}


def test_not_found_is_matched_false(service):
    client, _ = service
    r = client.post("/query", files={"clip": ("outside.wav", wav_bytes(tune(999, 4.0)), "audio/wav")})
    assert r.status_code == 200 and r.json()["matched"] is False


def test_similar_from_stored_vectors(service, library):
    client, engine = service
    path = list(library)[3]
    r = client.get("/similar", params={"path": path, "k": 4})
    assert r.status_code == 200, r.text
    got = r.json()
    want = engine.query_batch([path], k=4, mode="similar")[0].as_dict()
    assert got["query"] == path and [x["path"] for x in got["results"]] == [x["path"] for x in want["results"]]
    assert got["results"][0]["path"] == path and got["results"][0]["distance"] == pytest.approx(0, abs=1e-3)
    assert [x["distance"] for x in got["results"]] == pytest.approx([x["distance"] for x in want["results"]], abs=1e-3)
    assert client.get("/similar", params={"path": "/nowhere/x.wav"}).status_code == 404


def test_files_listing_rows_and_audio(service, library):
    client, _ = service
    folder = os.path.dirname(next(iter(library)))
    page = client.get("/files", params={"limit": 4}).json()
    assert page["total"] == 6 and len(page["files"]) == 4
    rest = client.get("/files", params={"limit": 4, "offset": 4}).json()["files"]
    paths = [f["path"] for f in page["files"] + rest]
    assert sorted(paths) == sorted(library) == paths
    assert client.get("/files", params={"under": folder}).json()["total"] == 6
    assert client.get("/files", params={"under": folder + "-other"}).json()["total"] == 0
    row = client.get("/files", params={"under": paths[1]}).json()["files"][0]
    assert row["path"] == paths[1]
    one = client.get(f"/files/{row['id']}").json()
    assert one == row and {"id", "path", "duration_s", "tags"} <= set(one)
    r = client.get(f"/files/{row['id']}/audio", params={"start": 2.0, "end": 5.0})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    y, sr = sf.read(io.BytesIO(r.content))
    assert len(y) / sr == pytest.approx(3.0, abs=0.01)
    # the passage is the recording's own audio (first file: 16 kHz mono)
    if sr == SR and y.ndim == 1:
        assert np.corrcoef(y, library[paths[1]][2 * SR : 5 * SR])[0, 1] > 0.99
    assert client.get(f"/files/{row['id']}/audio", params={"start": 5, "end": 2}).status_code == 422


def test_errors_are_4xx_json(service, built_index):
    from search_engine.service import create_app

    client, engine = service
    bad = client.post("/query", files={"clip": ("noise.mp3", b"this is not audio at all" * 20, "audio/mpeg")})
    assert bad.status_code == 422 and bad.json()["error"].startswith("noise.mp3: ") and bad.json()["results"] == []
    empty = client.post("/query", files={"clip": ("empty.wav", b"", "audio/wav")})
    assert empty.status_code == 422 and "empty.wav" in empty.json()["error"]
    missing = client.post("/query", files={"other": ("a.wav", b"x", "audio/wav")})
    assert missing.status_code == 422 and "clip" in missing.json()["error"]
    assert client.post("/query", params={"mode": "loud"}, files={"clip": ("a.wav", b"x")}).status_code == 422
    assert client.get("/files/999999").status_code == 404 and "999999" in client.get("/files/999999").json()["error"]
    assert client.get("/files/999999/audio").status_code == 404
    assert client.get("/nothing-here").json() == {"error": "Not Found"}
    small = TestClient(create_app(engine, engine.settings.replace(max_upload_mb=0.05), warm_up=False))
    big = small.post("/query", files={"clip": ("big.wav", wav_bytes(tune(1, 3.0)), "audio/wav")})  # ~94 KiB
    assert big.status_code == 413 and "max_upload_mb" in big.json()["error"]

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"\0" * 4096

    r = small.post("/query", content=chunked(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413


def test_path_traversal_reads_nothing_outside_the_catalog(service, tmp_path, monkeypatch):
    import builtins

    import search_engine.service as service_module

    client, _ = service
    opened, passages = [], []
    real_open, real_passage = builtins.open, service_module.passage_wav
    monkeypatch.setattr(builtins, "open", lambda f, *a, **kw: (opened.append(str(f)), real_open(f, *a, **kw))[1])
    monkeypatch.setattr(service_module, "passage_wav", lambda path, *a, **kw: (passages.append(str(path)), real_passage(path, *a, **kw))[1])
    for url in (
        "/files/..%2F..%2F..%2Fetc%2Fpasswd/audio",
        "/files/../../../etc/passwd",
        "/files/-1/audio",
        "/files/99999999999999999999999/audio",
        "/files/1/audio?start=inf",
        "/files/1/audio?start=nan",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/../__init__.py",
        "/similar?path=../../../../etc/passwd",
        "/similar?path=/etc/passwd",
    ):
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code)
        assert "root:" not in r.text and "audio2vec serve" not in r.text
    r = client.post("/query", files={"clip": ("../../../../tmp/evil/../x.wav", b"RIFF....WAVEfmt ", "audio/wav")})
    assert r.status_code == 422 and r.json()["query"] == "x.wav"
    assert not any("passwd" in p or "evil" in p for p in opened) and not passages


def test_token_and_bind_address(service, built_index):
    from search_engine.errors import ParameterError
    from search_engine.service import create_app, is_loopback, serve

    _, engine = service
    guarded = TestClient(create_app(engine, engine.settings.replace(serve_token="s3cret"), warm_up=False))
    assert guarded.get("/health").status_code == 401 and "token" in guarded.get("/health").json()["error"]
    assert guarded.get("/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert guarded.get("/health?token=s3cret").status_code == 200
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "::", "example.org"]))
    with pytest.raises(ParameterError, match="serve_token"):
        serve(engine.settings.replace(index=str(built_index)), host="0.0.0.0", port=1)


def test_page_and_static_files(service):
    client, _ = service
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="clip-input"' in page.text and "static/app.js" in page.text and "http" not in page.text.replace("https or", "")
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "MediaRecorder" in js.text and "//cdn" not in js.text
    assert client.get("/static/style.css").status_code == 200


def test_answers_while_an_index_run_commits(tmp_path):
    """A server opened before files are added sees each commit of a writer in another engine."""
    from indexer import Indexer
    from search_engine import SearchEngine
    from search_engine.service import create_app

    lib = tmp_path / "lib"
    lib.mkdir()
    tunes = {lib / f"t{i}.wav": tune(300 + i, 8.0) for i in range(3)}
    first = next(iter(tunes))
    sf.write(first, tunes[first], SR)
    folder = tmp_path / "index"
    with SearchEngine.create(folder) as writer:
        Indexer(writer).add([first])
        with SearchEngine.open(folder) as reader, TestClient(create_app(reader, warm_up=False)) as client:
            assert client.get("/health").json()["files"] == 1
            for path, y in list(tunes.items())[1:]:
                sf.write(path, y, SR)
                Indexer(writer).add([path])
                r = client.post("/query", files={"clip": ("q.wav", wav_bytes(y[2 * SR : 5 * SR]), "audio/wav")}).json()
                assert r["results"][0]["path"] == str(path) and r["matched"] is True
            assert client.get("/health").json()["files"] == 3


def test_serve_command_help_and_refusal(built_index):
    runner = CliRunner()
    helped = runner.invoke(cli, ["serve", "--help"])
    assert helped.exit_code == 0 and all(opt in helped.output for opt in ("--index", "--host", "--port", "/query"))
    refused = runner.invoke(cli, ["serve", "--index", str(built_index), "--host", "0.0.0.0", "--port", "1"])
    assert refused.exit_code == 1 and "serve_token" in refused.stderr
