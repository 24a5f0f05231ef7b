"""Shared fixtures: a small synthetic library, indexed once per test session with the bundled model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from synth import SR, tune

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: seconds of each library file
LIBRARY = {f"tune{i}.wav": 20.0 + 2 * i for i in range(6)}


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> dict[str, np.ndarray]:
    """Folder of six 20-30 s synthetic tunes; returns {path: waveform at 16 kHz}."""
    root = tmp_path_factory.mktemp("library")
    out = {}
    for i, (name, seconds) in enumerate(LIBRARY.items()):
        y = tune(100 + i, seconds)
        path = root / name
        if i % 2:  # half of them stored at 44.1 kHz stereo, to exercise decoding
            import soxr

            y44 = soxr.resample(y, SR, 44100)
            sf.write(path, np.stack([y44, 0.5 * y44], axis=1), 44100)
        else:
            sf.write(path, y, SR)
        out[str(path)] = y
    return out


@pytest.fixture(scope="session")
def encoder():
    from search_engine.audio2vec import Encoder

    return Encoder.load("default")


@pytest.fixture(scope="session")
def built_index(library, tmp_path_factory):
    """An index of ``library`` built through the Python API; returns its folder."""
    from indexer import Indexer
    from search_engine import SearchEngine

    folder = tmp_path_factory.mktemp("index")
    with SearchEngine.create(folder) as engine:
        report = Indexer(engine).add([os.path.dirname(next(iter(library)))])
    assert report.added == len(library) and not report.failed
    return folder


@pytest.fixture(scope="session")
def engine(built_index):
    from search_engine import SearchEngine

    with SearchEngine.open(built_index) as e:
        yield e


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the test session (:class:`pgserver.PostgresServer`: Debian's
    initdb/pg_ctl in a temporary folder, a free port); ``postgres.create_database()`` gives the
    URL of a new empty database."""
    from pgserver import PostgresServer

    with PostgresServer() as server:
        yield server
