"""One PostgreSQL catalog for many machines, measured: Dask workers on two processes decode and embed,
one writer stores into a PostgreSQL catalog (and, for comparison, into SQLite); then a separate
query host (another engine on the same catalog and vector folder) answers clips, unfiltered and
with a filter (``duration>120``: only recordings over 2 minutes, inside the search).

Library: the 31 SuperTuxKart OGG pieces (51 min; ``common.stk_music_library``). The PostgreSQL
server is a throwaway one (``tests/pgserver.py``: Debian's initdb/pg_ctl in a temporary folder,
127.0.0.1, ``fsync=off`` as in the tests; a production server keeps fsync on). Runs alternate
SQLite and PostgreSQL ``--repeats`` times, each into a fresh index (and a fresh database); the
cluster is started once and warmed on a few files first (start-up and model loading are not
counted; each run is from the first file found to the last commit). Figures are medians.

    python benchmarks/postgres_catalog.py [--repeats 3] [--clips 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import machine, stk_music_library, write_result  # noqa: E402
from pgserver import PostgresServer  # noqa: E402
from search_engine.catalog import path_key  # noqa: E402


def clips_from(files, n: int, seconds: float = 3.0, seed: int = 0):
    """``n`` excerpts of ``seconds`` from random files: ``[(path, start_s, (waveform, rate))]``."""
    import numpy as np

    from search_engine.audio import load

    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(files), n):
        y, sr = load(files[i], sr=16000)
        start = float(rng.uniform(0, len(y) / sr - seconds - 0.1))
        out.append((str(files[i]), start, (y[int(start * sr) : int((start + seconds) * sr)], sr)))
    return out


def catalog_bytes(engine) -> int:
    """Bytes of the catalog's tables and their indexes: PostgreSQL's ``pg_total_relation_size`` of
    each (after VACUUM, without the empty database's own ~7 MB of system catalogs); the SQLite file
    with its WAL after a checkpoint."""
    from sqlalchemy import func, select, text

    if engine.catalog.engine.dialect.name == "postgresql":
        with engine.catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM"))
            return sum(int(conn.execute(select(func.pg_total_relation_size(t))).scalar())
                       for t in ("files", "segments", "settings", "alembic_version"))
    with engine.catalog.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(engine.catalog.engine.url.database)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run(kind: str, url: str | None, files, clips, client) -> dict:
    """Index ``files`` into a fresh index with the Dask ``client``; then query from a second engine."""
    import numpy as np

    from indexer import Indexer
    from search_engine import SearchEngine

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"pgbench-{kind}-") as tmp:
        opts = {"catalog_url": url} if url else {}
        with SearchEngine.create(Path(tmp) / "index", **opts) as writer:
            writer.encoder.build()
            t0 = time.perf_counter()
            report = Indexer(writer, client=client).add(files)
            wall = time.perf_counter() - t0
            assert not report.failed and writer.check()["ok"]
            refused = None
            if url:  # another machine's writer (its own connection to the database): refused while this one writes
                from filelock import Timeout

                from search_engine.catalog import Catalog
                from search_engine.locks import AdvisoryLock

                other = Catalog(url)
                with writer.writing():
                    try:
                        AdvisoryLock(other.engine).acquire(timeout=0)
                        refused = False
                    except Timeout:
                        refused = True
                other.close()
            sqlite_files = sorted(p.name for p in Path(tmp).rglob("*.sqlite"))
            with SearchEngine.open(Path(tmp) / "index", **opts) as host:  # a query host
                host.encoder.build()
                host.query(clips[0][2], k=5)
                times, filtered, top1, answers, kept = [], [], 0, [], True
                long_ones = {f.path for f in host.catalog.files_under("/") if f.duration_s > 120}
                for path, _, clip in clips:
                    t = time.perf_counter()
                    found = host.query(clip, k=5)
                    times.append(time.perf_counter() - t)
                    top1 += bool(found) and found[0].path == path_key(path)
                    answers.append([m.path for m in found])
                    t = time.perf_counter()  # the same clip, searched only among recordings over 2 minutes
                    only = host.query(clip, k=5, where="duration>120")
                    filtered.append(time.perf_counter() - t)
                    kept &= len(only) == min(5, len(long_ones)) and {m.path for m in only} <= long_ones
                t = time.perf_counter()
                for _ in range(200):
                    host.refresh()
                refresh_us = (time.perf_counter() - t) / 200 * 1e6
                segments = host.stats()["segments"]
            size = catalog_bytes(writer)  # after the queries: its VACUUM does not run beside them
    return {
        "seconds": round(wall, 2), "audio_s": round(report.audio_s, 1), "x_realtime": round(report.audio_s / wall, 1),
        "query_ms_median": round(1000 * statistics.median(times), 1), "query_ms_p95": round(1000 * float(np.percentile(times, 95)), 1),
        "filtered_query_ms_median": round(1000 * statistics.median(filtered), 1), "filtered_k_results_all_passing": kept,
        "top1": top1 / len(clips), "refresh_us": round(refresh_us, 1), "catalog_bytes": size,
        "catalog_bytes_per_segment": round(size / max(1, segments), 1), "segments": segments,
        "second_writer_refused": refused, "sqlite_files": sqlite_files, "answers": answers,
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],  # the machine is shared: before, after
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clips", type=int, default=30)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the PostgreSQL server on the way out
    import distributed

    from indexer import Indexer
    from search_engine import SearchEngine

    info = machine()
    print(info)
    files = stk_music_library()
    clips = clips_from(files, args.clips)
    runs: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    with PostgresServer() as pg, \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with tempfile.TemporaryDirectory() as tmp, SearchEngine.create(tmp) as warm:  # workers load the model
            Indexer(warm, client=client).add(files[:2])
        version = None
        for i in range(args.repeats):
            for kind in ("sqlite", "postgresql"):
                url = pg.create_database(f"bench{i}") if kind == "postgresql" else None
                r = run(kind, url, files, clips, client)
                runs[kind].append(r)
                print(f"{kind} run {i + 1}: {r['audio_s'] / 60:.1f} min in {r['seconds']} s = {r['x_realtime']}x; query median "
                      f"{r['query_ms_median']} ms, p95 {r['query_ms_p95']} ms, filtered (duration>120) {r['filtered_query_ms_median']} ms "
                      f"(k results, all passing: {r['filtered_k_results_all_passing']}), top-1 {r['top1']:.3f}, refresh {r['refresh_us']} us, "
                      f"catalog {r['catalog_bytes_per_segment']} B/segment, second writer refused: {r['second_writer_refused']}, "
                      f"load {r['load_average_1min']}", flush=True)
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=audio2vec dbname=postgres") as conn:
            version = conn.execute("select version()").fetchone()[0]
    same = all(a["answers"] == b["answers"] for a, b in zip(runs["sqlite"], runs["postgresql"]))
    summary = {}
    for kind, rs in runs.items():
        summary[kind] = {
            key: statistics.median(r[key] for r in rs)
            for key in ("seconds", "x_realtime", "query_ms_median", "query_ms_p95", "filtered_query_ms_median", "top1", "refresh_us",
                        "catalog_bytes_per_segment")
        }
    for kind, rs in runs.items():
        summary[kind]["filtered_k_results_all_passing"] = all(r["filtered_k_results_all_passing"] for r in rs)
    summary["postgresql"]["second_writer_refused"] = all(r["second_writer_refused"] for r in runs["postgresql"])
    summary["postgresql"]["sqlite_files_written"] = sorted({f for r in runs["postgresql"] for f in r["sqlite_files"]})
    print("medians:", summary, "| identical answers, SQLite vs PostgreSQL:", same)
    for rs in runs.values():
        for r in rs:
            r.pop("answers")
    result = {
        "machine": info, "postgresql": version,
        "command": f"python benchmarks/postgres_catalog.py --repeats {args.repeats} --clips {args.clips}",
        "library": "stk (31 OGG, SuperTuxKart)", "files": len(files), "dask_workers": 2, "clips": args.clips, "clip_s": 3.0,
        "median": summary, "identical_answers": same, "runs": runs,
    }
    print("wrote", write_result("postgres_catalog", result))


if __name__ == "__main__":
    main()
