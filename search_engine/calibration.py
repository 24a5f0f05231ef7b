"""Calibrate the claim decision on one index: how often clips from no indexed recording are claimed.

The model ships an operating point fitted on benchmark libraries (``match_decision`` in its
config.json; ``benchmarks/claims.py``). A user's library may be larger or sound more alike than
those, and then clips from outside it come nearer. :func:`calibrate` measures that on the index
itself: it plays clips of the index's own recordings **backwards and four semitones higher or
lower** (the library's instruments, voices, levels and recording chains, but no passage of any
indexed recording: outsiders it can make without other audio), queries them, and raises the confidence a claim needs, per clip length,
until at most ``target`` of them are claimed. It never lowers the model's operating point.

The result is stored in the index (``calibration.json``) with the library's size when it was
made; the engine then decides with it (:func:`threshold`). Re-run it after the library has grown.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .query import claim_threshold

FILE_NAME = "calibration.json"
#: clip lengths calibrated by default (seconds)
LENGTHS = (1.0, 3.0, 10.0)


@dataclass(frozen=True)
class LengthCalibration:
    """The operating point for one clip length."""

    seconds: float
    #: backwards clips queried
    clips: int
    #: the model's operating point (confidence) for this length
    model_threshold: float
    #: the confidence a claim needs on this index: at least ``model_threshold``
    threshold: float
    #: backwards clips claimed at ``threshold``
    claimed: int
    #: one-sided 95 % Clopper-Pearson upper bound of the false-claim rate of such clips
    upper95: float


@dataclass
class Calibration:
    """What :func:`calibrate` measured and the operating points it chose."""

    target: float
    model_id: str
    library_hours: float
    files: int
    lengths: list[LengthCalibration] = field(default_factory=list)
    created: str = ""
    #: the clips' first matches were checked against their recordings' audio (``verify``): the
    #: operating points are for the decision's ``verified`` part, and only such claims use them
    verified: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(**{**d, "lengths": [LengthCalibration(**x) for x in d.get("lengths", [])]})


def upper95(k: int, n: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of a rate seen ``k`` times in ``n`` trials."""
    from scipy.stats import beta

    if n <= 0 or k >= n:
        return 1.0
    return float(beta.ppf(0.95, k + 1, n - k))


def operating_point(confidences: np.ndarray, target: float) -> float:
    """Smallest confidence threshold at which at most ``target`` (a share) of ``confidences``
    reach it (claims need confidence >= threshold)."""
    c = np.sort(np.asarray(confidences, dtype=np.float64))[::-1]
    allowed = int(np.floor(target * len(c)))
    if len(c) == 0 or allowed >= len(c):
        return 0.0
    return float(np.nextafter(c[allowed], 1.0))


#: each backwards clip is also moved this many semitones up or down (tape-style, by resampling):
#: a held chord played backwards still sounds like itself, a chord four semitones away does not
SHIFT_SEMITONES = 4.0


def backwards_clips(load: Callable[[str], np.ndarray], files: list[tuple[str, float]], seconds: float, n: int, *, sr: int, seed: int = 0,
                    shift_semitones: float = SHIFT_SEMITONES) -> list[np.ndarray]:
    """``n`` clips of ``seconds`` from ``files`` (``(path, duration_s)``; files chosen in
    proportion to their length), each played backwards and moved ``shift_semitones`` up or down
    (at random; pitch and tempo together, as a tape played faster or slower).

    ``load(path)`` returns the mono waveform at ``sr`` Hz. Files shorter than the clip needs are
    skipped; each file is decoded once.
    """
    import soxr

    rng = np.random.default_rng(seed)
    length = int(round(seconds * sr))
    widest = 2.0 ** (abs(shift_semitones) / 12)
    usable = [(p, d) for p, d in files if d >= seconds * widest + 0.05]
    if not usable:
        return []
    weights = np.array([d for _, d in usable], dtype=np.float64)
    picks = rng.choice(len(usable), size=n, p=weights / weights.sum())
    out = []
    for j in np.unique(picks):
        y = load(usable[j][0])
        for _ in range(int((picks == j).sum())):
            rate = 2.0 ** (float(rng.choice([-1.0, 1.0])) * shift_semitones / 12)  # > 1: higher and faster
            need = int(np.ceil(length * rate)) + 1
            if len(y) < need:
                continue
            start = int(rng.integers(0, len(y) - need + 1))
            piece = y[start:start + need][::-1].astype(np.float32)
            if shift_semitones:
                piece = soxr.resample(piece, sr * rate, sr)
            out.append(np.ascontiguousarray(np.pad(piece, (0, max(0, length - len(piece))))[:length], dtype=np.float32))
    return out


