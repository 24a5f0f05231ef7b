"""The ``audio2vec`` command line: thin commands over the Python API.

Data goes to stdout (a table, or with ``--json`` one JSON object per line); messages, progress and
errors go to stderr.

Exit codes: 0 success; 1 error (no index, bad settings, model mismatch); 2 bad usage;
3 partly done: some files (``index``) or clips (``query``) failed and were reported, the rest succeeded.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_ERROR, EXIT_PARTIAL = 1, 3

app = typer.Typer(
    name="audio2vec",
    help="Search engine for sound: index a library of recordings, then query it by example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Mode(str, Enum):
    match = "match"
    similar = "similar"


IndexOpt = Annotated[
    Optional[Path],
    typer.Option("--index", "-i", help="Index folder. Default: data/index, or $AUDIO2VEC_INDEX, or `index` in config.yaml.", show_default=False),
]
ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", help="Settings file (default: $AUDIO2VEC_CONFIG or ./config.yaml).", show_default=False)
]
ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", help="Audio2Vec model folder, or 'default' for the bundled model. Default: the index's own.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output: one JSON object per line on stdout.")]
CatalogOpt = Annotated[
    Optional[str], typer.Option("--catalog-url", help="SQLAlchemy URL of the catalog (default: SQLite in the index folder).", show_default=False)
]


def _err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def _settings(index, config, **overrides):
    from .config import load_config

    return load_config(config, index=str(index) if index is not None else None, **overrides)


def _fail(exc: Exception) -> typer.Exit:
    _err(f"error: {exc}")
    return typer.Exit(EXIT_ERROR)


@contextmanager
def _engine(index, config, *, create: bool = False, **overrides):
    """The SearchEngine for a command; an audio2vec error becomes one ``error:`` line and exit 1."""
    from .engine import SearchEngine
    from .errors import Audio2VecError

    try:
        with (SearchEngine.create if create else SearchEngine.open)(settings=_settings(index, config, **overrides)) as engine:
            yield engine
    except Audio2VecError as exc:
        raise _fail(exc)


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Audio files and folders (searched recursively).", show_default=False)],
    index: IndexOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    catalog_url: CatalogOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="Also remove indexed files under the given folders that no longer exist.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=0, help="Processes decoding files while this one embeds (0: one per core; default: workers in config, 0); with --scheduler local, the cluster's workers.", show_default=False)] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Decode and embed on a Dask cluster: its scheduler address (tcp://host:8786), or 'local' for a LocalCluster here. Workers need audio2vec installed and the files at the same paths.", show_default=False)] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add audio files and folders to the index (created if missing), incrementally.

    Unchanged files are skipped without being read; changed files are re-embedded; a moved or
    copied file keeps the vectors of its content. A file that cannot be read is reported on stderr
    in one line and skipped. Work is committed in batches: after a crash or Ctrl-C, run the same
    command again and it does only the rest. One indexing run per index at a time; queries keep
    working meanwhile. Exit code 0 if every file was indexed, 3 if some failed (the others are
    indexed), 1 on a fatal error.
    """
    from indexer import Indexer

    try:
        with _engine(index, config, create=True, model=model, catalog_url=catalog_url, workers=workers) as engine, \
                _dask_client(scheduler, workers) as client:
            report = Indexer(engine, workers=engine.settings.workers, client=client).add(paths, prune=prune, show_progress_bar=progress)
            stats = engine.stats()
    except OSError as exc:  # e.g. the disk is full: the last commit stands
        _err(f"error: cannot write the index: {exc}. Everything committed before is intact; run the command again to go on")
        raise typer.Exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _err("interrupted: everything committed before is intact; run the command again to go on")
        raise typer.Exit(130)
    if as_json:
        print(json.dumps({**report.as_dict(), "index": stats}))
    extra = "".join(
        f", {n} {what}" for n, what in ((report.moved, "moved"), (report.copied, "copies of indexed files"), (report.pruned, "pruned"))
        if n
    )
    _err(
        f"indexed {report.added} new and {report.updated} changed files ({report.audio_s / 60:.1f} min of audio, "
        f"{report.realtime_factor:.0f}x realtime), {report.unchanged} unchanged{extra}, {len(report.failed)} failed; "
        f"index now holds {stats['files']} files, {stats['segments']} segments"
    )
    if report.missing and not report.pruned:
        _err(f"{report.missing} indexed files under these folders no longer exist; --prune removes them")
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def query(
    clips: Annotated[list[str], typer.Argument(help="Audio clips to look up.", show_default=False)],
    index: IndexOpt = None,
    k: Annotated[Optional[int], typer.Option("-k", "--k", min=1, help="Results per clip (default 5).", show_default=False)] = None,
    mode: Annotated[
        Optional[Mode],
        typer.Option("--mode", "-m", help="match: which recordings contain the clip, and where. similar: recordings that sound most like it.", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Find the recordings nearest to each CLIP, ranked by Euclidean distance (smaller is nearer).

    With --json, stdout gets exactly one line per clip, in the order given:
    {"query": CLIP, "matched": true, "confidence": 0.99, "results": [{"rank": 1, "path": ..., "distance": ..., "offset_s": ..., "matched": true, "confidence": 0.99}, ...]}
    and a clip that cannot be read gets {"query": CLIP, "results": [], "error": "..."}.
    offset_s is where in the recording the clip starts (seconds). matched (match mode): the clip
    is in that recording (the model's calibrated decision: at most 1 % of clips from no indexed
    recording are claimed); confidence: the calibrated probability of that (0..1; null for a model
    without a fitted decision); "matched": false at the top means the clip is in no indexed
    recording (the nearest are still listed). Exit code 3 if some clip failed.
    """
    with _engine(index, config, model=model, catalog_url=catalog_url) as engine:
        results = engine.query_batch(clips, k=k, mode=mode.value if mode else None)
    for res in results:
        if as_json:
            print(json.dumps(res.as_dict()), flush=True)
        else:
            _print_table(res)
    if any(r.error for r in results):
        raise typer.Exit(EXIT_PARTIAL)


def _print_table(res) -> None:
    from rich.console import Console
    from rich.table import Table

    from .errors import one_line

    console = Console()
    if res.error:
        _err(f"error: {res.error}")
        return
    title = one_line(res.query) + ("  (not found: in no indexed recording; nearest below)" if res.matched is False else "")
    table = Table(title=title, title_justify="left")
    confident = any(m.confidence is not None for m in res.matches)
    columns = (("rank", "right"), ("distance", "right")) + ((("confidence", "right"),) if confident else ()) + (("offset", "right"), ("recording", "left"))
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for m in res.matches:
        conf = (f"{m.confidence:.3f}" + (" *" if m.matched else ""),) if confident else ()
        table.add_row(str(m.rank), f"{m.distance:.4f}", *conf, _clock(m.offset_s), one_line(m.path))
    if not res.matches:
        table.add_row(*["-"] * (len(columns) - 1), "(index is empty)")
    console.print(table)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:05.2f}"


@app.command()
def remove(
    paths: Annotated[list[Path], typer.Argument(help="Files, or folders whose files should all be removed.", show_default=False)],
    index: IndexOpt = None,
    config: ConfigOpt = None,
    catalog_url: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove files from the index: their catalog rows and vectors go together, in one step."""
    with _engine(index, config, catalog_url=catalog_url) as engine:
        removed = engine.remove(paths)
    if as_json:
        print(json.dumps({"removed": removed}))
    else:
        for p in removed:
            print(p)
    _err(f"removed {len(removed)} files")


@app.command()
def stats(index: IndexOpt = None, config: ConfigOpt = None, catalog_url: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Show what the index holds: files, hours, segments, model, index type and size."""
    with _engine(index, config, catalog_url=catalog_url) as engine:
        info = engine.stats()
    if as_json:
        print(json.dumps(info))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            print(f"{key:<{width}}  {value}")


@app.command()
def check(index: IndexOpt = None, config: ConfigOpt = None, catalog_url: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Verify the index: every segment row has its vector and every vector its row, no vector is NaN.

    Exit code 0 when consistent, 1 otherwise (each problem on its own line).
    """
    with _engine(index, config, catalog_url=catalog_url) as engine:
        report = engine.check()
    if as_json:
        print(json.dumps(report))
    for problem in report["problems"]:
        _err(f"problem: {problem}")
    _err(
        f"{'consistent' if report['ok'] else 'INCONSISTENT'}: {report['files']} files, "
        f"{report['segments']} segments (generation {report['generation']})"
    )
    if not report["ok"]:
        raise typer.Exit(EXIT_ERROR)


@contextmanager
def _dask_client(scheduler: str | None, workers: int | None):
    """A Dask client for ``--scheduler`` (an address, or ``local`` for a LocalCluster), else None."""
    if scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
    else:
        with Client(scheduler) as client:
            yield client


@contextmanager
def _scratch_engine(index, config, model):
    """The index's engine when there is one (its model and settings), else a throwaway empty one."""
    import tempfile

    settings = _settings(index, config, model=model)
    if (settings.index_dir / "catalog.sqlite").exists():
        with _engine(index, config, model=model) as engine:
            yield engine
        return
    with tempfile.TemporaryDirectory(prefix="audio2vec-") as tmp, _engine(tmp, config, create=True, model=model) as engine:
        yield engine


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="First clip.", show_default=False)],
    b: Annotated[str, typer.Argument(help="Second clip.", show_default=False)],
    index: IndexOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How alike two clips are, and whether one contains the other (and where).

    distance: Euclidean distance of the whole-sound vectors (as in --mode similar: what kind of
    sound). match distance: the shorter clip exactly aligned inside the longer (as in --mode
    match). Uses the index's model and settings when --index exists, so the numbers agree with
    search results; else the bundled model. "contains" is the match decision of a query (the
    longer clip as the library), with its confidence (calibrated probability, 0..1);
    match_threshold in config overrides it with a distance threshold.
    """
    with _scratch_engine(index, config, model) as engine:
        c = engine.compare(a, b)
    if as_json:
        print(json.dumps(c.as_dict()))
        return
    print(f"distance {c.distance:.4f} (similar space: 0 = the same sound, larger = less alike, at most 2)")
    where = f"{c.contained} at {_clock(c.offset_s)} of {c.container}"
    conf = f", confidence {c.confidence:.3f}" if c.confidence is not None else ""
    print(f"match distance {c.match_distance:.4f}: {'contains' if c.contains else 'does not contain'} ({where}{conf})")


@app.command()
def embed(
    paths: Annotated[list[Path], typer.Argument(help="Audio files and folders (searched recursively).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .npy (structured array) or .parquet.", show_default=False)],
    per_window: Annotated[bool, typer.Option("--per-window/--per-file", help="One row per 0.512 s window, or one pooled row per file.")] = False,
    model: Annotated[str, typer.Option("--model", help="Audio2Vec model folder, or 'default'.")] = "default",
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal).", show_default=False)] = None,
) -> None:
    """Write Audio2Vec vectors of audio files: rows of (path, start_s, vector), in file order.

    --per-file (default) pools each file into its whole-sound vector (start_s 0), the vector
    `query --mode similar` compares; --per-window writes every window vector (the `match` ones).
    A file that cannot be read is reported on stderr and left out (exit 3).
    """
    from .embedding import embed_files, write_embeddings
    from .errors import Audio2VecError

    if out.suffix not in (".npy", ".parquet"):
        raise typer.BadParameter("--out must end in .npy or .parquet", param_hint="--out")
    try:
        table, failed = embed_files(paths, model=model, per_window=per_window, show_progress_bar=progress, on_error=lambda m: _err(f"error: {m}"))
        write_embeddings(table, out)
    except (Audio2VecError, OSError) as exc:  # OSError: --out cannot be written
        raise _fail(exc)
    _err(f"wrote {len(table['path'])} vectors of {len(set(table['path']))} files to {out}; {failed} failed")
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def label(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Indexed files or folders to label.", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option("--label", "-l", help="The label to give them.", show_default=False)] = None,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="CSV of path,label rows (header optional).", show_default=False)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the label of PATHS.")] = False,
    index: IndexOpt = None,
    config: ConfigOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Label indexed files (stored in the catalog), for `classify`.

    Labels stay with a file when it is re-indexed or moved."""
    rows: list[tuple[str, str | None]] = []
    if csv_file is not None:
        import csv

        with open(csv_file, newline="") as f:
            rows += [(r[0], r[1]) for r in csv.reader(f) if len(r) >= 2 and r[0] and r[0] != "path"]
    if paths:
        if not clear and not name:
            raise typer.BadParameter("give --label NAME (or --clear)", param_hint="--label")
        rows += [(str(p), None if clear else name) for p in paths]
    if not rows:
        raise typer.BadParameter("nothing to label: give PATHS with --label, or --csv FILE")
    done = 0
    with _engine(index, config, catalog_url=catalog_url) as engine:
        for path, value in rows:
            found = engine.label([path], value)
            if not found:
                _err(f"error: {path}: not in the index")
            done += len(found)
    _err(f"labelled {done} files")


@app.command()
def classify(
    clips: Annotated[list[str], typer.Argument(help="Audio clips to label.", show_default=False)],
    k: Annotated[Optional[int], typer.Option("-k", "--k", min=1, help="Labelled neighbours that vote (default: classify_k, 5).", show_default=False)] = None,
    index: IndexOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    catalog_url: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label each CLIP by its nearest labelled recordings (distance-weighted vote), with a
    confidence; "unknown" below min_confidence (config).

    With --json, one line per clip: {"query", "label", "confidence", "neighbours": [{"path",
    "label", "distance"}]} (and "error" for a clip that cannot be read; exit 3).
    """
    with _engine(index, config, model=model, catalog_url=catalog_url) as engine:
        results = engine.classify(clips, k=k)
    for res in results:
        if as_json:
            print(json.dumps(res.as_dict()), flush=True)
        elif res.error:
            _err(f"error: {res.error}")
        else:
            print(f"{res.label}\t{res.confidence:.2f}\t{res.query}")
    if any(r.error for r in results):
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def train(
    paths: Annotated[list[Path], typer.Argument(help="Audio files and folders to learn from.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    noise: Annotated[Optional[list[Path]], typer.Option("--noise", help="Recordings mixed in as background noise (repeatable).", show_default=False)] = None,
    objective: Annotated[str, typer.Option(help="contrastive (clean vs degraded views, NT-Xent: the default model's), similarity (SupCon on labelled sounds, one sub-folder per kind: the similar space), distill (reproduce a teacher's vectors, --teacher-vectors), cbow (Audio2Vec context prediction) or autoencoder (the seed baseline).")] = "contrastive",
    epochs: Annotated[int, typer.Option(min=1, help="Passes of --steps batches each.")] = 30,
    steps: Annotated[int, typer.Option(min=1, help="Batches per epoch.")] = 300,
    batch_size: Annotated[int, typer.Option(min=2, help="Windows (contrastive: pairs) per batch.")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed (data sampling and initial weights).")] = 0,
    init: Annotated[Optional[str], typer.Option(help="Start from this model folder ('default' = bundled) to fine-tune.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from the checkpoint in --out.")] = False,
    teacher_vectors: Annotated[Optional[Path], typer.Option("--teacher-vectors", help="distill: folder of a teacher's window vectors (teacher/aisfx_teacher.py).", show_default=False)] = None,
    supcon_weight: Annotated[float, typer.Option("--supcon-weight", min=0.0, help="distill: weight of SupCon on folder labels added to the distillation loss.")] = 0.0,
    relation_weight: Annotated[float, typer.Option("--relation-weight", min=0.0, help="distill: weight of the similarity-matrix term.")] = 1.0,
    whiten: Annotated[bool, typer.Option("--whiten/--no-whiten", help="distill: whiten the teacher's PCA (each axis to unit variance) before normalising.")] = False,
    band_shift: Annotated[int, typer.Option("--band-shift", min=0, help="distill: shift the student's view by up to this many mel bands (half of the windows); the teacher read it unshifted.")] = 0,
) -> None:
    """Train an Audio2Vec model on your own audio (log-mel windows; objective chosen by --objective).

    Writes a model folder usable with --model. Checkpoints are kept in OUT/checkpoints until the
    run finishes, so --resume continues an interrupted run.
    """
    from .audio2vec.train import TrainConfig, train as run_training
    from .errors import Audio2VecError

    cfg = TrainConfig(
        objective=objective, epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, seed=seed,
        teacher_vectors=str(teacher_vectors) if teacher_vectors is not None else None,
        distill_supcon_weight=supcon_weight, distill_relation_weight=relation_weight, distill_whiten=whiten, distill_band_shift=band_shift,
    )
    try:
        run_training(paths, out=out, noise_paths=noise or [], config=cfg, init=init, resume=resume, verbose=1 if sys.stderr.isatty() else 2)
    except Audio2VecError as exc:
        raise _fail(exc)


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Another than loopback needs serve_token (config) set.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8000,
    config: ConfigOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Serve the index over HTTP: the search page at http://HOST:PORT/ and a JSON API.

    Models are loaded once; the index is only read, so `audio2vec index` can go on adding files
    meanwhile and each of its commits is seen by the next query. Endpoints: GET /health;
    POST /query (multipart field `clip`; ?k=&mode=match|similar) answers with the object of one
    `query --json` line; GET /similar?path=&k=; GET /files?under=&limit=&offset=; GET /files/ID;
    GET /files/ID/audio?start=&end= (a passage as WAV). Errors are 4xx with {"error": "..."}.
    Uploads over max_upload_mb (config) are refused (413). With serve_token set, every request
    must carry it (Authorization: Bearer TOKEN, or ?token=TOKEN).
    """
    from .errors import Audio2VecError
    from .service import serve as run_server

    try:
        settings = _settings(index, config, catalog_url=catalog_url)
        _err(f"serving {settings.index_dir} on http://{host}:{port}/ (Ctrl-C stops)")
        run_server(settings, host=host, port=port)
    except Audio2VecError as exc:
        raise _fail(exc)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
