"""Answering clips: ``match`` (where a clip occurs), ``similar`` (what sounds alike), ``compare``
and ``classify``, with the claim decision; the arithmetic lives in :mod:`search_engine.query`."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Iterable, Sequence

import numpy as np

from .catalog import path_key
from .errors import Audio2VecError, DecodeError, ParameterError
from .filters import Filter, Selection, as_filter, file_tags, restrict, select
from .long_queries import LONG_QUERY_S
from .query import (
    Alignment,
    Classification,
    Comparison,
    Match,
    QueryResult,
    aligned_nearest,
    alignment_support,
    at_best_tempo,
    best_alignment_per_recording,
    best_offset,
    best_offsets,
    claim_confidence,
    claim_features,
    clip_level_db,
    inside_share,
    is_verified,
    neighbour_background,
    pool,
    vote_alignments,
    weighted_vote,
)

#: match threshold of a model without a calibrated one (the seed model's clean/noisy excerpts
#: scored 0.1-0.6, unrelated audio 0.95 and more)
UNCALIBRATED_THRESHOLD = 0.8
#: at most this many query windows per FAISS search of a batch (bounds its distance buffers)
SEARCH_CHUNK = 16384
#: recordings whose best alignment is tried again at other tempo rates (match mode, clips long
#: enough for tempo to matter: :func:`~search_engine.query.at_best_tempo`); the rest keep rate 1
TEMPO_RECORDINGS = 10


class Searching:
    """Part of :class:`~search_engine.engine.SearchEngine`: every question asked of an index."""

    def load_clip(self, clip) -> tuple[str, np.ndarray]:
        """A clip (path, or ``(waveform, sample_rate)``) as ``(name, mono waveform at the model rate)``."""
        from .audio import load_clip

        return load_clip(clip, sr=self.sample_rate_hz)

    def vector(self, clip) -> np.ndarray:
        """A clip's whole-sound vector in the ``similar`` space, made exactly as an indexed file's
        (:meth:`whole`). ``[dim]`` float32."""
        return self._whole_of(*self.load_clip(clip))

    def _whole_of(self, name: str, y: np.ndarray) -> np.ndarray:
        """:meth:`whole` of a mono waveform at the model rate."""
        from .audio2vec.encoder import spectrogram

        mel = spectrogram(y, self.encoder.features, source=name)
        vectors = None
        if self.whole_encoder is None:  # an older index: its whole vectors are made of segment vectors
            e = self.encoder.embed_spectrogram(mel, hop_frames=self.segment_hop_frames, duration_s=len(y) / self.sample_rate_hz, batch_size=self.settings.batch_size, source=name)
            vectors = e.vectors
        return self.whole(mel, vectors, source=name)

    def distance(self, a, b) -> float:
        """Euclidean distance between two clips in the ``similar`` space (0 = same sound; unit
        vectors, so at most 2)."""
        return float(np.linalg.norm(self.vector(a) - self.vector(b)))

    def compare(self, a, b) -> Comparison:
        """How alike two clips are: their ``similar`` distance, and whether the longer one
        contains the shorter and where: the ``match`` decision (:meth:`query_batch`) with the
        longer clip as the whole library (the best exactly aligned mean distance, and the same
        claim features and confidence; without a fitted decision, at or below
        :meth:`match_threshold` for the shorter clip's length in a library as long as the longer)."""
        from .audio import excerpt

        (na, ya), (nb, yb) = self.load_clip(a), self.load_clip(b)
        similar = float(np.linalg.norm(self._whole_of(na, ya) - self._whole_of(nb, yb)))
        (outer, yo), (inner, y) = ((na, ya), (nb, yb)) if len(ya) >= len(yb) else ((nb, yb), (na, ya))
        seg = self.embed(yo, source=outer)[0]
        q = self.encoder.embed(y, hop_frames=self.query_hop_frames, batch_size=self.settings.batch_size, source=inner).vectors
        phases = self.settings.query_phases

        def distance(qi, s):
            return np.linalg.norm(q[qi] - seg[s], axis=1)

        found = [best_offset(peak, distance, len(q), len(seg), phases=phases) for peak in range(-len(q), len(seg) * phases + phases, phases // 2)]
        best = at_best_tempo(Alignment(0, *min((f for f in found if f is not None), key=lambda f: f[1])), distance, len(q), len(seg), phases=phases)
        offset, match, windows = best.offset, best.distance, best.windows
        hop_s = self.segment_hop_s / phases
        start_s = best.start_hops(len(q)) * hop_s
        # the k-NN of the match path, the longer clip's segments as the library
        qq, ss = q.astype(np.float64), seg.astype(np.float64)
        full = np.sqrt(np.maximum((qq**2).sum(1)[:, None] + (ss**2).sum(1)[None, :] - 2 * qq @ ss.T, 0.0))
        kn = min(self.settings.neighbours, len(seg))
        within = np.argsort(full, axis=1, kind="stable")[:, :kn]
        dist = np.take_along_axis(full, within, axis=1)
        duration_s = len(y) / self.sample_rate_hz
        features = claim_features(
            np.array([match]), background=neighbour_background(dist), nearest=[aligned_nearest(dist, offset, phases=phases, rate=best.rate)],
            support=[alignment_support(np.zeros_like(within), within, 0, offset, phases=phases, hop_s=hop_s)],
            duration_s=duration_s, level_db=clip_level_db(y), inside=[inside_share(offset, best.rate, len(q), len(seg), phases=phases)],
        )
        found = [Match(1, outer, match, start_s, len(yo) / self.sample_rate_hz, 0, windows, speed=best.rate)]
        self._verify(y, found, features, {}, passage=excerpt(yo, start_s, duration_s * best.rate, sr=self.sample_rate_hz))
        decided = self._decide(found, features, duration_s, len(yo) / self.sample_rate_hz / 3600)[0]
        return Comparison(
            a=na, b=nb, distance=round(similar, 6), match_distance=round(match, 6),
            contains=decided.matched, container=outer, contained=inner,
            offset_s=round(start_s, 3), confidence=decided.confidence,
        )

    def classify(self, clips: Sequence, *, k: int | None = None, where=None, under=None, filter: Filter | None = None) -> list[Classification]:
        """Label each clip by its ``k`` nearest labelled recordings (``similar`` space), with a
        distance-weighted vote; ``"unknown"`` when the winning share is below
        ``settings.min_confidence`` or nothing is labelled. A clip that cannot be read gets ``error``.
        ``where``/``under`` (or ``filter``): only labelled recordings that pass vote (:meth:`query_batch`)."""
        flt = as_filter(where, under, filter)
        self.refresh()
        k = k or self.settings.classify_k
        ids, labels, paths = self.catalog.labelled()
        if flt:
            keep = restrict(ids, self.selection(flt))
            ids, labels, paths = ids[keep], [x for x, y in zip(labels, keep) if y], [x for x, y in zip(paths, keep) if y]
        known = self.wholes.reconstruct(ids) if len(ids) else np.empty((0, self.whole_dim), np.float32)
        out = []
        for clip in clips:
            res = Classification(query="<waveform>" if isinstance(clip, tuple) else str(clip))
            out.append(res)
            try:
                v = self.vector(clip)
            except Audio2VecError as exc:
                res.error = str(exc)
                continue
            d = np.linalg.norm(known - v, axis=1)
            near = np.argsort(d, kind="stable")[:k]
            res.neighbours = [{"path": paths[i], "label": labels[i], "distance": round(float(d[i]), 6)} for i in near]
            res.label, res.confidence = weighted_vote([labels[i] for i in near], d[near], min_confidence=self.settings.min_confidence)
        return out

    def query(self, clip, *, k: int | None = None, mode: str | None = None, where=None, under=None, filter: Filter | None = None) -> list[Match]:
        """Recordings for one clip, nearest first. Raises on a bad clip.

        Parameters
        ----------
        clip : path-like or (np.ndarray, int)
            An audio file, or a waveform and its sample rate in Hz.
        k : int, optional
            Results wanted (default: settings ``k``).
        mode : {"match", "similar"}, optional
        where, under, filter : optional
            Only recordings that pass: see :meth:`query_batch`.
        """
        result = self.query_batch([clip], k=k, mode=mode, raise_errors=True, where=where, under=under, filter=filter)[0]
        return result.matches

    def query_batch(self, clips: Sequence, *, k: int | None = None, mode: str | None = None, raise_errors: bool = False,
                    where=None, under=None, filter: Filter | None = None) -> list[QueryResult]:
        """Answer many clips; their windows go through the encoder and FAISS in shared batches.

        A clip that cannot be read gives a :class:`QueryResult` with ``error`` set (or raises, with
        ``raise_errors``); the others are still answered, in the order given.

        ``where`` (``"genre=Drums"``, ``"duration<2"``: one or a list, all must hold) and ``under``
        (folders, any of them), or a ready :class:`~search_engine.filters.Filter`: only recordings
        that pass are searched (a FAISS id selector), so ``k`` come back when ``k`` pass and the
        clip aligns with them (``match``: a clip must lie mostly inside a recording).
        """
        k = k or self.settings.k
        mode = mode or self.settings.mode
        if mode not in ("match", "similar"):
            raise ParameterError(f"mode must be 'match' or 'similar', not {mode!r}")
        flt = as_filter(where, under, filter)
        self.refresh()
        self._batch_files = {}
        try:
            return self._query_batch(clips, k=k, mode=mode, raise_errors=raise_errors, only=self.selection(flt) if flt else None)
        finally:
            self._batch_files = None

    def selection(self, flt: Filter) -> Selection:
        """The recordings of the generation this engine holds that pass a filter."""
        return select(self.catalog, self.blocks, flt)

    def _query_batch(self, clips: Sequence, *, k: int, mode: str, raise_errors: bool, only: Selection | None = None) -> list[QueryResult]:
        results, prepared = [], []
        for clip in clips:
            name = "<waveform>" if isinstance(clip, tuple) else str(clip)
            res = QueryResult(query=name)
            results.append(res)
            t0 = time.perf_counter()
            try:
                name, y = self.load_clip(clip)
                t1 = time.perf_counter()
                x, _ = self.encoder.raw_windows(y, hop_frames=self.query_hop_frames, source=name)
                whole = self._whole_of(name, y) if mode == "similar" and self.whole_encoder is not None else None
                prepared.append((res, x, y, whole, clip_level_db(y)))
                res.timings = {"decode": t1 - t0, "features": time.perf_counter() - t1}
            except Audio2VecError as exc:
                if raise_errors:
                    raise
                res.error = str(exc)
        if not prepared or len(self.segments) == 0:
            return results
        t0 = time.perf_counter()
        vectors = self.encoder.encode_parts([x for _, x, *_ in prepared], batch_size=self.settings.batch_size)
        t1 = time.perf_counter()
        neighbours = self._neighbours(vectors, only) if mode == "match" else [None] * len(vectors)
        per_clip = {"encoder": (t1 - t0) / len(prepared), "search": (time.perf_counter() - t1) / len(prepared)}
        for (res, _, y, whole, level_db), vecs, found in zip(prepared, vectors, neighbours):
            duration_s = len(y) / self.sample_rate_hz
            res.timings["encoder"] = per_clip["encoder"]
            if mode == "match":
                res.timings["search"] = per_clip["search"]
                res.matches, res.features = self._match(vecs, found, k, res.timings, duration_s=duration_s, level_db=level_db)
                wide = self.settings.neighbours
                while only is not None and len(res.matches) < min(k, only.n_files) and wide < only.n_segments:
                    wide *= 4  # too few recordings among the neighbours of the passing ones: look further
                    found = self._neighbours([vecs], only, wide)[0]
                    res.matches, res.features = self._match(vecs, found, k, res.timings, duration_s=duration_s, level_db=level_db)
                if duration_s <= LONG_QUERY_S:
                    self._verify(y, res.matches[:1], res.features, res.timings)
                res.matches = self._decide(res.matches, res.features, duration_s)
                if duration_s > LONG_QUERY_S:  # a long clip: one result per recording it plays, if any
                    spans = self._match_long(vecs, found, k, level_db=level_db)
                    res.matches, res.features = spans if spans[0] else (res.matches, res.features)
                res.matched = bool(res.matches) and res.matches[0].matched
                res.confidence = res.matches[0].confidence if res.matches else None
            else:
                res.matches = self._similar(pool(vecs[:: self.settings.query_phases]), whole, k, res.timings, only)
        return results

    @property
    def match_decision(self) -> dict | None:
        """The model's fitted claim decision (``match_decision`` in its config.json: a logistic
        regression over :func:`~search_engine.query.claim_basis` and the operating point
        ``threshold``, or ``thresholds`` per clip length: :func:`~search_engine.query.claim_threshold`),
        or None for a model calibrated with distance thresholds only."""
        return self.encoder.config.get("match_decision")

    @property
    def verifies(self) -> bool:
        """Whether first matches are checked against the recordings' audio: ``verify`` is on and
        claims are decided by the model's fitted decision (``match_threshold`` 0). The decision
        uses the check where it has a part for checked matches (kind ``"verified"``,
        :mod:`search_engine.decision`)."""
        return bool(self.settings.verify and not self.settings.match_threshold and self.match_decision)

    def _verify(self, y: np.ndarray, matches: list[Match], features: list[dict], timings: dict, passage: np.ndarray | None = None) -> None:
        """Add ``peaks`` and ``peaks_backwards`` (:func:`~search_engine.verification.peak_check`) to the claim features
        of each of ``matches`` (with ``features``, in order): the clip ``y`` against the recording
        where the match places it, read from its file at the match's offset and tempo rate (or
        ``passage``, that part of the recording already in memory); a file that cannot be read now
        is left unchecked. Does nothing unless :attr:`verifies`."""
        if not self.verifies:
            return
        from .audio import load_excerpt
        from .verification import peak_check

        t0 = time.perf_counter()
        sr = self.sample_rate_hz
        for m, f in zip(matches, features):
            seconds = len(y) / sr * (m.speed or 1.0)
            try:
                ref = passage if passage is not None else load_excerpt(m.path, m.offset_s, seconds, sr=sr)
            except DecodeError:
                continue
            share, backwards = peak_check(y, ref, sr)
            f["peaks"], f["peaks_backwards"] = round(share, 6), round(backwards, 6)
        timings["verify"] = time.perf_counter() - t0

    def _decide(self, matches: list[Match], features: list[dict], duration_s: float, library_hours: float | None = None) -> list[Match]:
        """``matched`` and ``confidence`` of each match: confidence from the model's fitted
        decision, matched when it reaches the decision's operating point (the part for matches
        checked against their recording's audio where one was); a model without one, or
        ``match_threshold`` set in config, decides by :meth:`match_threshold` instead."""
        decision = self.match_decision
        need: dict[bool, float] = {}  # one length: one operating point per part
        out = []
        for m, f in zip(matches, features):
            conf = round(claim_confidence(f, decision), 4) if decision else None
            if decision and not self.settings.match_threshold:
                checked = is_verified(f, decision)
                if checked not in need:
                    need[checked] = self.claim_threshold(duration_s, verified=checked)
                ok = conf >= need[checked]
            else:
                ok = m.distance <= self.match_threshold(duration_s, library_hours)
            out.append(dataclasses.replace(m, matched=bool(ok), confidence=conf))
        return out

    def claim_threshold(self, duration_s: float, *, verified: bool = False) -> float:
        """The confidence a claim for a clip of ``duration_s`` seconds needs (a match checked
        against its recording's audio: ``verified``): the model's operating point, or this index's
        own calibration where stricter (:mod:`search_engine.calibration`)."""
        from . import calibration

        path = self.dir / calibration.FILE_NAME
        stamp = path.stat().st_mtime_ns if path.exists() else None
        if self._calibration_stamp != stamp:  # read again when `calibrate` rewrote it
            self._calibration, self._calibration_stamp = calibration.load(self.dir) if stamp else None, stamp
        return calibration.threshold(self.match_decision, duration_s, self._calibration, self.encoder.model_id, verified=verified)

    def calibrate(self, **options):
        """Fit the claims' operating point to this index and store it (see
        :func:`search_engine.calibration.calibrate` for ``options``)."""
        from . import calibration

        result = calibration.calibrate(self, **options)
        calibration.save(result, self.dir)
        return result

    def match_threshold(self, duration_s: float, library_hours: float | None = None) -> float:
        """Largest best-alignment distance that counts as found for a clip of ``duration_s`` seconds.

        ``settings.match_threshold`` when set (not 0); else the model's calibration
        (``match_thresholds`` in its config.json): thresholds measured at a few clip lengths (a
        mean over more windows of unrelated audio varies less, so longer clips get a larger
        threshold) in libraries of a few sizes (``{hours: {seconds: threshold}}``; an unrelated
        clip finds a nearer neighbour in a larger library, so a larger library gets a smaller
        threshold), interpolated in log duration and log hours and held constant outside them;
        else 0.8 (an uncalibrated model). ``library_hours`` defaults to this index's audio.
        """
        if self.settings.match_threshold:
            return self.settings.match_threshold
        table = self.encoder.config.get("match_thresholds")
        if not table:
            return float(self.encoder.config.get("match_threshold", UNCALIBRATED_THRESHOLD))
        if not all(isinstance(t, dict) for t in table.values()):
            table = {"1": table}  # one library size
        hours = len(self.segments) * self.segment_hop_s / 3600 if library_hours is None else library_hours
        return _log_interp(hours, {h: _log_interp(duration_s, by_length) for h, by_length in table.items()})

    def _file_rows(self, ids: Iterable[int]) -> dict:
        """Catalog rows of these file ids; within one :meth:`query_batch` each row is read once
        (hundreds of clips find the same few recordings)."""
        ids = set(ids)
        cache = self._batch_files if self._batch_files is not None else {}
        missing = ids - cache.keys()
        if missing:
            cache.update(self.catalog.files_by_id(missing))
        return {i: cache[i] for i in ids if i in cache}

    def _neighbours(self, vectors: Sequence[np.ndarray], only: Selection | None = None, n: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(distances, segment ids)``, each ``[n_i, neighbours]``, of the segments nearest to each
        clip's window vectors (among the recordings ``only`` lets through): the clips of a batch
        are searched together (one FAISS call for up to :data:`SEARCH_CHUNK` windows ran twice as
        fast as one per clip)."""
        out = []
        allowed = only.segments if only is not None else None
        for part in _chunks(vectors, SEARCH_CHUNK):
            dist, ids = self.segments.search(np.concatenate(part), n or self.settings.neighbours, allowed=allowed)
            cuts = np.cumsum([len(v) for v in part])[:-1]
            out += list(zip(np.split(dist, cuts), np.split(ids, cuts)))
        return out

    def _match(
        self, q: np.ndarray, found: tuple[np.ndarray, np.ndarray], k: int, timings: dict, *, duration_s: float, level_db: float
    ) -> tuple[list[Match], list[dict]]:
        """The ``k`` recordings whose best alignment with the clip's windows ``q`` is nearest, from
        each window's nearest segments ``found`` (:meth:`_neighbours`), and each one's claim
        features (:func:`~search_engine.query.claim_features`)."""
        phases = self.settings.query_phases
        dist, ids = found
        t1 = time.perf_counter()
        rows, within = self.blocks.locate(ids)
        voted = vote_alignments(rows, within, phases=phases, candidates=self.settings.candidates)
        firsts = np.array([int(self.blocks.first_ids[row]) for row, _ in voted], dtype=np.int64)

        def distance(cand, qi, seg):
            used, at = np.unique(firsts[cand] + seg, return_inverse=True)  # a few segments, many windows
            return np.linalg.norm(q[qi] - self.segment_vectors(used)[at], axis=1)

        offsets = best_offsets([peak for _, peak in voted], distance, len(q), [int(self.blocks.counts[row]) for row, _ in voted], phases=phases)
        scored = [Alignment(row, *o) for (row, _), o in zip(voted, offsets) if o is not None]
        cand = {row: c for c, (row, _) in enumerate(voted)}
        # the nearest recordings again at other tempo rates (a clip long enough for tempo to matter)
        scored += [at_best_tempo(a, lambda qi, seg, c=cand[a.row]: distance(np.full(len(qi), c), qi, seg), len(q), int(self.blocks.counts[a.row]), phases=phases)
                   for a in best_alignment_per_recording(scored, TEMPO_RECORDINGS)]
        ranked = best_alignment_per_recording(scored, max(k, 2))  # the second recording gives the margin
        best = ranked[:k]
        files = self._file_rows(int(self.blocks.file_ids[a.row]) for a in best)
        hop_s = self.segment_hop_s / phases
        out = []
        for rank, a in enumerate(best, 1):
            f = files[int(self.blocks.file_ids[a.row])]
            out.append(Match(rank, f.path, round(a.distance, 6), round(a.start_hops(len(q)) * hop_s, 3), f.duration_s, f.id, a.windows,
                             speed=round(a.rate, 3), tags=file_tags(f)))
        dist = np.where(ids >= 0, dist, np.inf)
        background = neighbour_background(dist)
        nearest = [aligned_nearest(dist, a.offset, phases=phases, rate=a.rate) for a in ranked]
        support = [alignment_support(rows, within, a.row, a.offset, phases=phases, hop_s=hop_s) for a in ranked]
        inside = [inside_share(a.offset, a.rate, len(q), int(self.blocks.counts[a.row]), phases=phases) for a in ranked]
        features = claim_features(np.array([a.distance for a in ranked]), background=background, nearest=nearest,
                                  support=support, duration_s=duration_s, level_db=level_db, inside=inside)[: len(best)]
        timings["aggregate"] = time.perf_counter() - t1
        return out, features

    def _match_long(self, q: np.ndarray, found: tuple[np.ndarray, np.ndarray], k: int, *, level_db: float) -> tuple[list[Match], list[dict]]:
        """A long clip's spans that lie in indexed recordings, each answered as a short clip
        (:func:`~search_engine.long_queries.match_long`)."""
        from .long_queries import match_long

        phases, window_s = self.settings.query_phases, self.encoder.features.window_s
        hop_s = self.segment_hop_s / phases
        dist, ids = found
        rows = {int(f): r for r, f in enumerate(self.blocks.file_ids)}

        def answer(lo: int, hi: int):
            seconds = (hi - lo - 1) * hop_s + window_s
            m, f = self._match(q[lo:hi], (dist[lo:hi], ids[lo:hi]), k, {}, duration_s=seconds, level_db=level_db)
            return self._decide(m, f, seconds), f

        def segments(row: int) -> np.ndarray:
            return self.segment_vectors(int(self.blocks.first_ids[row]) + np.arange(int(self.blocks.counts[row])))

        return match_long(len(q), answer, segments, rows.__getitem__, q=q, phases=phases, hop_s=hop_s, window_s=window_s)

    def similar_to(self, path: str | os.PathLike, *, k: int | None = None, where=None, under=None, filter: Filter | None = None) -> QueryResult:
        """``similar`` answer for an indexed file, from its stored vectors (nothing is decoded): the
        same as ``query_batch([path], mode="similar")`` would give (the file itself first, at
        distance 0; ``where``/``under``/``filter`` as there). Raises :class:`ParameterError` if
        ``path`` is not in the index."""
        flt = as_filter(where, under, filter)
        self.refresh()
        files = self.catalog.files_by_path([path_key(path)]) or self.catalog.files_by_path([str(path)])
        if not files:
            raise ParameterError(f"{path}: not in the index")
        f = next(iter(files.values()))
        res = QueryResult(query=f.path)
        segs = self.segment_vectors(f.first_segment_id + np.arange(f.n_segments))
        v = pool(segs)
        whole = self.wholes.reconstruct(np.array([f.id], dtype=np.int64))[0] if self.whole_encoder is not None else None
        res.matches = self._similar(v, whole, k or self.settings.k, res.timings, self.selection(flt) if flt else None)
        return res

    def _similar(self, v: np.ndarray, whole: np.ndarray | None, k: int, timings: dict, only: Selection | None = None) -> list[Match]:
        """Recordings nearest to the clip's whole-sound vector ``whole`` (None: an older index,
        whose whole vectors are pooled segment vectors); each one's segment nearest to ``v``, the
        clip's pooled segment-hop window vectors (as an indexed file's segments), gives the offset."""
        t0 = time.perf_counter()
        dist, ids = self.wholes.search((v if whole is None else whole)[None], k, allowed=only.files if only is not None else None)
        t1 = time.perf_counter()
        found = [(float(d), int(i)) for d, i in zip(dist[0], ids[0]) if i >= 0]
        files = self._file_rows(i for _, i in found)
        out = []
        for rank, (d, fid) in enumerate(found, 1):
            f = files[fid]
            segs = self.segment_vectors(f.first_segment_id + np.arange(f.n_segments))
            nearest = int(np.argmin(np.linalg.norm(segs - v, axis=1))) if len(segs) else 0
            out.append(Match(rank, f.path, round(d, 6), round(nearest * self.segment_hop_s, 3), f.duration_s, f.id, 0, tags=file_tags(f)))
        timings.update(search=t1 - t0, aggregate=time.perf_counter() - t1)
        return out


def _log_interp(x: float, points: dict) -> float:
    """Piecewise-linear in log ``x`` through ``{x_i: y_i}`` (keys may be strings), constant outside."""
    xs, ys = zip(*sorted((float(k), float(v)) for k, v in points.items()))
    return float(np.interp(np.log(max(x, 1e-6)), np.log(xs), ys))


def _chunks(arrays: Sequence[np.ndarray], rows: int) -> Iterable[list[np.ndarray]]:
    """Consecutive groups of ``arrays`` of about ``rows`` rows in all (an array is never split)."""
    group, n = [], 0
    for a in arrays:
        if group and n + len(a) > rows:
            yield group
            group, n = [], 0
        group.append(a)
        n += len(a)
    if group:
        yield group