def calibrate(engine, *, target: float = 0.01, clips: int = 1000, lengths=LENGTHS, max_files: int = 200, seed: int = 0,
              on_progress: Callable[[int, int, str], None] | None = None) -> Calibration:
    """Measure backwards clips of the index's recordings and choose the operating point per length.

    Parameters
    ----------
    engine : SearchEngine
        An index with a model that has a fitted claim decision (``match_decision``).
    target : float
        Largest share of outsider clips a claim may be made for (0.01: 1 %).
    clips : int
        Backwards clips per length (at 1 %, 1,000 clips bound the rate at 1.6 % with 95 % confidence
        when 1 % of them are claimed; fewer claims give a tighter bound).
    lengths : sequence of float
        Clip lengths (seconds).
    max_files : int
        At most this many recordings (chosen at random) are decoded.
    on_progress : callable, optional
        ``on_progress(done, total, item)`` after each batch of queries (:mod:`search_engine.progress`).

    Returns
    -------
    The :class:`Calibration`; :func:`save` stores it in the index.
    """
    decision = engine.match_decision
    if decision is None:
        from .errors import ParameterError

        raise ParameterError(f"model {engine.model!r} has no fitted claim decision to calibrate")
    total, _ = engine.catalog.list_files(limit=1)
    rng = np.random.default_rng(seed)
    offsets = sorted(rng.choice(total, size=min(total, max_files), replace=False).tolist()) if total else []
    files = []
    for off in offsets:
        _, rows = engine.catalog.list_files(limit=1, offset=int(off))
        files += [(f.path, float(f.duration_s)) for f in rows]
    sr = engine.sample_rate_hz
    cache: dict[str, np.ndarray] = {}

    def load(path: str) -> np.ndarray:
        if path not in cache:
            cache[path] = engine.load_clip(path)[1]
        return cache[path]

    stats = engine.stats()
    result = Calibration(target=target, model_id=engine.encoder.model_id, library_hours=float(stats["hours"]), files=int(stats["files"]),
                         created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                         verified=engine.verifies and decision.get("kind") == "verified")
    done, batch = 0, 64
    for seconds in lengths:
        waves = backwards_clips(load, files, float(seconds), clips, sr=sr, seed=seed + int(seconds * 1000))
        conf = []
        for b in range(0, len(waves), batch):
            answers = engine.query_batch([(w, sr) for w in waves[b:b + batch]], k=1, mode="match")
            conf += [a.confidence if a.confidence is not None else 0.0 for a in answers]
            done += len(waves[b:b + batch])
            if on_progress is not None:
                on_progress(done, clips * len(lengths), f"{seconds:g} s clips")
        conf = np.array(conf)
        own = claim_threshold(decision, float(seconds), verified=result.verified)
        chosen = max(own, operating_point(conf, target)) if len(conf) else own
        k = int((conf >= chosen).sum())
        result.lengths.append(LengthCalibration(seconds=float(seconds), clips=len(conf), model_threshold=round(own, 6),
                                                threshold=round(float(chosen), 6), claimed=k, upper95=round(upper95(k, len(conf)), 4)))
    cache.clear()
    return result


def save(calibration: Calibration, index_dir: str | Path) -> Path:
    """Write ``calibration`` to the index folder (``calibration.json``); returns its path."""
    path = Path(index_dir) / FILE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(calibration.as_dict(), indent=2) + "\n")
    tmp.replace(path)
    return path


def load(index_dir: str | Path) -> Calibration | None:
    """The index's stored calibration, or None."""
    path = Path(index_dir) / FILE_NAME
    if not path.exists():
        return None
    return Calibration.from_dict(json.loads(path.read_text()))


def threshold(decision: dict, duration_s: float, calibration: Calibration | None = None, model_id: str | None = None, *,
              verified: bool = False) -> float:
    """The confidence a claim for a clip of ``duration_s`` seconds needs (a match checked against
    its recording's audio: ``verified``): the model's operating point
    (:func:`~search_engine.query.claim_threshold`), or the index's ``calibration`` (made with the
    same model, its clips checked or not alike) where that is stricter, interpolated in log
    duration and held constant outside the calibrated lengths."""
    own = claim_threshold(decision, duration_s, verified=verified)
    if (calibration is None or not calibration.lengths or (model_id is not None and calibration.model_id != model_id)
            or calibration.verified != verified):
        return own
    xs = np.log([c.seconds for c in calibration.lengths])
    ys = [c.threshold for c in calibration.lengths]
    order = np.argsort(xs)
    return max(own, float(np.interp(np.log(max(duration_s, 1e-3)), xs[order], np.array(ys)[order])))
