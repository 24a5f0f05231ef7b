"""Query by example: turn k-NN hits of a clip's windows into ranked recordings.

``match``: every window of the clip (one every ``segment_hop / phases``) is searched; each hit on
segment ``j`` of a recording proposes the alignment "clip starts at ``j * phases - i`` query hops into
that recording". The most voted alignments are then scored exactly: the mean Euclidean distance
between the clip's windows and the recording windows they align with. Results are ranked by that
distance, smallest first, one (the best alignment) per recording.

``similar``: the clip's whole-sound vector (the model's ``similar`` model, windows every 1.024 s
averaged and normalised: :meth:`Encoder.whole`) is searched against the recordings' whole-sound
vectors; where in a recording is its segment nearest to the clip's pooled ``match`` windows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from .decision import log_odds, part, probability

@dataclass(frozen=True)
class Match:
    """One recording found for a clip."""

    rank: int
    path: str
    #: Euclidean distance in the embedding space (smaller is nearer)
    distance: float
    #: where in the recording the clip starts (seconds); in ``similar`` mode, the start of the
    #: recording's window nearest to the clip
    offset_s: float | None
    duration_s: float
    file_id: int
    #: aligned windows the distance was measured on (``match``); 0 in ``similar`` mode
    windows: int = 0
    #: ``match`` mode: the clip is in this recording (``confidence`` at or above the model's
    #: operating point, see :func:`claim_confidence`)
    matched: bool | None = None
    #: ``match`` mode: calibrated probability that the clip is in this recording (0..1); None in
    #: ``similar`` mode or with a model that has no fitted decision
    confidence: float | None = None
    #: a long clip (:mod:`~search_engine.long_queries`): the span of the clip that lies in this
    #: recording (seconds from the clip's start; ``offset_s`` is where that span starts in the
    #: recording); None for a clip answered whole
    query_start_s: float | None = None
    query_end_s: float | None = None
    #: ``match`` mode: how fast the clip plays against the recording (1.05: 5 % faster, as tape
    #: or a sped-up upload), the tempo it was aligned at (:func:`tempo_rates`; 1 for a clip too
    #: short for tempo to matter)
    speed: float = 1.0
    #: the recording's tags, duration_s, sample_rate_hz and channels (:func:`~search_engine.filters.file_tags`)
    tags: dict | None = field(default=None, hash=False)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class QueryResult:
    """Answer for one clip: matches nearest first, or an error message."""

    query: str
    matches: list[Match] = field(default_factory=list)
    error: str | None = None
    #: seconds spent per stage: decode, features, encoder, search, aggregate
    timings: dict[str, float] = field(default_factory=dict)
    #: ``match`` mode: whether the nearest recording is within the match threshold, i.e. the clip
    #: was found in the library (``False``: in no indexed recording); ``None`` in ``similar`` mode
    matched: bool | None = None
    #: ``match`` mode: the first match's ``confidence``
    confidence: float | None = None
    #: ``match`` mode: per match, the claim features it was decided on (:data:`CLAIM_FEATURES`; the
    #: first match also ``peaks`` and ``peaks_backwards`` where it was checked against its
    #: recording, :mod:`~search_engine.verification`)
    features: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The JSON object of this answer, as ``audio2vec query --json`` prints it (one line) and
        ``audio2vec serve`` returns it: ``{"query", "matched"?, "confidence"?, "results": [{"rank",
        "path", "distance", "offset_s", "speed"?, "matched"?, "confidence"?, "tags"}], "error"?}``; ``speed``,
        ``matched`` and ``confidence`` (null for a model without a fitted decision) only in ``match`` mode,
        ``error`` only for a clip that could not be read; ``tags`` of each result: the recording's
        tags (title, artist, album, genre, track, ...), ``duration_s``, ``sample_rate_hz`` and
        ``channels``. A long clip's results (one per span of it found in a recording,
        :mod:`~search_engine.long_queries`) also carry ``"query_start_s"`` and ``"query_end_s"``."""
        line: dict = {"query": self.query}
        if self.matched is not None:
            line["matched"] = self.matched
            line["confidence"] = self.confidence
        line["results"] = [
            {"rank": m.rank, "path": m.path, "distance": m.distance, "offset_s": m.offset_s}
            | ({"speed": m.speed, "matched": m.matched, "confidence": m.confidence} if m.matched is not None else {})
            | ({"query_start_s": m.query_start_s, "query_end_s": m.query_end_s} if m.query_start_s is not None else {})
            | ({"tags": m.tags} if m.tags is not None else {})
            for m in self.matches
        ]
        if self.error:
            line["error"] = self.error
        return line


