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

from .progress import progress_bar

EXIT_ERROR, EXIT_PARTIAL = 1, 3

app = typer.Typer(
    name="audio2vec",
    help="Search engine for sound: index a library of recordings, then query it by example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        print(f"audio2vec {version('audio2vec')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Search engine for sound: index a library of recordings, then query it by example."""


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
AudioPathsArg = Annotated[
    list[Path],
    typer.Argument(help="Audio files and folders (searched recursively; hidden files and folders inside them are skipped).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output: one JSON object per line on stdout.")]
WhereOpt = Annotated[
    Optional[list[str]],
    typer.Option("--where", help="Only recordings where FIELD OP VALUE holds, e.g. \"genre=Drums\", \"duration<2\" (repeatable: all must hold). "
                 "Fields: title artist album genre label (= != , * wildcard, any case), track duration rate channels (= != < <= > >=).", show_default=False),
]
UnderOpt = Annotated[
    Optional[list[Path]], typer.Option("--under", help="Only recordings in this folder (repeatable: any of them).", show_default=False)
]
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
    paths: AudioPathsArg,
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
            indexer = Indexer(engine, workers=engine.settings.workers, client=client, on_error=lambda path, msg: _err(f"error: {msg}"))
            with progress_bar(progress, "indexing") as on_progress:
                report = indexer.add(paths, prune=prune, on_progress=on_progress)
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
    where: WhereOpt = None,
    under: UnderOpt = None,
) -> None:
    """Find the recordings nearest to each CLIP, ranked by Euclidean distance (smaller is nearer).

    With --json, stdout gets exactly one line per clip, in the order given:
    {"query": CLIP, "matched": true, "confidence": 0.99, "results": [{"rank": 1, "path": ..., "distance": ..., "offset_s": ..., "speed": 1.0, "matched": true, "confidence": 0.99}, ...]}
    and a clip that cannot be read gets {"query": CLIP, "results": [], "error": "..."}.
    offset_s is where in the recording the clip starts (seconds); speed (match mode) how fast the
    clip plays against the recording (1.05: 5 % faster; 1 for clips under about 3.5 s, too short
    for a tempo change to show). A clip over 30 s that plays
    several indexed recordings gets one result per recording, in the clip's order, each with
    query_start_s and query_end_s (the span of the clip in it; offset_s is where that span
    starts in the recording). matched (match mode): the clip is in that recording (the model's
    fitted decision at the operating point for the clip's length: at most 1 % of the fit data's
    clips from no indexed recording claimed; stricter where `audio2vec calibrate` was run on this
    index; the first match is checked against the recording's own audio, read back from its file:
    `verify` in config); confidence: the probability of that (0..1; null for a model without a fitted
    decision); "matched": false at the top means the clip is in no indexed recording (the nearest
    are still listed). Each result's "tags": the recording's tags (title, artist, album, genre,
    track, ...), duration_s, sample_rate_hz, channels. --where and --under search only the
    recordings that pass (k come back when k pass). Exit code 3 if some clip failed.
    """
    with _engine(index, config, model=model, catalog_url=catalog_url) as engine:
        results = engine.query_batch(clips, k=k, mode=mode.value if mode else None, where=where, under=under)
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
    spans = any(m.query_start_s is not None for m in res.matches)  # a long clip: where in it
    columns = ((("in clip", "right"),) if spans else ()) + (("rank", "right"), ("distance", "right")) \
        + ((("confidence", "right"),) if confident else ()) + (("offset", "right"), ("recording", "left"))
    room = max(24, console.width - 12 * len(columns) - 4)  # what the path column has left
    tags = [_tag_line(m.tags) for m in res.matches]
    tag_room = min(max(map(len, tags), default=0), room // 3) if room >= 60 else 0  # a narrow terminal: no tags column
    if tag_room:
        columns += (("tags", "left"),)
        room -= tag_room + 3
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=True)
    for m, tag in zip(res.matches, tags):
        conf = (f"{m.confidence:.3f}" + (" *" if m.matched else ""),) if confident else ()
        tag = (tag if len(tag) <= tag_room else tag[: tag_room - 1] + "…",) if tag_room else ()
        span = (f"{_clock(m.query_start_s)}-{_clock(m.query_end_s)}",) if spans else ()
        offset = _clock(m.offset_s) + (f" ×{m.speed:.2f}" if m.matched and abs(m.speed - 1) >= 0.005 else "")  # a speed means something only for a match
        table.add_row(*span, str(m.rank), f"{m.distance:.4f}", *conf, offset, _tail(one_line(m.path), room), *tag)
    if not res.matches:
        table.add_row(*["-"] * (len(columns) - 1), "(index is empty)")
    console.print(table)


def _tail(text: str, width: int) -> str:
    """``text`` cut from the left to ``width`` characters: a long path keeps its file name."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _tag_line(tags: dict | None) -> str:
    """A result's tags in a table cell: ``artist - title (album #track) genre, 2:05, 44.1 kHz stereo``."""
    from .errors import one_line

    if not tags:
        return ""
    t = tags
    name = " - ".join(str(t[k]) for k in ("artist", "title") if t.get(k))
    where = " ".join(x for x in (str(t["album"]) if t.get("album") else "", f"#{t['track']}" if t.get("track") else "") if x)
    parts = [p for p in (name, f"({where})" if where else "", str(t["genre"]) if t.get("genre") else "") if p]
    channels = {1: "mono", 2: "stereo"}.get(t.get("channels"), f"{t.get('channels')} ch")
    props = f"{_clock(t.get('duration_s'))}, {t.get('sample_rate_hz', 0) / 1000:g} kHz {channels}"
    return one_line(" ".join(parts) + (", " if parts else "") + props)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(abs(seconds), 60)  # a clip may start before the recording does
    return f"{'-' if seconds < 0 else ''}{int(m)}:{s:05.2f}"


@app.command()
def remove(
    paths: Annotated[list[Path], typer.Argument(help="Files, or folders whose files should all be removed.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove every file under a folder without asking.")] = False,
    index: IndexOpt = None,
    config: ConfigOpt = None,
    catalog_url: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove files from the index: their catalog rows and vectors go together, in one step.

    A folder removes every indexed file under it: that asks first (or needs --yes when stdin is not
    a terminal). A path that is not indexed is an error (exit 3 when others were removed, else 1).
    """
    from .catalog import path_key

    missing = []
    with _engine(index, config, catalog_url=catalog_url) as engine:
        chosen = []
        for p in paths:
            files = engine.indexed_files(p)
            if not files:
                missing.append(p)
                _err(f"error: {p}: not in the index")
                continue
            if not (len(files) == 1 and files[0].path == path_key(p)) and not yes:
                question = f"remove all {len(files)} indexed files under {p}?"
                if not sys.stdin.isatty():
                    _err(f"error: {question} Add --yes to remove them without asking")
                    raise typer.Exit(EXIT_ERROR)
                if not typer.confirm(question, err=True):
                    raise typer.Exit(EXIT_ERROR)
            chosen.append(p)
        removed = engine.remove(chosen) if chosen else []
    if as_json:
        print(json.dumps({"removed": removed}))
    else:
        for p in removed:
            print(p)
    _err(f"removed {len(removed)} files")
    if missing:
        raise typer.Exit(EXIT_PARTIAL if removed else EXIT_ERROR)


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


@app.command()
def duplicates(
    index: IndexOpt = None,
    config: ConfigOpt = None,
    catalog_url: CatalogOpt = None,
    as_json: JsonOpt = False,
    min_overlap: Annotated[Optional[float], typer.Option("--min-overlap", min=1.0, help="Least shared span, in seconds (default 10).", show_default=False)] = None,
) -> None:
    """Find indexed recordings that hold the same audio: transcodes, resamples, trims, one contained
    in another, a copy with another intro, a copy a few percent faster. Works on the stored
    vectors (nothing is decoded). Pieces that merely sound alike are not duplicates.

    With --json, one line per group: {"files": [{"path": ..., "start_s": ..., "end_s": ...}, ...]},
    each file with the span (seconds) it shares with the others, longest first.
    """
    with _engine(index, config, catalog_url=catalog_url) as engine:
        groups = engine.duplicates(min_overlap_s=min_overlap)
    for g in groups:
        if as_json:
            print(json.dumps(g.as_dict()), flush=True)
        else:
            print("\n".join(f"{_clock(f['start_s'])}-{_clock(f['end_s'])}  {f['path']}" for f in g.files) + "\n")
    if not as_json:
        _err(f"{len(groups)} groups of recordings holding the same audio")


@contextmanager
def _dask_client(scheduler: str | None, workers: int | None):
    """A Dask client for ``--scheduler`` (an address, or ``local`` for a LocalCluster), else None."""
    if scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        _err("error: --scheduler needs Dask's distributed package: pip install 'audio2vec[dask]'")
        raise typer.Exit(EXIT_ERROR) from None

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
    if settings.catalog_url or (settings.index_dir / "catalog.sqlite").exists():
        with _engine(index, config, model=model) as engine:
            yield engine
        return
    with tempfile.TemporaryDirectory(prefix="audio2vec-") as tmp, _engine(tmp, config, create=True, model=model) as engine:
        yield engine


@app.command()
def calibrate(
    index: IndexOpt = None,
    target: Annotated[float, typer.Option("--target", min=0.0001, max=0.5, help="Largest share of clips from no indexed recording that may be claimed.")] = 0.01,
    clips: Annotated[int, typer.Option("--clips", min=50, help="Backwards clips queried per clip length.")] = 1000,
    lengths: Annotated[Optional[list[float]], typer.Option("--length", min=0.5, help="Clip length to calibrate (seconds; repeat). Default: 1, 3 and 10.", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the clips.")] = 0,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal).", show_default=False)] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    catalog_url: CatalogOpt = None,
) -> None:
    """Fit the match claims to this index: play clips of its own recordings backwards and four
    semitones higher or lower (clips of no indexed recording that sound like the library), query them, and raise the confidence a claim
    needs, per clip length, until at most TARGET of them are claimed (never below the model's own
    operating point). Stored in the index (calibration.json) and used by every later query; run it
    again after the library has grown a lot. Prints, per length, the clips, the confidence needed,
    how many were still claimed and the 95 % upper bound of that rate.
    """
    from .calibration import LENGTHS

    with _engine(index, config, catalog_url=catalog_url) as engine, progress_bar(progress, "calibrating claims") as on_progress:
        result = engine.calibrate(target=target, clips=clips, lengths=tuple(lengths or LENGTHS), seed=seed, on_progress=on_progress)
    if as_json:
        print(json.dumps(result.as_dict()))
        return
    print(f"library {result.files} files, {result.library_hours:.2f} h; target: at most {result.target:.2%} of outsider clips claimed")
    for c in result.lengths:
        print(f"{c.seconds:g} s: {c.clips} backwards clips; confidence needed {c.threshold:.4f} (model: {c.model_threshold:.4f}); "
              f"claimed {c.claimed} ({c.claimed / max(1, c.clips):.2%}, 95 % upper bound {c.upper95:.2%})")


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
    paths: AudioPathsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .npy (structured array) or .parquet.", show_default=False)],
    per_window: Annotated[bool, typer.Option("--per-window/--per-file", help="One row per window (every segment_hop_s), or one pooled row per file.")] = False,
    model: Annotated[str, typer.Option("--model", help="Audio2Vec model folder, or 'default'.")] = "default",
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: when stderr is a terminal).", show_default=False)] = None,
    config: ConfigOpt = None,
) -> None:
    """Write Audio2Vec vectors of audio files: rows of (path, start_s, vector), in file order.

    --per-file (default) pools each file into its whole-sound vector (start_s 0), the vector
    `query --mode similar` compares; --per-window writes every window vector (the `match` ones),
    one every `segment_hop_s` of the settings, as an index stores them.
    A file that cannot be read is reported on stderr and left out (exit 3).
    """
    from .embedding import embed_files, write_embeddings
    from .errors import Audio2VecError

    if out.suffix not in (".npy", ".parquet"):
        raise typer.BadParameter("--out must end in .npy or .parquet", param_hint="--out")
    try:
        hop_s = _settings(None, config).segment_hop_s
        with progress_bar(progress, "embedding") as on_progress:
            table, failed = embed_files(paths, model=model, per_window=per_window, hop_s=hop_s, on_progress=on_progress, on_error=lambda m: _err(f"error: {m}"))
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

    Labels stay with a file when it is re-indexed or moved. A path that is not indexed is an error
    (exit 3 when others were labelled, else 1)."""
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
    done, missing = 0, 0
    with _engine(index, config, catalog_url=catalog_url) as engine:
        for path, value in rows:
            found = engine.label([path], value)
            if not found:
                missing += 1
                _err(f"error: {path}: not in the index")
            done += len(found)
    _err(f"labelled {done} files")
    if missing:
        raise typer.Exit(EXIT_PARTIAL if done else EXIT_ERROR)


@app.command()
def classify(
    clips: Annotated[list[str], typer.Argument(help="Audio clips to label.", show_default=False)],
    k: Annotated[Optional[int], typer.Option("-k", "--k", min=1, help="Labelled neighbours that vote (default: classify_k, 5).", show_default=False)] = None,
    index: IndexOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    catalog_url: CatalogOpt = None,
    as_json: JsonOpt = False,
    where: WhereOpt = None,
    under: UnderOpt = None,
) -> None:
    """Label each CLIP by its nearest labelled recordings (distance-weighted vote), with a
    confidence; "unknown" below min_confidence (config).

    With --json, one line per clip: {"query", "label", "confidence", "neighbours": [{"path",
    "label", "distance"}]} (and "error" for a clip that cannot be read; exit 3). --where and
    --under (as in query): only labelled recordings that pass vote.
    """
    with _engine(index, config, model=model, catalog_url=catalog_url) as engine:
        results = engine.classify(clips, k=k, where=where, under=under)
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
    noise: Annotated[Optional[list[Path]], typer.Option("--noise", help="Recordings mixed in as background noise (repeatable); one shorter than a window (about 1 s) is repeated to fill it.", show_default=False)] = None,
    objective: Annotated[str, typer.Option(help="contrastive (clean vs degraded views, NT-Xent: the default model's), similarity (SupCon on labelled sounds, one sub-folder per kind: the similar space), distill (reproduce a teacher's vectors, --teacher-vectors), cbow (Audio2Vec context prediction) or autoencoder (the seed baseline).")] = "contrastive",
    epochs: Annotated[int, typer.Option(min=1, help="Passes of --steps batches each.")] = 30,
    steps: Annotated[int, typer.Option(min=1, help="Batches per epoch.")] = 300,
    batch_size: Annotated[int, typer.Option(min=2, help="Windows (contrastive: pairs) per batch.")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed (data sampling and initial weights).")] = 0,
    learning_rate: Annotated[float, typer.Option("--learning-rate", min=1e-7, help="Adam's starting learning rate; it decays along a cosine to 5 % of itself by the last step (a fine-tune that should stay near its --init model wants less than the default).")] = 1e-3,
    init: Annotated[Optional[str], typer.Option(help="Start from this model folder ('default' = bundled) to fine-tune.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from the checkpoint in --out.")] = False,
    teacher_vectors: Annotated[Optional[Path], typer.Option("--teacher-vectors", help="distill: folder of a teacher's window vectors (teacher/aisfx_teacher.py).", show_default=False)] = None,
    supcon_weight: Annotated[float, typer.Option("--supcon-weight", min=0.0, help="distill: weight of SupCon on folder labels added to the distillation loss.")] = 0.0,
    relation_weight: Annotated[float, typer.Option("--relation-weight", min=0.0, help="distill: weight of the similarity-matrix term.")] = 1.0,
    whiten: Annotated[bool, typer.Option("--whiten/--no-whiten", help="distill: whiten the teacher's PCA (each axis to unit variance) before normalising.")] = False,
    band_shift: Annotated[int, typer.Option("--band-shift", min=0, help="distill: shift the student's view by up to this many mel bands (half of the windows); the teacher read it unshifted.")] = 0,
    view_sets: Annotated[int, typer.Option("--view-sets", min=1, help="contrastive: random sets of degraded views made per training file (more sets, more varied pairs; each costs about 1/20 of the audio's duration).")] = 1,
    varied_views: Annotated[bool, typer.Option("--varied-views", help="contrastive: wider damage (16-64 kbps MP3/AAC, longer rooms, 1-9 % speed and tempo) plus pitch-shifted and chained (speed, room, codec) views.")] = False,
    pair_snr: Annotated[tuple[float, float], typer.Option("--pair-snr", help="contrastive: SNR range in dB (LOW HIGH) of the noise mixed into the degraded views, measured on each 1 s window's mel power.")] = (0.0, 10.0),
    embedding_dim: Annotated[Optional[int], typer.Option("--embedding-dim", min=2, help="Numbers per vector of the model written (default: the --init model's, else 64). Another size than the --init model's keeps its encoder and starts the last projection afresh.", show_default=False)] = None,
    pitched_noise: Annotated[int, typer.Option("--pitched-noise", min=0, help="Add N synthetic pitched noise beds (hums, horns, squeals, beeps, drones at random pitches, 10 s each) to the noise; each is drawn as often as one noise file (with --noise-by-source they join the synthetic source).")] = 0,
    align_weight: Annotated[float, typer.Option("--align-weight", min=0.0, help="contrastive: add this weight times the squared distance between each degraded view and its clean window to the loss, so that damage moves vectors less in absolute distance, not only in rank (0: NT-Xent alone).")] = 0.0,
    windows_per_track: Annotated[int, typer.Option("--windows-per-track", min=1, help="contrastive: anchors per track in a batch: K non-overlapping windows of each of batch/K tracks, so other passages of the same piece (same sound, other notes) are among the negatives (1: every window from a random track).")] = 1,
    views_cache: Annotated[Optional[Path], typer.Option("--views-cache", help="contrastive: keep each training file's degraded views in this folder and reuse them in later runs with the same files, --seed and view settings (making them is most of a short fine-tune's time). Without it they are kept in OUT/checkpoints until the run finishes, so --resume skips them.", show_default=False)] = None,
    noise_by_source: Annotated[bool, typer.Option("--noise-by-source", help="Draw noise source by source: each --noise path, and the synthetic noises, equally often (by default every file is equally likely, so a folder of many short files crowds out the rest).")] = False,
) -> None:
    """Train an Audio2Vec model on your own audio (log-mel windows; objective chosen by --objective).

    Writes a model folder usable with --model. Checkpoints are kept in OUT/checkpoints until the
    run finishes, so --resume continues an interrupted run.
    """
    from .audio2vec.train import TrainConfig, train as run_training
    from .errors import Audio2VecError

    cfg = TrainConfig(
        objective=objective, epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, seed=seed, learning_rate=learning_rate,
        teacher_vectors=str(teacher_vectors) if teacher_vectors is not None else None,
        distill_supcon_weight=supcon_weight, distill_relation_weight=relation_weight, distill_whiten=whiten, distill_band_shift=band_shift,
        view_sets=view_sets, varied_views=varied_views, noise_by_source=noise_by_source, pair_snr_db=tuple(pair_snr), pitched_noise=pitched_noise,
        align_weight=align_weight, windows_per_track=windows_per_track,
        embedding_dim=embedding_dim,
    )
    try:
        run_training(paths, out=out, noise_paths=noise or [], config=cfg, init=init, resume=resume, verbose=1 if sys.stderr.isatty() else 2, log=_err,
                     views_cache=views_cache)
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
