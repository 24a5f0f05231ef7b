"""Long queries: a recording of minutes (a DJ set, a radio capture) that plays several indexed
recordings one after another, answered with one result per recording it contains.

A clip longer than :data:`LONG_QUERY_S` is searched span by span, on the windows and k-NN hits the
whole clip already has (nothing is embedded or searched twice):

1. :func:`chunk_bounds`: chunks of :data:`CHUNK_S` seconds every :data:`STEP_S`; each is answered
   as a short clip is (votes, exact alignment, the model's calibrated claim decision).
2. :func:`chain_chunks`: runs of consecutive claimed chunks that name the same recording at the
   same alignment (the recording's offset minus the chunk's start agrees within
   :data:`ALIGN_TOLERANCE_S`) become candidate spans; a chunk claimed alone is dropped (a clip
   of no indexed recording is claimed rarely, two chunks in a row at one alignment hardly ever).
3. :func:`refine_span`: the span's ends are moved to where the clip stops lining up with the
   recording: the window distances under the span's alignment (one per segment hop), the
   stretch where ``threshold - distance`` sums highest. Spans of one recording that overlap
   (music that repeats: chunks named the other repeat) keep the longest.
4. The refined span is answered once more as a short clip; it is claimed when that answer's
   first recording is the span's and the decision claims it.

Times are in seconds unless a name says ``hops`` (query windows, ``segment_hop / phases`` apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: clips longer than this (seconds) are answered span by span; shorter ones as one clip
LONG_QUERY_S = 30.0
#: length of the chunks a long clip is first answered in (seconds)
CHUNK_S = 8.0
#: chunk starts are this far apart (seconds)
STEP_S = 2.0
#: chunks at one alignment differ by less than this in (recording offset - chunk start) (seconds)
ALIGN_TOLERANCE_S = 1.0
#: claimed chunks in a row that make a candidate span
MIN_CHUNKS = 2
#: window distance (embedding units) below which the clip lines up with the recording
LINE_UP_DISTANCE = 1.0


@dataclass(frozen=True)
class ChunkAnswer:
    """The first recording of one chunk's answer: chunk windows ``lo..hi`` (exclusive), recording
    row, where the clip's window 0 would lie in the recording (``origin_hops``: the chunk's offset
    minus ``lo``, query hops), and whether it is claimed."""

    lo: int
    hi: int
    row: int
    origin_hops: int
    matched: bool


@dataclass(frozen=True)
class Span:
    """A candidate span: clip windows ``lo..hi`` (exclusive) line up with recording ``row`` whose
    segment ``(origin_hops + i) / phases`` meets window ``i``."""

    lo: int
    hi: int
    row: int
    origin_hops: int


def chunk_bounds(n_windows: int, *, chunk: int, step: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` window ranges of ``chunk`` windows every ``step`` covering ``n_windows`` (the
    last one ends at the clip's end)."""
    if n_windows <= chunk:
        return [(0, n_windows)]
    starts = list(range(0, n_windows - chunk + 1, step))
    if starts[-1] + chunk < n_windows:
        starts.append(n_windows - chunk)
    return [(s, s + chunk) for s in starts]


def chain_chunks(chunks: list[ChunkAnswer], *, tolerance_hops: int, min_chunks: int = MIN_CHUNKS) -> list[Span]:
    """Candidate spans: runs of claimed chunks, each overlapping or touching the previous one,
    that name the same recording at origins within ``tolerance_hops`` of the run's first.

    ``chunks`` in order of their start. Returns spans from the first chunk's ``lo`` to the last
    one's ``hi`` with the run's median origin, for runs of ``min_chunks`` or more, in order.
    """
    spans: list[Span] = []
    open_runs: list[list[ChunkAnswer]] = []
    done: list[list[ChunkAnswer]] = []
    for c in chunks:
        if not c.matched:
            continue
        for run in open_runs:
            last = run[-1]
            if last.row == c.row and abs(c.origin_hops - run[0].origin_hops) <= tolerance_hops and c.lo <= last.hi:
                run.append(c)
                break
        else:
            open_runs.append([c])
        still = []
        for run in open_runs:
            (still if run[-1].hi >= c.lo else done).append(run)
        open_runs = still
    for run in done + open_runs:
        if len(run) >= min_chunks:
            spans.append(Span(run[0].lo, run[-1].hi, run[0].row, int(np.median([c.origin_hops for c in run]))))
    return sorted(spans, key=lambda s: (s.lo, s.hi))