@dataclass
class Classification:
    """Answer of ``classify`` for one clip."""

    query: str
    label: str = "unknown"
    #: share of the distance-weighted vote that went to ``label`` (0..1)
    confidence: float = 0.0
    #: the labelled recordings that voted: ``{"path", "label", "distance"}``, nearest first
    neighbours: list[dict] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        out = {"query": self.query, "label": self.label, "confidence": self.confidence, "neighbours": self.neighbours}
        return {**out, "error": self.error} if self.error else out


@dataclass(frozen=True)
class Comparison:
    """Answer of ``compare`` for two clips."""

    a: str
    b: str
    #: Euclidean distance of the whole-sound vectors (``similar`` space)
    distance: float
    #: mean distance of the best exact alignment of the shorter clip inside the longer (``match``)
    match_distance: float
    #: whether that alignment is close enough to say the longer clip contains the shorter
    contains: bool
    container: str
    contained: str
    #: where in ``container`` the ``contained`` clip starts (seconds)
    offset_s: float
    #: calibrated probability that the longer clip contains the shorter (the ``match`` decision,
    #: with the longer clip as the library); None with a model that has no fitted decision
    confidence: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Alignment:
    """A scored candidate: recording row (into the file table), offset in query hops (where the
    clip's middle lies, :func:`aligned_pairs`), distance, windows scored, and tempo rate."""

    row: int
    offset: int
    distance: float
    windows: int
    rate: float = 1.0

    def start_hops(self, n_windows: int) -> float:
        """Where the clip's first window lies in the recording (query hops)."""
        return float(window_positions(self.offset, self.rate, n_windows)[0]) if n_windows else float(self.offset)


