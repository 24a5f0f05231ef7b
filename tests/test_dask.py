"""Distributed indexing on Dask: a LocalCluster's workers decode and embed, the rows and vectors
land in the same index and catalog, with the same results as a local run."""

from __future__ import annotations

import os

import distributed
import numpy as np
import soundfile as sf

from indexer import Indexer
from search_engine import SearchEngine
from synth import SR, tune


def _vectors(engine, folder):
    files = sorted(engine.catalog.files_under(str(folder)), key=lambda f: f.path)
    return [os.path.basename(f.path) for f in files], np.concatenate(
        [engine.segments.reconstruct(f.first_segment_id + np.arange(f.n_segments)) for f in files]
    )


def test_local_cluster_indexes_like_a_local_run(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(4):
        sf.write(lib / f"t{i}.wav", tune(300 + i, 6.0), SR)
    (lib / "bad.wav").write_text("not audio\n" * 10)
    with SearchEngine.create(tmp_path / "local") as engine:
        Indexer(engine).add([lib])
        names, local = _vectors(engine, lib)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, SearchEngine.create(tmp_path / "dask") as engine:
        errors = []
        report = Indexer(engine, client=client, on_error=lambda p, m: errors.append(m)).add([lib])
        assert report.added == 4 and len(report.failed) == 1 and "not a readable audio file" in errors[0]
        assert engine.check()["ok"]
        dnames, remote = _vectors(engine, lib)
        assert dnames == names and np.allclose(remote, local, atol=1e-5)
        assert engine.query((tune(302, 6.0)[SR : 5 * SR], SR), k=1)[0].path.endswith("t2.wav")
