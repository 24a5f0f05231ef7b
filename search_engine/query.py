"""Query by example: turn k-NN hits of a clip's windows into ranked recordings.

``match``: every window of the clip (one every ``segment_hop / phases``) is searched; each hit on
segment ``j`` of a recording proposes the alignment "clip starts at ``j * phases - i`` query hops into
that recording". The most voted alignments are then scored exactly: the mean Euclidean distance
between the clip's windows and the recording windows they align with. Results are ranked by that
distance, smallest first, one (the best alignment) per recording.

``similar``: the clip's window vectors are averaged and normalised into one whole-sound vector and
searched against the recordings' whole-sound vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class QueryResult:
    """Answer for one clip: matches nearest first, or an error message."""

    query: str
    matches: list[Match] = field(default_factory=list)
    error: str | None = None
    #: seconds spent per stage: decode, features+encoder, search, aggregate
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Alignment:
    """A scored candidate: recording row (into the file table), offset in query hops, distance."""

    row: int
    offset: int
    distance: float
    windows: int


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
    offsets (±1 hop) are pooled, and the peaks kept are at least ``phases`` hops apart per recording.
    """
    i = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)
    ok = rows >= 0
    if not ok.any():
        return []
    r, off = rows[ok].astype(np.int64), (within[ok] * phases - i[ok]).astype(np.int64)
    keys, votes = np.unique(np.stack([r, off], axis=1), axis=0, return_counts=True)
    # pool ±1 hop: offsets one hop apart differ by less than the phase error of a window
    lookup = {(int(a), int(b)): int(v) for (a, b), v in zip(keys, votes)}
    pooled = np.array([v + lookup.get((a, b - 1), 0) + lookup.get((a, b + 1), 0) for (a, b), v in zip(lookup, votes)])
    order = np.lexsort((keys[:, 1], -pooled))
    chosen: list[tuple[int, int]] = []
    for j in order:
        a, b = int(keys[j, 0]), int(keys[j, 1])
        if any(a == ca and abs(b - cb) < phases for ca, cb in chosen):
            continue
        chosen.append((a, b))
        if len(chosen) >= candidates:
            break
    return chosen


def aligned_pairs(offset: int, n_windows: int, n_segments: int, *, phases: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Query windows and recording segments that line up exactly under ``offset`` (in query hops).

    Returns ``(query window indices, segment indices, phase_windows)``: windows ``i`` with
    ``offset + i`` a multiple of ``phases`` and the segment ``(offset + i) / phases`` inside the
    recording; ``phase_windows`` counts the windows of that phase whether or not they fall inside.
    """
    i = np.arange(n_windows)
    pos = offset + i
    in_phase = pos % phases == 0
    keep = in_phase & (pos >= 0) & (pos // phases < n_segments)
    return i[keep], pos[keep] // phases, int(in_phase.sum())


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