def vote_alignments(
    rows: np.ndarray, within: np.ndarray, *, phases: int, candidates: int
) -> list[tuple[int, int]]:
    """Most voted (recording row, offset) pairs.

    Parameters
    ----------
    rows, within : np.ndarray [shape=(n_windows, n_neighbours), int]
        For each query window ``i`` and neighbour: the recording row (-1: none) and the segment index.
    phases : int
        Query windows per segment hop.
    candidates : int
        How many alignments to return.

    Returns
    -------
    list of (row, offset) where ``offset`` is in query hops: the clip's first window aligns with
    the recording's window starting at ``offset * segment_hop / phases``. Votes of neighbouring
    offsets (±1 hop) are pooled, and the peaks kept are at least ``phases / 2`` hops apart per
    recording, so that refining each peak over ±``phases / 2`` (:func:`best_offset`) leaves no
    offset between two peaks unscored.
    """
    i = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)
    ok = rows >= 0
    if not ok.any():
        return []
    r, off = rows[ok].astype(np.int64), (within[ok] * phases - i[ok]).astype(np.int64)
    keys, votes = np.unique(np.stack([r, off], axis=1), axis=0, return_counts=True)
    # pool ±1 hop: offsets one hop apart differ by less than the phase error of a window. Keys
    # are sorted by (row, offset), so (row, offset - 1) can only be the key just before
    adjacent = (keys[1:, 0] == keys[:-1, 0]) & (keys[1:, 1] == keys[:-1, 1] + 1)
    pooled = votes.copy()
    pooled[1:] += np.where(adjacent, votes[:-1], 0)
    pooled[:-1] += np.where(adjacent, votes[1:], 0)
    order = np.lexsort((keys[:, 1], -pooled))
    chosen: list[tuple[int, int]] = []
    taken: dict[int, list[int]] = {}  # row -> offsets chosen
    for a, b in keys[order].tolist():
        if any(abs(b - cb) < phases // 2 for cb in taken.get(a, ())):
            continue
        chosen.append((a, b))
        taken.setdefault(a, []).append(b)
        if len(chosen) >= candidates:
            break
    return chosen


def best_offset(
    peak: int, distance, n_windows: int, n_segments: int, *, phases: int
) -> tuple[int, float, int] | None:
    """Refine a voted alignment: the exact offset near ``peak`` whose aligned windows are nearest.

    Votes only place the clip to within a few query hops (a window between two segments votes for
    the nearer one), so every offset ``o`` in ``[peak - phases/2, peak + phases/2)`` is scored. Under
    offset ``o`` the windows ``i`` with ``o + i`` a multiple of ``phases`` line up exactly with
    segment ``(o + i) / phases``; each window belongs to exactly one of these offsets, so one pass
    over the clip's windows scores them all.

    Parameters
    ----------
    peak : int
        Voted offset, in query hops (see :func:`vote_alignments`).
    distance : callable(window indices [m], segment indices [m]) -> np.ndarray [m]
        Euclidean distance between those query windows and recording segments.
    n_windows, n_segments : int
        Windows in the clip, segments in the recording.
    phases : int
        Query windows per segment hop.

    Returns
    -------
    ``(offset, mean distance, windows)`` of the best offset, or None when under every offset more
    than half of the clip would hang outside the recording.
    """
    return best_offsets([peak], lambda _, qi, seg: distance(qi, seg), n_windows, [n_segments], phases=phases)[0]


def best_offsets(
    peaks: Sequence[int], distance, n_windows: int, n_segments: Sequence[int], *, phases: int
) -> list[tuple[int, float, int] | None]:
    """:func:`best_offset` of many voted alignments of one clip, with one call of ``distance``
    for all of them (a clip's 50 candidate alignments cost one gather of recording vectors).

    Parameters
    ----------
    peaks : sequence of int
        Voted offsets, in query hops, one per candidate.
    distance : callable(candidate indices [m], window indices [m], segment indices [m]) -> np.ndarray [m]
        Euclidean distance between query windows and segments of each candidate's recording.
    n_windows : int
        Windows in the clip.
    n_segments : sequence of int
        Segments in each candidate's recording.
    phases : int

    Returns
    -------
    list of ``(offset, mean distance, windows)`` or None, as :func:`best_offset`, in input order.
    """
    i = np.arange(n_windows)
    plans = []
    for peak, n_seg in zip(peaks, n_segments):
        low = peak - phases // 2
        offsets = low + np.mod(-(low + i), phases)  # the one offset in range that aligns window i
        seg = (offsets + i) // phases
        inside = (seg >= 0) & (seg < n_seg)
        plans.append((low, offsets - low, seg, inside))
    used = [p for p in plans if p[3].any()]
    if not used:
        return [None] * len(plans)
    cand = np.concatenate([np.full(int(inside.sum()), c) for c, (_, _, _, inside) in enumerate(plans) if inside.any()])
    d_all = distance(cand, np.concatenate([i[p[3]] for p in used]), np.concatenate([p[2][p[3]] for p in used]))
    out: list[tuple[int, float, int] | None] = []
    pos = 0
    for low, slot, _, inside in plans:
        m = int(inside.sum())
        if not m:
            out.append(None)
            continue
        d, pos = d_all[pos : pos + m], pos + m
        total = np.bincount(slot, minlength=phases)
        count = np.bincount(slot[inside], minlength=phases)
        sums = np.bincount(slot[inside], weights=d, minlength=phases)
        ok = (count > 0) & (2 * count >= total)
        if not ok.any():
            out.append(None)
            continue
        mean = np.where(ok, sums / np.maximum(count, 1), np.inf)
        best = int(np.argmin(mean))
        out.append((low + best, float(mean[best]), int(count[best])))
    return out


#: the largest tempo change, either way, that the match path aligns a clip at (tape played 5 %
#: fast is a rate of 1.05): see :func:`tempo_rates`
MAX_TEMPO_CHANGE = 0.08


def tempo_rates(n_windows: int, *, phases: int, max_change: float = MAX_TEMPO_CHANGE) -> np.ndarray:
    """The rates (recording seconds per clip second) a clip's alignment is tried at, 1 first.

    Neighbouring rates are ``phases / (2 n_windows)`` apart, so their alignments part by a quarter
    of a segment hop at the clip's ends (a clip at a rate between two is at most an eighth of a hop
    off there), as far as ``max_change`` either way. A clip short enough that ``max_change`` moves
    its ends by less than that is aligned at rate 1 only (``[1.0]``): 3 s at ``phases`` 16.
    """
    step = phases / (2.0 * max(n_windows, 1))
    return np.array([1.0] + [1.0 + sign * j * step for j in range(1, int(max_change / step) + 1) for sign in (1, -1)])


def window_positions(offset: float, rate: float, n_windows: int) -> np.ndarray:
    """Where an alignment places each of the clip's windows in the recording (query hops):
    ``offset + i + (rate - 1) (i - c)``, ``c`` the middle window, so ``offset`` places the middle
    and ``rate`` (recording seconds per clip second) stretches the clip about it. ``[n_windows]``."""
    i = np.arange(n_windows, dtype=np.float64)
    return offset + i + (rate - 1) * (i - (n_windows - 1) / 2.0)


def _pair_grid(offsets: np.ndarray, rates: np.ndarray, n_windows: int, *, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows paired with segments under many alignments at once (see :func:`aligned_pairs`):
    ``(windows [n_alignments, n_segments], segments [n_segments])``, ``windows`` -1 where that
    alignment leaves the segment uncovered. ``offsets`` and ``rates``: one per alignment."""
    o, r = np.asarray(offsets, dtype=np.float64)[:, None], np.asarray(rates, dtype=np.float64)[:, None]
    c = (n_windows - 1) / 2.0
    reach = float(np.max(np.abs(r - 1)) * c + np.max(r))
    seg = np.arange(int(np.floor((o.min() - reach) / phases)), int(np.ceil((o.max() + n_windows + reach) / phases)) + 1)
    win = np.rint((seg[None, :] * phases - o + (r - 1) * c) / r).astype(np.int64)
    return np.where((win >= 0) & (win < n_windows), win, -1), seg


def aligned_pairs(offset: int, rate: float, n_windows: int, *, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """The clip windows and recording segments an alignment pairs: ``(windows, segments)``.

    The clip's windows lie where :func:`window_positions` puts them. Each segment
    ``j`` the clip covers is paired with the window that lies nearest to it (at rate 1: exactly on
    it, the windows ``i`` with ``offset + i`` a multiple of ``phases``). Segments may be negative or
    past the recording's end; the caller keeps those that exist.
    """
    win, seg = _pair_grid(np.array([offset]), np.array([rate]), n_windows, phases=phases)
    keep = win[0] >= 0
    return win[0][keep], seg[keep]


def best_rate(
    offset: int, distance, n_windows: int, n_segments: int, *, phases: int, rates: Sequence[float]
) -> tuple[int, float, int, float] | None:
    """Refine an alignment found at rate 1 (:func:`best_offsets`) over tempo: the rate among
    ``rates`` and the offset within ±``phases / 2`` hops of ``offset`` whose paired windows
    (:func:`aligned_pairs`) are nearest on average.

    ``distance``: callable(window indices [m], segment indices [m]) -> np.ndarray [m] of Euclidean
    distances. Returns ``(offset, mean distance, windows, rate)``, or None when every alignment
    leaves more than half of the clip outside the recording.
    """
    rates = np.repeat(np.asarray(rates, dtype=np.float64), phases)
    offsets = np.tile(np.arange(offset - phases // 2, offset + phases // 2), len(rates) // phases)
    win, seg = _pair_grid(offsets, rates, n_windows, phases=phases)
    inside = (win >= 0) & (seg >= 0) & (seg < n_segments)
    count = inside.sum(axis=1)
    ok = (count > 0) & (2 * count >= (win >= 0).sum(axis=1))
    if not ok.any():
        return None
    rows, cols = np.nonzero(inside & ok[:, None])
    sums = np.bincount(rows, weights=distance(win[rows, cols], seg[cols]), minlength=len(offsets))
    mean = np.where(ok, sums / np.maximum(count, 1), np.inf)
    best = int(np.argmin(mean))
    return int(offsets[best]), float(mean[best]), int(count[best]), float(rates[best])


def at_best_tempo(a: Alignment, distance, n_windows: int, n_segments: int, *, phases: int) -> Alignment:
    """Alignment ``a`` (found at rate 1) at its best tempo rate (:func:`best_rate` over
    :func:`tempo_rates`), or ``a`` itself when no other rate brings the clip nearer or the clip
    is too short for tempo to matter. ``distance`` as in :func:`best_rate`."""
    rates = tempo_rates(n_windows, phases=phases)
    if len(rates) == 1:
        return a
    found = best_rate(a.offset, distance, n_windows, n_segments, phases=phases, rates=rates)
    step = rates[1] - 1
    while found and found[3] != 1.0 and step > 0.004:  # between grid rates, halving the step: the speed to about 0.3 %
        step /= 2
        found = best_rate(found[0], distance, n_windows, n_segments, phases=phases, rates=[found[3], found[3] - step, found[3] + step])
    return Alignment(a.row, found[0], found[1], found[2], found[3]) if found and found[1] < a.distance else a


def weighted_vote(labels: list[str], distances: np.ndarray, *, min_confidence: float) -> tuple[str, float]:
    """The label most of the neighbours vote for, each weighted by ``1 / distance``.

    Returns ``(label, share of the weight)``, or ``("unknown", share)`` below ``min_confidence``
    (and ``("unknown", 0.0)`` with no neighbours).
    """
    if not labels:
        return "unknown", 0.0
    weights = 1.0 / np.maximum(np.asarray(distances, dtype=np.float64), 1e-6)
    score: dict[str, float] = {}
    for label, w in zip(labels, weights):
        score[label] = score.get(label, 0.0) + float(w)
    best = max(score, key=lambda name: (score[name], name))
    share = score[best] / float(weights.sum())
    return (best if share >= min_confidence else "unknown"), round(share, 4)


def best_alignment_per_recording(alignments: list[Alignment], k: int) -> list[Alignment]:
    """The nearest alignment of each recording, the ``k`` nearest recordings, nearest first."""
    best: dict[int, Alignment] = {}
    for a in alignments:
        if a.row not in best or a.distance < best[a.row].distance:
            best[a.row] = a
    return sorted(best.values(), key=lambda a: (a.distance, a.row))[:k]


def pool(vectors: np.ndarray) -> np.ndarray:
    """Whole-sound vector: mean of window vectors, L2-normalised. ``[n, dim] -> [dim]``."""
    m = vectors.mean(axis=0)
    n = np.linalg.norm(m)
    return (m / n if n > 0 else m).astype(np.float32)


# --- the claim: is the clip in the recording ranked first? -------------------------------------

#: the measurements a claim is decided on, per match (see :func:`claim_features`); a match checked
#: against its recording's audio has ``peaks`` and ``peaks_backwards`` too
#: (:func:`search_engine.verification.peak_check`)
CLAIM_FEATURES = ("distance", "margin", "relative", "agree", "spread_s", "duration_s", "level_db", "excess", "inside")


def neighbour_background(dist: np.ndarray) -> float:
    """How near this library comes to the clip anyway.

    Parameters
    ----------
    dist : np.ndarray [shape=(n_windows, n_neighbours), float]
        Euclidean distances of each clip window's nearest library segments, nearest first (the
        k-NN search of the match path; ``inf`` or NaN where fewer were found).

    Returns
    -------
    The median over windows of the farthest neighbour's distance (embedding units): a library's
    own neighbourhood around the clip, which comes nearer as the library grows; ``nan`` with no
    neighbours.
    """
    d = np.asarray(dist, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    d = np.where(np.isfinite(d), d, np.nan)
    last = np.array([r[np.isfinite(r)][-1] if np.isfinite(r).any() else np.nan for r in d])
    return float(np.nanmedian(last)) if np.isfinite(last).any() else float("nan")


def aligned_nearest(dist: np.ndarray, offset: int, *, phases: int, rate: float = 1.0) -> float:
    """Mean nearest-neighbour distance (embedding units) of the clip windows that an alignment at
    ``offset`` (query hops) and ``rate`` scores (:func:`aligned_pairs`; at rate 1 those ``i`` with
    ``offset + i`` a multiple of ``phases``): the best any alignment could do on them. ``nan`` when none.

    ``dist``: ``[n_windows, n_neighbours]`` k-NN distances, nearest first (``inf`` where none).
    """
    d = np.asarray(dist, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    first = d[aligned_pairs(offset, rate, d.shape[0], phases=phases)[0], 0]
    first = first[np.isfinite(first)]
    return float(first.mean()) if first.size else float("nan")


def inside_share(offset: int, rate: float, n_windows: int, n_segments: int, *, phases: int) -> float:
    """Share (0..1) of the clip's windows that an alignment (``offset`` and ``rate`` as in
    :func:`aligned_pairs`) places within the recording's ``n_segments`` segments (to half a
    segment hop beyond its first and last): 1 for a clip that lies inside the recording, 0.5 for
    one whose first half hangs before its start."""
    if n_windows <= 0:
        return 0.0
    at = window_positions(offset, rate, n_windows)
    return float(np.mean((at >= -phases / 2) & (at <= (n_segments - 0.5) * phases)))


def alignment_support(rows: np.ndarray, within: np.ndarray, row: int, offset: int, *, phases: int, hop_s: float) -> tuple[float, float]:
    """How many of the clip's windows agree on one alignment with recording ``row``, and how
    straight that alignment is: ``(agree, spread_s)``.

    Each window's neighbours in ``row`` propose offsets ``within * phases - i`` (query hops; see
    :func:`vote_alignments`). Around ``offset`` (±``phases + n_windows / 10`` hops, room for a tempo
    drift of 10 %), each window's proposal nearest to ``offset`` is kept and a straight line
    (offset against window index) is fitted to them by least squares.

    Parameters
    ----------
    rows, within : np.ndarray [shape=(n_windows, n_neighbours), int]
        As in :func:`vote_alignments`.
    row, offset : int
        The alignment: recording row and offset in query hops.
    phases : int
        Query windows per segment hop.
    hop_s : float
        Seconds per query hop.

    Returns
    -------
    ``agree``: share (0..1) of the clip's windows with a neighbour within ±``3 phases / 4`` hops of
    the fitted line (a window votes for its nearer segment: up to half a segment hop off, plus
    the line's own error); ``spread_s``: root mean square distance (seconds) of the kept proposals from
    the line (0: perfectly straight), ``phases * hop_s`` (one segment hop) when fewer than three
    windows agree.
    """
    rows, within = np.asarray(rows), np.asarray(within)
    n = rows.shape[0]
    if n == 0:
        return 0.0, float(phases * hop_s)
    i = np.arange(n)
    off = within.astype(np.float64) * phases - i[:, None]
    dev = np.where(rows == row, np.abs(off - offset), np.inf)
    pick = np.argmin(dev, axis=1)
    best_dev = dev[i, pick]
    near = best_dev <= phases + n / 10
    if near.sum() < 3:
        return float(np.mean(best_dev <= 0.75 * phases)), float(phases * hop_s)
    x, y = i[near].astype(np.float64), off[i, pick][near]
    if np.ptp(x) > 0:
        b, a = np.polyfit(x, y, 1)
    else:
        b, a = 0.0, float(np.mean(y))
    resid = y - (a + b * x)
    # agreement with the line: any neighbour of the window within half a segment hop of it
    line = a + b * i
    agree = np.any((rows == row) & (np.abs(off - line[:, None]) <= 0.75 * phases), axis=1)
    return float(agree.mean()), float(np.sqrt(np.mean(resid**2)) * hop_s)


def clip_level_db(y: np.ndarray) -> float:
    """Root mean square level of a waveform in dB relative to full scale (1.0), at least -100."""
    y = np.asarray(y, dtype=np.float64)
    rms = float(np.sqrt(np.mean(y**2))) if y.size else 0.0
    return float(max(-100.0, 20 * np.log10(max(rms, 1e-10))))


def claim_features(
    distances: np.ndarray, *, background: float, nearest: list[float], support: list[tuple[float, float]], duration_s: float, level_db: float,
    inside: list[float] | None = None,
) -> list[dict]:
    """The claim features of each ranked match (:data:`CLAIM_FEATURES`).

    Parameters
    ----------
    distances : np.ndarray [shape=(n,), float]
        Best aligned mean distance of each ranked recording (embedding units), nearest first.
    background : float
        :func:`neighbour_background` of the clip's windows in this library.
    nearest : list of float
        :func:`aligned_nearest` of each match's alignment.
    support : list of (agree, spread_s)
        :func:`alignment_support` of each match's alignment.
    duration_s, level_db : float
        The clip's length (seconds) and level (dB full scale, :func:`clip_level_db`).
    inside : list of float, optional
        :func:`inside_share` of each match's alignment (1 when not given).

    Returns
    -------
    Per match: ``distance``; ``margin``, the nearest *other* recording's distance minus this one's
    (positive for the first when it stands out; with no other recording, ``background`` stands in
    for it); ``relative``, ``distance / background`` (near 1 for a clip from no recording, and
    following the library's size); ``agree`` and ``spread_s`` (see :func:`alignment_support`);
    ``duration_s``; ``level_db``; ``excess``, ``distance - nearest`` (embedding units: what holding
    the windows to one alignment costs over each window's own nearest segment; 0 where unknown);
    ``inside``, the share of the clip the alignment places within the recording.
    """
    d = np.asarray(distances, dtype=np.float64)
    bg = background if np.isfinite(background) and background > 0 else (float(d.max()) if d.size else 1.0)
    out = []
    for j, dj in enumerate(d):
        others = np.delete(d, j)
        other = float(others.min()) if others.size else max(bg, float(dj))
        agree, spread = support[j]
        out.append({
            "distance": float(dj), "margin": other - float(dj), "relative": float(dj) / max(bg, 1e-6),
            "agree": float(agree), "spread_s": float(spread), "duration_s": float(duration_s),
            "level_db": float(level_db), "excess": float(dj) - nearest[j] if np.isfinite(nearest[j]) else 0.0,
            "inside": float(inside[j]) if inside is not None else 1.0,
        })
    return out


#: the inputs a decision may be fitted on, by name: functions of one match's claim features and
#: ``logd``, the log of the clip's length (a mean over more windows varies less, so distance,
#: margin and agreement also enter multiplied by it)
BASIS_INPUTS = {
    "distance": lambda f, logd: f["distance"],
    "margin": lambda f, logd: f["margin"],
    "relative": lambda f, logd: min(f["relative"], 2.0),
    "agree": lambda f, logd: f["agree"],
    "spread_s": lambda f, logd: min(f["spread_s"], 2.0),
    "log_duration": lambda f, logd: logd,
    "level_db": lambda f, logd: float(np.clip(f["level_db"], -60, 0)),
    "excess": lambda f, logd: f["excess"],
    "distance*log_duration": lambda f, logd: f["distance"] * logd,
    "margin*log_duration": lambda f, logd: f["margin"] * logd,
    "agree*log_duration": lambda f, logd: f["agree"] * logd,
    "inside": lambda f, logd: f.get("inside", 1.0),
    # the check against the recording (search_engine.verification): its share of peaks to the
    # 16th power, near 1 only when nearly all of them are there (a noisy excerpt keeps 0.97-1, a
    # look-alike passage 0.8-0.95: on the fit split the power told them apart better than the share)
    "peaks^16": lambda f, logd: f["peaks"] ** 16,
    # the share the clip keeps with the passage's peaks backwards: as high as the share itself
    # for a held chord, which any piece ending on that chord shares too
    "peaks_backwards^16": lambda f, logd: f["peaks_backwards"] ** 16,
}
#: the inputs of a decision that does not name its own (``basis``)
CLAIM_BASIS = ("distance", "margin", "relative", "agree", "spread_s", "log_duration", "level_db", "excess",
               "distance*log_duration", "margin*log_duration", "agree*log_duration")


def claim_basis(f: dict, names=CLAIM_BASIS) -> np.ndarray:
    """The inputs of a fitted decision made of one match's features: the :data:`BASIS_INPUTS`
    called ``names`` (duration as ``log(seconds)``, level clipped to -60..0 dB, ...), in order.
    ``[len(names)]`` float64."""
    logd = np.log(max(f["duration_s"], 0.1))
    return np.array([BASIS_INPUTS[name](f, logd) for name in names], dtype=np.float64)


def is_verified(f: dict, decision: dict) -> bool:
    """Whether a match with claim features ``f`` is judged as checked against its recording's
    audio: the decision has a part for such matches (``"verified"``) and ``f`` carries ``peaks``."""
    return decision.get("kind") == "verified" and f.get("peaks") is not None


def claim_confidence(f: dict, decision: dict) -> float:
    """Probability (0..1) that the clip is in the match's recording, by the decision fitted with
    the model (``match_decision`` in its config.json: a logistic regression or boosted trees over
    :func:`claim_basis`, see :mod:`search_engine.decision`), for a clip as likely to be from the
    library as not."""
    judge = part(decision, f["duration_s"], verified=is_verified(f, decision))
    return probability(log_odds(claim_basis(f, judge.get("basis", CLAIM_BASIS)), judge))


def claim_threshold(decision: dict, duration_s: float, *, verified: bool = False) -> float:
    """The operating point of a fitted decision for a clip of ``duration_s`` seconds: the
    confidence a claim needs. ``thresholds`` (``{seconds: confidence}``, each chosen so that at
    most the target share of outsider clips of that length is claimed) interpolated in log
    duration and held constant outside; else the one ``threshold``. A ``"by_length"`` decision
    uses the part for that length (:func:`search_engine.decision.part`), a ``"verified"`` one the
    part for matches checked against their recording's audio (``verified``) or not."""
    decision = part(decision, duration_s, verified=verified)
    table = decision.get("thresholds")
    if not table:
        return float(decision["threshold"])
    xs, ys = zip(*sorted((float(k), float(v)) for k, v in table.items()))
    return float(np.interp(np.log(max(duration_s, 1e-3)), np.log(xs), ys))
