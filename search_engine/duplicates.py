"""Duplicates: which indexed recordings hold the same audio, found from their stored segment vectors.

A copy of a recording (another codec or bit rate, another sample rate, trimmed, cut out of a longer
one, with another intro, a few percent faster) has segments whose vectors lie near the original's,
and the segments that match lie on one straight line in (segment of A, segment of B): the time
offset between the two files, with a slope of about 1 (``1 ± max_rate_change`` for a faster or
slower copy). Recordings that merely sound alike (same instrument, same style) have near segments
too, but scattered: no long, dense line of them.

The steps, all on arrays (nothing is decoded):

1. :func:`pair_hits`: each segment's nearest segments in *other* recordings (a k-NN search of the
   index), kept when nearer than ``max_distance``, as ``(file A, segment i, file B, segment j)``.
2. :func:`best_diagonal`: per pair of recordings with enough hits, the line ``j = slope * i +
   intercept`` most hits agree with (a Hough vote over slopes and intercepts, then a least squares
   fit to the hits near it).
3. :func:`line_hits`, :func:`verify_run`: every segment of A against every segment of B: a
   segment of A *hits* when B's segment on the line is among its few nearest in B (or very near);
   the stretch where hits outnumber misses most is the shared span, kept when it lasts
   ``min_overlap_s`` or more with ``min_coverage`` of hits.
4. :func:`group_pairs`: recordings joined by shared spans, grouped (union-find).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: a copy may be this much faster or slower than the original (share: 0.08 = ±8 %)
MAX_RATE_CHANGE = 0.08
#: segment vectors nearer than this (Euclidean, embedding units) count as the same audio
MAX_DISTANCE = 0.75
#: ... and so does a segment of B among the ``RANK`` nearest to a segment of A (see :func:`line_hits`)
RANK = 3
#: a miss costs this many hits in a shared span (:func:`verify_run`): a span holds at least
#: ``MISS_WEIGHT / (1 + MISS_WEIGHT)`` of hits (a copy half a segment hop off the original's grid
#: meets it on about half of its segments)
MISS_WEIGHT = 0.5
#: neighbours of a segment that nominate pairs are kept up to this distance
HIT_DISTANCE = 1.2
#: share of the segments of a shared span that must meet their counterpart (:func:`line_hits`)
MIN_COVERAGE = 0.45
#: median distance (embedding units) of a shared span's segments to their counterparts, at most:
#: copies on the original's segment grid measure 0.1-0.4, copies half a segment hop off it
#: 0.8-1.1; the best line of two different pieces 1.16 and more (benchmark's dev split, first
#: match model); two unrelated segments about 1.4. With the second model two different reels
#: measure 0.99, among the off-grid copies (``benchmarks/duplicates.py --candidate-runs``)
MAX_MEDIAN_DISTANCE = 1.12
#: a segment this near to its own segments 1 s before or after is a sound that stands still
#: (:func:`self_distances`); in music they measure about 1.1-1.3
STILL_DISTANCE = 0.9
#: least length of a shared span (seconds)
MIN_OVERLAP_S = 10.0


@dataclass(frozen=True)
class Run:
    """A shared span of two recordings (rows ``a`` < ``b`` into the file table), in segments:
    segments ``i0..i1`` of ``a`` hold the audio of ``b`` at ``j = slope * i + intercept``."""

    a: int
    b: int
    i0: int
    i1: int
    slope: float
    intercept: float
    #: share of segments ``i0..i1`` that meet their counterpart in ``b`` (:func:`line_hits`)
    coverage: float
    #: median distance of those segments to their counterparts (the nearer of B's two segments
    #: around the line; embedding units)
    distance: float

    @property
    def j0(self) -> float:
        return min(self.slope * self.i0, self.slope * self.i1) + self.intercept

    @property
    def j1(self) -> float:
        return max(self.slope * self.i0, self.slope * self.i1) + self.intercept


@dataclass
class DuplicateGroup:
    """Recordings that hold the same audio: per file ``{"path", "start_s", "end_s"}``, the span
    (seconds) it shares with the others, longest span first."""

    files: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """``{"files": [{"path", "start_s", "end_s"}, ...]}``, as ``audio2vec duplicates --json`` prints it."""
        return {"files": [dict(f) for f in self.files]}


def pair_hits(
    rows: np.ndarray, within: np.ndarray, dist: np.ndarray, query_rows: np.ndarray, query_within: np.ndarray, *, max_distance: float
) -> np.ndarray:
    """Near segments of different recordings, as ``[m, 4]`` int64 rows ``(a, i, b, j)`` with ``a < b``.

    Parameters
    ----------
    rows, within : np.ndarray [shape=(n, k), int]
        For each of ``n`` query segments, its ``k`` nearest segments: recording row (-1: none) and
        segment index within the recording.
    dist : np.ndarray [shape=(n, k), float]
        Their Euclidean distances.
    query_rows, query_within : np.ndarray [shape=(n,), int]
        Recording row and segment index of each query segment.
    max_distance : float
        Farther neighbours are dropped.

    Returns
    -------
    Unique ``(a, i, b, j)``: segment ``i`` of recording ``a`` is near segment ``j`` of ``b``;
    each pair of recordings is written with the smaller row first, whichever of the two asked.
    """
    a = np.broadcast_to(np.asarray(query_rows)[:, None], rows.shape)
    i = np.broadcast_to(np.asarray(query_within)[:, None], rows.shape)
    ok = (rows >= 0) & (rows != a) & np.isfinite(dist) & (dist <= max_distance)
    a, i, b, j = a[ok], i[ok], rows[ok], within[ok]
    swap = a > b
    hits = np.stack([np.where(swap, b, a), np.where(swap, j, i), np.where(swap, a, b), np.where(swap, i, j)], axis=1).astype(np.int64)
    return np.unique(hits, axis=0) if len(hits) else hits.reshape(0, 4)


def best_diagonal(i: np.ndarray, j: np.ndarray, *, max_rate_change: float = MAX_RATE_CHANGE, tolerance: float = 1.5) -> tuple[float, float, int]:
    """The straight line ``j = slope * i + intercept`` (segments) that most hits lie on.

    Parameters
    ----------
    i, j : np.ndarray [shape=(m,), int]
        Segment of recording A and segment of recording B of each hit (:func:`pair_hits`).
    max_rate_change : float
        The slope is within ``1 ± max_rate_change`` (a copy played that much faster or slower).
    tolerance : float
        A hit is on the line when within this many segments of it.

    Returns
    -------
    ``(slope, intercept, hits on the line)``; each segment ``i`` counts once.
    """
    i = np.asarray(i, dtype=np.float64)
    j = np.asarray(j, dtype=np.float64)
    if len(i) == 0:
        return 1.0, 0.0, 0
    span = max(float(np.ptp(i)), 1.0)
    # slopes close enough that a line of the grid stays within one segment over the hits' span
    n = int(np.clip(np.ceil(2 * max_rate_change * span), 1, 160))
    slopes = np.linspace(1 - max_rate_change, 1 + max_rate_change, 2 * (n // 2) + 1)
    inter = np.round(j[None, :] - slopes[:, None] * i[None, :]).astype(np.int64)  # [S, m]
    # one vote per (slope, intercept, segment i): many neighbours of one segment are one hit;
    # (slope, intercept, i) packed into one int64 key (np.unique on rows is slow)
    ii = i.astype(np.int64)
    lo, width = int(inter.min()), int(inter.max() - inter.min()) + 2
    n_i = int(ii.max()) + 1
    keys = np.unique(((np.arange(len(slopes))[:, None] * width + (inter - lo)) * n_i + ii[None, :]).ravel())
    cells, votes = np.unique(keys // n_i, return_counts=True)  # cell = slope * width + intercept - lo
    # pool neighbouring intercepts (a copy whose segments fall between the original's); a cell's
    # neighbour of the next slope is never adjacent, as each slope's band has a spare intercept
    adjacent = cells[1:] == cells[:-1] + 1
    pooled = votes.copy()
    pooled[1:] += np.where(adjacent, votes[:-1], 0)
    pooled[:-1] += np.where(adjacent, votes[1:], 0)
    cells = np.stack([cells // width, cells % width + lo], axis=1)
    # prefer slope 1 among ties (most copies are not faster)
    best = int(np.lexsort((np.abs(slopes[cells[:, 0]] - 1.0), -pooled))[0])
    slope, intercept = float(slopes[cells[best, 0]]), float(cells[best, 1])
    for _ in range(3):  # least squares on the hits near the line, then again with the better line
        near = np.abs(j - (slope * i + intercept)) <= tolerance + 1
        if near.sum() < 2 or np.ptp(i[near]) < 4:
            break
        s, c = np.polyfit(i[near], j[near], 1)
        if abs(s - 1) > max_rate_change:
            break
        slope, intercept = float(s), float(c)
    on = np.abs(j - (slope * i + intercept)) <= tolerance
    return slope, intercept, int(len(np.unique(i[on])))


def pair_distances(va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """Euclidean distances between every segment of A and every segment of B.

    ``va [n_a, dim]``, ``vb [n_b, dim]`` -> ``[n_a, n_b]`` float32 (embedding units).
    """
    va, vb = np.asarray(va, dtype=np.float32), np.asarray(vb, dtype=np.float32)
    sq = (va**2).sum(1)[:, None] + (vb**2).sum(1)[None, :] - 2 * va @ vb.T
    return np.sqrt(np.maximum(sq, 0.0))


def self_distances(va: np.ndarray, *, apart: int = 2) -> np.ndarray:
    """How far each segment of a recording is from its own segments ``apart`` hops before and
    after (the nearer of the two; ``inf`` with neither): small where the sound stands still (a
    held chord, silence), where a segment tells nothing of where in the recording it is.
    ``[n, dim] -> [n]`` (embedding units)."""
    va = np.asarray(va, dtype=np.float32)
    out = np.full(len(va), np.inf)
    if len(va) > apart:
        d = np.linalg.norm(va[apart:] - va[:-apart], axis=1)
        out[apart:] = d
        out[:-apart] = np.minimum(out[:-apart], d)
    return out


def line_hits(
    dist: np.ndarray, slope: float, intercept: float, *, rank: int = RANK, max_distance: float = MAX_DISTANCE, still: np.ndarray | None = None
) -> np.ndarray:
    """Which segments of A meet their counterpart in B on the line ``j = slope * i + intercept``.

    A segment ``i`` meets it when one of B's two segments around ``j`` is among the ``rank``
    segments of B nearest to it, or nearer than ``max_distance``: the stored segments of a copy
    that starts between two of the original's (up to half a segment hop off) are farther from
    them than a copy's on the same grid, yet still nearer than the rest of B. Outside B: no.
    With ``still`` (:func:`self_distances`), a segment where the sound stands still (``still[i]``
    below :data:`STILL_DISTANCE`: a held chord, silence) meets it only when nearer than half
    ``still[i]``: such a segment is near to any other held chord, anywhere, and proves nothing.

    Parameters
    ----------
    dist : np.ndarray [shape=(n_a, n_b)]
        :func:`pair_distances`.
    still : np.ndarray [shape=(n_a,)], optional
        :func:`self_distances` of A.

    Returns
    -------
    np.ndarray [shape=(n_a,), bool]
    """
    n_a, n_b = dist.shape
    if n_a == 0 or n_b == 0:
        return np.zeros(n_a, dtype=bool)
    kth = np.partition(dist, min(rank, n_b) - 1, axis=1)[:, min(rank, n_b) - 1]
    i = np.arange(n_a)
    pos = slope * i + intercept
    out = np.zeros(n_a, dtype=bool)
    for j in (np.floor(pos), np.ceil(pos)):
        j = j.astype(np.int64)
        ok = (j >= 0) & (j < n_b)
        d = dist[i[ok], j[ok]]
        hit = (d <= kth[ok]) | (d <= max_distance)
        if still is not None:  # where the sound stands still, only a near copy counts
            hit &= (still[i[ok]] >= STILL_DISTANCE) | (d < 0.5 * still[i[ok]])
        out[ok] |= hit
    return out


def max_sum_stretch(score: np.ndarray) -> tuple[int, int]:
    """``(lo, hi)``, inclusive: the stretch of ``score`` with the largest sum (the first such)."""
    c = np.concatenate([[0.0], np.cumsum(score)])
    low = np.minimum.accumulate(c[:-1])  # least prefix sum before each end
    gain = c[1:] - low
    hi = int(np.argmax(gain))
    lo = int(np.flatnonzero(c[: hi + 1] == low[hi])[0])
    return lo, hi


def verify_run(hit: np.ndarray, *, miss: float = MISS_WEIGHT) -> tuple[int, int, float] | None:
    """The stretch of segments where hits outnumber misses most.

    Parameters
    ----------
    hit : np.ndarray [shape=(n,), bool]
        :func:`line_hits` of one recording against another.

    Returns
    -------
    ``(i0, i1, coverage)``: the segments ``i0..i1`` (inclusive) of the maximum-sum stretch of +1
    per hit, ``-miss`` per miss, and the share of hits in it; None with no hit.
    """
    hit = np.asarray(hit, dtype=bool)
    if not hit.any():
        return None
    best_lo, best_hi = max_sum_stretch(np.where(hit, 1.0, -miss))
    return best_lo, best_hi, float(hit[best_lo : best_hi + 1].mean())


def find_runs(
    hits: np.ndarray,
    vectors,
    *,
    min_windows: int,
    max_distance: float = MAX_DISTANCE,
    min_coverage: float = MIN_COVERAGE,
    max_rate_change: float = MAX_RATE_CHANGE,
    rank: int = RANK,
    max_median_distance: float = MAX_MEDIAN_DISTANCE,
) -> list[Run]:
    """The shared span of each pair of recordings that has one.

    Parameters
    ----------
    hits : np.ndarray [shape=(m, 4), int]
        :func:`pair_hits`.
    vectors : callable(row) -> np.ndarray [n_segments, dim]
        A recording's segment vectors.
    min_windows : int
        Least length of a shared span, in segments.
    max_distance, min_coverage, max_rate_change, rank, max_median_distance
        See :data:`MAX_DISTANCE`, :data:`MIN_COVERAGE`, :data:`MAX_RATE_CHANGE`, :data:`RANK`,
        :data:`MAX_MEDIAN_DISTANCE`.

    Returns
    -------
    One :class:`Run` per pair whose best line holds a span of ``min_windows`` segments or more with
    at least ``min_coverage`` of them hits (:func:`line_hits`), whose segments lie at a median
    distance of at most ``max_median_distance`` from their counterparts. A pair is looked at closely
    (all its segments against each other) when the index's nearest neighbours already put
    ``min_windows / 2`` segments on one line.
    """
    if len(hits) == 0:
        return []
    order = np.lexsort((hits[:, 1], hits[:, 2], hits[:, 0]))
    hits = hits[order]
    pairs, start, counts = np.unique(hits[:, [0, 2]], axis=0, return_index=True, return_counts=True)
    runs = []
    need = max(4, int(np.ceil(min_windows / 2)))
    for (a, b), s, c in zip(pairs.tolist(), start.tolist(), counts.tolist()):
        if c < need:
            continue
        i, j = hits[s : s + c, 1], hits[s : s + c, 3]
        slope, intercept, on = best_diagonal(i, j, max_rate_change=max_rate_change)
        if on < need:
            continue
        va = vectors(a)
        dist = pair_distances(va, vectors(b))
        still = self_distances(va)
        # the line again from each segment's nearest few in B alone (the index's neighbours of a
        # half-hop-shifted copy are often other recordings' segments)
        near = np.argpartition(dist, min(rank, dist.shape[1]) - 1, axis=1)[:, :rank]
        li = np.repeat(np.arange(dist.shape[0]), near.shape[1])
        lines = {(slope, intercept), best_diagonal(li, near.ravel(), max_rate_change=max_rate_change)[:2]}
        best = None
        for sl, ic in lines:
            found = verify_run(line_hits(dist, sl, ic, rank=rank, max_distance=max_distance, still=still), miss=MISS_WEIGHT)
            if found is not None and (best is None or found[1] - found[0] > best[2][1] - best[2][0]):
                best = (sl, ic, found)
        if best is None:
            continue
        sl, ic, (i0, i1, coverage) = best
        if i1 - i0 + 1 < min_windows or coverage < min_coverage:
            continue
        k = np.arange(i0, i1 + 1)
        pos = sl * k + ic
        near_d = np.minimum(*(dist[k, np.clip(f(pos).astype(np.int64), 0, dist.shape[1] - 1)] for f in (np.floor, np.ceil)))
        median = float(np.median(near_d))
        if median <= max_median_distance:
            runs.append(Run(a, b, i0, i1, sl, ic, coverage, median))
    return runs


def group_pairs(n: int, pairs) -> list[list[int]]:
    """Connected groups (union-find) of ``n`` items joined by ``pairs`` ``[(a, b), ...]``; only
    groups of two or more, each sorted, in order of their first item."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(root(x), []).append(x)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def group_spans(runs: list[Run], *, hop_s: float, window_s: float, durations: np.ndarray) -> list[tuple[list[int], dict[int, tuple[float, float]]]]:
    """Groups of recordings (rows) joined by ``runs``, and each member's shared span in seconds:
    the union of its spans with the others of its group (start of its first shared segment to the
    end of its last one, at most its duration).

    ``hop_s``: seconds between segment starts; ``window_s``: a segment's length (seconds);
    ``durations``: each row's duration (seconds).
    """
    spans: dict[int, list[float]] = {}

    def widen(row: int, lo: float, hi: float) -> None:
        lo_s = max(0.0, lo * hop_s)
        hi_s = min(float(durations[row]), hi * hop_s + window_s)
        cur = spans.setdefault(row, [lo_s, hi_s])
        cur[0], cur[1] = min(cur[0], lo_s), max(cur[1], hi_s)

    for r in runs:
        widen(r.a, r.i0, r.i1)
        widen(r.b, max(0.0, r.j0), r.j1)
    groups = group_pairs(len(durations), [(r.a, r.b) for r in runs])
    return [(g, {row: (round(spans[row][0], 3), round(spans[row][1], 3)) for row in g}) for g in groups]