def line_up_distances(q: np.ndarray, segments: np.ndarray, origin_hops: int, *, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances between the clip's windows and the recording's segments under one alignment.

    Parameters
    ----------
    q : np.ndarray [shape=(n_windows, dim)]
        The clip's window vectors (one every query hop).
    segments : np.ndarray [shape=(n_segments, dim)]
        The recording's segment vectors.
    origin_hops : int
        Window ``i`` meets segment ``(origin_hops + i) / phases`` (when a whole number).
    phases : int
        Query windows per segment hop.

    Returns
    -------
    ``(windows, distances)``: the windows that meet a segment exactly (one per segment hop)
    and their Euclidean distance to it (embedding units).
    """
    i = np.arange(len(q))
    aligned = i[(origin_hops + i) % phases == 0]
    seg = (origin_hops + aligned) // phases
    ok = (seg >= 0) & (seg < len(segments))
    aligned, seg = aligned[ok], seg[ok]
    return aligned, np.linalg.norm(q[aligned] - segments[seg], axis=1)


def refine_span(windows: np.ndarray, distances: np.ndarray, lo: int, hi: int, *, reach: int, threshold: float = LINE_UP_DISTANCE) -> tuple[int, int] | None:
    """The ends of a span: the stretch of aligned windows within ``reach`` windows of ``lo..hi``
    where ``threshold - distance`` sums highest (maximum-sum subarray), as ``(lo, hi)`` windows
    (exclusive end: one segment hop after the last window that lines up); None when nothing
    lines up.

    ``windows``, ``distances``: :func:`line_up_distances`.
    """
    keep = (windows >= lo - reach) & (windows < hi + reach)
    w, d = windows[keep], distances[keep]
    if len(w) == 0:
        return None
    from .duplicates import max_sum_stretch

    score = threshold - d
    best_lo, best_hi = max_sum_stretch(score)
    if score[best_lo : best_hi + 1].sum() <= 0:
        return None
    step = int(np.median(np.diff(w))) if len(w) > 1 else 1
    return int(w[best_lo]), int(w[best_hi]) + step


def match_long(
    n_windows: int,
    answer,
    segments,
    row_of,
    *,
    q: np.ndarray,
    phases: int,
    hop_s: float,
    window_s: float,
) -> tuple[list, list[dict]]:
    """The recordings a long clip contains, one result per span, in the clip's order.

    Parameters
    ----------
    n_windows : int
        The clip's windows (one every ``hop_s``).
    answer : callable(lo, hi) -> (list of Match, list of dict)
        The decided answer of the clip's windows ``lo..hi`` as a short clip (matches nearest
        first, ``matched`` and ``confidence`` set, and their claim features).
    segments : callable(row) -> np.ndarray [n_segments, dim]
        A recording's segment vectors.
    row_of : callable(file_id) -> int
        The row of a recording (as ``Span.row``).
    q : np.ndarray [shape=(n_windows, dim)]
        The clip's window vectors.
    phases, hop_s, window_s
        Query windows per segment hop, seconds per query window hop, seconds per window.

    Returns
    -------
    ``(matches, features)``: one :class:`~search_engine.query.Match` per claimed span, with
    ``query_start_s`` and ``query_end_s`` set and ``offset_s`` where the span starts in the
    recording, ranked in the clip's order, and each one's claim features. Empty when no span is
    claimed.
    """
    import dataclasses

    chunk = max(phases, int(round((CHUNK_S - window_s) / hop_s)) + 1)
    step = max(1, int(round(STEP_S / hop_s)))
    answers = []
    for lo, hi in chunk_bounds(n_windows, chunk=chunk, step=step):
        matches, _ = answer(lo, hi)
        if matches:
            m = matches[0]
            answers.append(ChunkAnswer(lo, hi, row_of(m.file_id), int(round(m.offset_s / hop_s)) - lo, bool(m.matched)))
    spans = chain_chunks(answers, tolerance_hops=int(round(ALIGN_TOLERANCE_S / hop_s)))
    found = []
    for span in spans:
        w, d = line_up_distances(q, segments(span.row), span.origin_hops, phases=phases)
        # the whole clip is in reach: chunks may have named a repeat of the same music (a tune
        # played twice in the recording) for part of the span; its own alignment lines up all of it
        ends = refine_span(w, d, span.lo, span.hi, reach=n_windows)
        if ends is None:
            continue
        lo, hi = ends
        hi = min(n_windows, hi)
        if hi - lo < phases:
            continue
        matches, features = answer(lo, hi)
        if not matches or row_of(matches[0].file_id) != span.row or not matches[0].matched:
            continue
        m = dataclasses.replace(matches[0], offset_s=round((span.origin_hops + lo) * hop_s, 3))
        found.append((lo, hi, m, features[0]))
    # spans may overlap in a crossfade (two excerpts of one recording back to back, too); one
    # recording at two alignments over the same stretch is one span found twice (a repeat of the
    # same music): keep the longer
    found.sort(key=lambda x: (-(x[1] - x[0]), -(x[2].confidence or 0.0)))
    kept: list = []
    for lo, hi, m, f in found:
        if any(m.file_id == k[2].file_id and min(hi, k[1]) - max(lo, k[0]) > 0.5 * (hi - lo) for k in kept):
            continue
        kept.append((lo, hi, m, f))
    kept.sort(key=lambda x: x[0])
    out = []
    for rank, (lo, hi, m, f) in enumerate(kept, 1):
        end_s = min((hi - 1) * hop_s + window_s, (n_windows - 1) * hop_s + window_s)
        out.append(dataclasses.replace(m, rank=rank, query_start_s=round(lo * hop_s, 3), query_end_s=round(end_s, 3)))
    return out, [f for *_, f in kept]
