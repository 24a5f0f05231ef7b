"""Export Audio2Vec vectors of audio files to ``.npy`` or ``.parquet`` (``audio2vec embed``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .audio import find_audio_files, load
from .catalog import path_key
from .errors import DecodeError, ParameterError
from .progress import OnProgress


def embed_files(
    paths: Iterable[str | os.PathLike],
    *,
    model: str = "default",
    per_window: bool = False,
    hop_s: float = 0.512,
    on_progress: OnProgress | None = None,
    on_error: Callable[[str], None] | None = None,
) -> tuple[dict, int]:
    """Vectors of every audio file under ``paths``, in walk order.

    Parameters
    ----------
    per_window : bool
        One row per window (every ``hop_s`` seconds, rounded to whole frames: as an index's
        segments every ``segment_hop_s``), or
        one whole-sound row per file (``start_s`` 0): :meth:`Encoder.whole`, the vector an index
        stores for ``similar``.
    on_progress : callable(done, total, path), optional
        Called after each file (:mod:`search_engine.progress`).
    on_error : callable(message), optional
        Called once per file that cannot be read.

    Returns
    -------
    table : dict
        ``{"path": [str], "start_s": float64 [n], "vector": float32 [n, dim]}``, paths absolute.
    failed : int
        Files that could not be read (each reported through ``on_error``).
    """
    from .audio2vec import Encoder
    from .audio2vec.encoder import spectrogram

    from .features import frames_for

    encoder = Encoder.load(model)
    hop_frames = frames_for(hop_s, encoder.features)
    files = list(dict.fromkeys(find_audio_files(paths)))
    names: list[str] = []
    starts_all, vectors = [], []
    failed = 0
    for done, path in enumerate(files, 1):
        try:
            y, _ = load(path, sr=encoder.features.sample_rate_hz)
            if per_window:
                e = encoder.embed(y, hop_frames=hop_frames, source=path)
                v, starts = e.vectors, e.starts_s
            else:
                v = encoder.whole(spectrogram(y, encoder.features, source=path), source=path)[None]
                starts = np.zeros(1)
        except DecodeError as exc:
            failed += 1
            if on_error:
                on_error(str(exc))
            continue
        finally:
            if on_progress is not None:
                on_progress(done, len(files), str(path))
        names += [path_key(path)] * len(v)
        starts_all.append(starts)
        vectors.append(v)
    return {
        "path": names,
        "start_s": np.concatenate(starts_all) if starts_all else np.empty(0),
        "vector": np.concatenate(vectors) if vectors else np.empty((0, encoder.dim if per_window else encoder.similar.dim), np.float32),
    }, failed


def write_embeddings(table: dict, out: str | os.PathLike) -> None:
    """Write :func:`embed_files`' table atomically: ``.npy`` as a structured array with fields
    ``path``, ``start_s`` and ``vector``; ``.parquet`` with the same three columns."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    vec = np.asarray(table["vector"], dtype=np.float32)
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ParameterError(f"{out}: writing .parquet needs pyarrow: pip install 'audio2vec[parquet]' (or write .npy)") from None

        column = pa.FixedSizeListArray.from_arrays(pa.array(vec.reshape(-1)), vec.shape[1])
        pq.write_table(pa.table({"path": table["path"], "start_s": table["start_s"], "vector": column}), tmp)
    else:
        width = max((len(p) for p in table["path"]), default=1)
        rows = np.empty(len(vec), dtype=[("path", f"U{width}"), ("start_s", "f8"), ("vector", "f4", (vec.shape[1],))])
        rows["path"], rows["start_s"], rows["vector"] = table["path"], table["start_s"], vec
        with open(tmp, "wb") as f:
            np.save(f, rows)
    os.replace(tmp, out)
