"""Filters on the catalog's files: ``--where "genre=Drums"``, ``--where "duration<2"``, ``--under FOLDER``.

A :class:`Filter` is a conjunction of conditions on a file's tags and properties (all must hold)
and, optionally, folders the file must lie in (any of them). :func:`select` turns it into the ids
of the files that pass, and a boolean mask over segment ids, which the FAISS search takes as an
id selector (:meth:`~search_engine.vectors.VectorIndex.search` ``allowed=``): the search only
ever returns passing vectors, so ``k`` results come back whenever ``k`` pass.

Fields (units in the names of the columns they read):

================  ==========================================  ==============================
field             what                                        operators
================  ==========================================  ==============================
title, artist,    tags read with mutagen; case-insensitive,   ``=``, ``!=`` (``*`` wildcard)
album, genre      a file without the tag is ``!=`` anything
label             ``audio2vec label``                         ``=``, ``!=`` (``*`` wildcard)
track             track number (the 3 of ``3/12``)            ``= != < <= > >=``
duration          length in seconds (``duration_s``)          ``= != < <= > >=``
rate              native sample rate in Hz                    ``= != < <= > >=``
channels          channel count                               ``= != < <= > >=``
================  ==========================================  ==============================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import and_, func, or_

from .catalog import File, FileBlocks, path_key
from .errors import ParameterError

#: field name -> (File column, kind); aliases map to the same column
FIELDS: dict[str, tuple[str, str]] = {
    "title": ("title", "text"),
    "artist": ("artist", "text"),
    "album": ("album", "text"),
    "genre": ("genre", "text"),
    "label": ("label", "text"),
    "track": ("track", "number"),
    "duration": ("duration_s", "number"),
    "duration_s": ("duration_s", "number"),
    "rate": ("sample_rate_hz", "number"),
    "sample_rate": ("sample_rate_hz", "number"),
    "sample_rate_hz": ("sample_rate_hz", "number"),
    "channels": ("channels", "number"),
}
OPERATORS = ("<=", ">=", "!=", "==", "=", "<", ">")
_CONDITION = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Condition:
    """``field op value``: one ``--where`` expression, parsed by :func:`parse_condition`."""

    field: str
    op: str
    value: Any

    def clause(self):
        """The SQLAlchemy condition on :class:`~search_engine.catalog.File`."""
        column_name, kind = FIELDS[self.field]
        col = getattr(File, column_name)
        if kind == "number":
            return {"=": col == self.value, "!=": col != self.value, "<": col < self.value, "<=": col <= self.value,
                    ">": col > self.value, ">=": col >= self.value}[self.op]
        value = str(self.value).lower()
        if "*" in value:
            pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            same = func.lower(col).like(pattern, escape="\\")
        else:
            same = func.lower(col) == value
        return same if self.op == "=" else or_(col.is_(None), ~same)

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


def parse_condition(text: str) -> Condition:
    """``"genre=Drums"`` -> ``Condition("genre", "=", "Drums")``; ``"duration<2"`` ->
    ``Condition("duration", "<", 2.0)``. Raises :class:`ParameterError` naming what is wrong."""
    m = _CONDITION.match(text or "")
    if not m:
        raise ParameterError(f"--where {text!r}: expected FIELD OP VALUE, e.g. \"genre=Drums\" or \"duration<2\" (OP one of = != < <= > >=)")
    name, op, raw = m.group(1).lower(), m.group(2), m.group(3)
    op = "=" if op == "==" else op
    if name not in FIELDS:
        raise ParameterError(f"--where {text!r}: unknown field {name!r}; known: {', '.join(sorted(FIELDS))}")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    kind = FIELDS[name][1]
    if kind == "number":
        try:
            value: Any = float(raw)
        except ValueError:
            raise ParameterError(f"--where {text!r}: {name} is a number, not {raw!r}") from None
        if not np.isfinite(value):
            raise ParameterError(f"--where {text!r}: {name} must be a finite number")
    else:
        if op not in ("=", "!="):
            raise ParameterError(f"--where {text!r}: {name} is text: use = or != (with * as a wildcard)")
        value = raw
    return Condition(name, op, value)


@dataclass(frozen=True)
class Filter:
    """Which files a search may return: every condition of ``where`` holds, and the file lies in
    one of the folders ``under`` (absolute, symlinks resolved; any folder when empty)."""

    where: tuple[Condition, ...] = ()
    under: tuple[str, ...] = ()

    @classmethod
    def parse(cls, where: str | Iterable[str] | None = None, under: str | Iterable | None = None) -> "Filter":
        """From ``--where`` expressions (one string or several) and ``--under`` folders."""
        if isinstance(where, str):
            where = [where]
        if isinstance(under, (str, bytes)) or hasattr(under, "__fspath__"):
            under = [under]
        return cls(tuple(parse_condition(w) for w in where or ()), tuple(path_key(u) for u in under or ()))

    def __bool__(self) -> bool:
        return bool(self.where or self.under)

    def clause(self):
        """The SQLAlchemy condition on :class:`~search_engine.catalog.File` of the whole filter."""
        parts = [c.clause() for c in self.where]
        if self.under:
            folders = []
            for prefix in self.under:
                folder = prefix.rstrip("/") + "/"
                folders.append((File.path == prefix) | (func.substr(File.path, 1, len(folder)) == folder))
            parts.append(or_(*folders))
        return and_(*parts)

    def __str__(self) -> str:
        return " and ".join([str(c) for c in self.where] + [f"under {u}" for u in self.under])


@dataclass(frozen=True)
class Selection:
    """The files a :class:`Filter` lets through, among those of one :class:`FileBlocks`."""

    #: sorted ids of the passing files
    file_ids: np.ndarray
    #: ``segments[i]``: segment id ``i`` belongs to a passing file
    segments: np.ndarray = field(repr=False)
    #: ``files[i]``: file id ``i`` passes
    files: np.ndarray = field(repr=False)

    @property
    def n_files(self) -> int:
        return len(self.file_ids)

    @property
    def n_segments(self) -> int:
        return int(np.count_nonzero(self.segments))


def select(catalog, blocks: FileBlocks, flt: Filter) -> Selection:
    """The files of ``blocks`` (the generation a search reads) that pass ``flt``, read from the
    catalog with one SELECT."""
    passing = catalog.file_ids_where(flt.clause())
    keep = np.isin(blocks.file_ids, passing)
    file_ids = np.sort(blocks.file_ids[keep])
    files = np.zeros(int(blocks.file_ids.max()) + 1 if len(blocks.file_ids) else 0, dtype=bool)
    files[file_ids] = True
    return Selection(file_ids, segment_mask(blocks, keep), files)


def segment_mask(blocks: FileBlocks, keep: np.ndarray) -> np.ndarray:
    """Boolean mask over segment ids: True inside the blocks of the rows where ``keep``."""
    end = int((blocks.first_ids + blocks.counts).max()) if len(blocks.first_ids) else 0
    edges = np.zeros(end + 1, dtype=np.int8)  # blocks never overlap: the running sum is 0 or 1
    np.add.at(edges, blocks.first_ids[keep], 1)
    np.add.at(edges, (blocks.first_ids + blocks.counts)[keep], -1)
    return np.cumsum(edges[:-1], dtype=np.int8) > 0


def file_tags(f: File) -> dict[str, Any]:
    """What a result shows of a file: its tags (title, artist, album, genre, track, and any other
    tag mutagen read, e.g. date), ``duration_s``, ``sample_rate_hz`` (native) and ``channels``."""
    out = {k: v for k, v in (f.tags or {}).items() if v not in (None, "")}
    for name in ("title", "artist", "album", "genre", "track"):
        value = getattr(f, name, None)
        if value is not None:
            out[name] = value
    out.update(duration_s=round(float(f.duration_s), 3), sample_rate_hz=int(f.sample_rate_hz), channels=int(f.channels))
    return out


def restrict(ids: np.ndarray, selection: Selection | None) -> np.ndarray:
    """Boolean mask over ``ids`` (file ids): those ``selection`` lets through (all without one)."""
    ids = np.asarray(ids, dtype=np.int64)
    if selection is None:
        return np.ones(len(ids), dtype=bool)
    ok = (ids >= 0) & (ids < len(selection.files))
    return ok & selection.files[np.where(ok, ids, 0)]


def as_filter(where: str | Sequence[str] | None = None, under=None, filter: Filter | None = None) -> Filter:
    """The :class:`Filter` of an API call's ``where``/``under`` arguments (or a ready ``filter``)."""
    if filter is not None:
        if where or under:
            raise ParameterError("give either filter or where/under, not both")
        return filter
    return Filter.parse(where, under)