def find_duplicates(
    search,
    vectors,
    counts: np.ndarray,
    durations: np.ndarray,
    *,
    hop_s: float,
    window_s: float,
    min_overlap_s: float = MIN_OVERLAP_S,
    neighbours: int = 20,
    max_distance: float = MAX_DISTANCE,
    min_coverage: float = MIN_COVERAGE,
    max_rate_change: float = MAX_RATE_CHANGE,
    chunk: int = 16384,
) -> list[tuple[list[int], dict[int, tuple[float, float]]]]:
    """Groups of recordings that hold the same audio, from their stored segment vectors.

    Parameters
    ----------
    search : callable(vectors [m, dim], k) -> (rows [m, k], within [m, k], distances [m, k])
        The k-NN search of the index, as recording row and segment index within it (-1: none).
    vectors : callable(row) -> np.ndarray [n_segments, dim]
        The stored segment vectors of a recording.
    counts, durations : np.ndarray [shape=(n_files,)]
        Segments and duration (seconds) of each recording row.
    hop_s, window_s : float
        Seconds between segment starts, and a segment's length.
    min_overlap_s : float
        Least shared span (seconds).
    neighbours : int
        Nearest segments fetched per segment (more than a library's copies of one piece).

    Returns
    -------
    ``[(rows, {row: (start_s, end_s)})]`` per group (:func:`group_spans`).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_files = len(counts)
    min_windows = max(2, int(np.ceil((min_overlap_s - window_s) / hop_s)) + 1)
    found = []
    rows_all = np.repeat(np.arange(n_files), counts)
    within_all = np.concatenate([np.arange(c) for c in counts]) if n_files else np.empty(0, np.int64)
    for lo in range(0, len(rows_all), chunk):
        q_rows, q_within = rows_all[lo : lo + chunk], within_all[lo : lo + chunk]
        q = np.concatenate([vectors(r)[q_within[q_rows == r]] for r in np.unique(q_rows)])
        rows, within, dist = search(q, neighbours + 1)
        found.append(pair_hits(rows, within, dist, q_rows, q_within, max_distance=HIT_DISTANCE))
    hits = np.unique(np.concatenate(found), axis=0) if found else np.empty((0, 4), np.int64)
    cache: dict[int, np.ndarray] = {}

    def cached(row: int) -> np.ndarray:
        if row not in cache:
            if len(cache) > 256:
                cache.clear()
            cache[row] = np.asarray(vectors(row), dtype=np.float32)
        return cache[row]

    runs = find_runs(hits, cached, min_windows=min_windows, max_distance=max_distance, min_coverage=min_coverage, max_rate_change=max_rate_change)
    return group_spans(runs, hop_s=hop_s, window_s=window_s, durations=np.asarray(durations, dtype=np.float64))
