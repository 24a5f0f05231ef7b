"""Claims: is the clip in the recording ranked first? Fit the decision, and measure it honestly.

A ``match`` query says ``"matched": true`` and a ``"confidence"`` for its first recording. This
script measures, per damage and clip length (1, 3, 10 s), how often the right recording is ranked
first (top-1) beside how often it is ranked first *and claimed* (claimed-and-right), and how many
clips from no indexed recording are claimed (false claims, with a Clopper-Pearson bound); it fits
the decision (:mod:`search_engine.decision` over :func:`search_engine.query.claim_basis`: one
logistic regression per length range, 1 s / 3 s / 10 s, or monotone boosted trees with ``--kind``;
operating points per length from out-of-fold confidences) on one set of recordings and reports on
another.

Splits (none of it used in training; the SuperTuxKart pieces split alternately in name order,
a piece's ``_fast`` variant with it):

- ``fit``: library = 120 min of held-out music21 works rendered with sf_GMbank
  (``heldout_music("calibration_library")``) + SuperTuxKart pieces 0, 2, 4, ... (recorded music);
  outsiders = 60 min of other held-out works (``"calibration_outsiders"``, less those sharing a
  tune with the library), held-out espeak-ng speech (first half), SuperTuxKart sound effects
  (recorded; files 0, 4, 8, ...).
- ``report``: library = 70 min of other held-out works (``heldout_music("library")``) +
  SuperTuxKart pieces 1, 3, 5, ...; outsiders = 30 min of other held-out works (``"outsiders"``,
  less those sharing a tune), the speech's second half, sound effects 2, 6, 10, ..., and the
  *fit* library's SuperTuxKart pieces (recorded music this library does not hold; the fit saw them
  only as library pieces, never as outsiders).
- ``report10h``: the report split's clips against its library grown to 10 hours with real-audio
  distractors (:func:`distractor_library`).
- ``--edge-per-file N`` (default 1): also N clips of each library file per length that straddle
  its start or end (10-40 % of the clip outside, silence there): in-library clips, reported apart
  (``edge_clips``) and kept out of the fit.
- ``--reversed-per-file N``: also N clips of each library file played backwards, as outsiders
  (source ``reversed``: what ``audio2vec calibrate`` makes; kept out of the fit, compared with the
  real outsiders in the report's ``calibrate_check``).

Damage, all made with tools the training code never uses (sox 14.4, ffmpeg 5.1), on 16 kHz clips:

  clean        as cut
  mp3_24k      ffmpeg libmp3lame 24 kbps            opus_12k   ffmpeg libopus 12 kbps
  vorbis_q0    ffmpeg libvorbis quality 0           quiet      -35 dB, then mp3 24 kbps
  noise10/0    SuperTuxKart sound effects (recorded; never in training; files 1, 5, 9, ... for
               fit, 3, 7, 11, ... for report), looped, at 10 / 0 dB SNR
  room_phone   sox reverb (Freeverb: reverberance 40-90 %, room scale 50-100 %), then a telephone
               band: sox sinc 300-3400 Hz, 8 kHz and back, + sound effects at 20 dB
  pitch_up/down   sox pitch ±100 cents (tempo kept)
  tempo_up/down   sox tempo ×1.05 / ×0.95 (pitch kept)
  tape_up/down    sox speed ×1.05 / ×0.95 (tape: pitch and tempo together)
  stk_fast     (report only) clips of a SuperTuxKart piece's own ``_fast`` recording. Two of the
               three are their piece played 7-8 % fast; ``jumping_to_the_stars_remake_fast`` is
               played about 6 % fast but is another edit (2 s more before the tune, about 16 s
               less in all) and sounds unlike its piece even aligned: its clips' first matches
               lie about twice as far as the other two's (``by_recording`` in the results)

Steps (features cached in ``benchmarks/.cache/claims_<split>_<model>.json``)::

    python benchmarks/claims.py collect --split fit
    python benchmarks/claims.py collect --split report
    python benchmarks/claims.py collect --split report10h
    python benchmarks/claims.py fit [--target 0.01] [--kind logistic logistic logistic] [--edges 2 5] [--basis ... / ... / ...] [--write]   # match_decision with the model
    python benchmarks/claims.py calibrate-run                   # audio2vec calibrate on the report library
    python benchmarks/claims.py report                          # results JSON + docs/claims_curve.png
    python benchmarks/claims.py cell --condition noise0 --seconds 3 --clips 400   # one cell on a sample of its own
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, REPO, STK_MUSIC, babble_speech, heldout_music, model_config_text, result_header, without_shared_music, write_result  # noqa: E402
from system import require_debian_package  # noqa: E402  (data/system.py, on the path through common)
from search_engine.audio import excerpt  # noqa: E402
from search_engine.catalog import path_key  # noqa: E402
from search_engine.query import CLAIM_BASIS, claim_basis  # noqa: E402

SR = 16000
DURATIONS = (3.0, 10.0)
CONDITIONS = ("clean", "mp3_24k", "opus_12k", "vorbis_q0", "quiet", "noise10", "noise0", "room_phone",
              "pitch_up", "pitch_down", "tempo_up", "tempo_down", "tape_up", "tape_down")
STK_SFX = STK_MUSIC.parent / "sfx"
TMP = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
RESULTS = REPO / "benchmarks" / "results" / "claims.json"
#: parts of ``claims.json`` written by steps other than ``report`` (which keeps them)
KEPT_PARTS = ("calibrate_run", "latency", "cells_apart")


# --- data ---------------------------------------------------------------------------------------

def stk_pieces() -> list[Path]:
    require_debian_package("supertuxkart-data", STK_MUSIC)
    return sorted(p for p in STK_MUSIC.glob("*.ogg") if not p.stem.endswith(("_fast", "_f")))


def stk_fast(piece: Path) -> Path | None:
    for suffix in ("_fast", "_f"):
        p = piece.with_name(piece.stem + suffix + ".ogg")
        if p.exists():
            return p
    return None


def sfx_files(part: int) -> list[Path]:
    """SuperTuxKart sound effects ``part`` (0..3: files part, part + 4, ...), duplicates dropped."""
    files, seen = [], set()
    for p in sorted(STK_SFX.glob("*.ogg")):
        size = p.stat().st_size
        if size in seen:
            continue
        seen.add(size)
        files.append(p)
    return files[part::4]


def split_data(split: str) -> dict:
    pieces = stk_pieces()
    speech = babble_speech()
    half = len(speech) // 2
    if split == "fit":
        library = heldout_music("calibration_library") + pieces[0::2]
        music_out = without_shared_music(heldout_music("calibration_outsiders"), library)
        return {"library": library, "outsiders": {"music21": music_out, "speech": speech[:half], "sfx": sfx_files(0)},
                "noise": sfx_files(1), "fast": []}
    library = heldout_music("library") + pieces[1::2]
    music_out = without_shared_music(heldout_music("outsiders"), library)
    fast = [(stk_fast(p), p) for p in pieces[1::2] if stk_fast(p) is not None]
    return {"library": library, "outsiders": {"music21": music_out, "speech": speech[half:], "sfx": sfx_files(2), "stk": pieces[0::2]},
            "noise": sfx_files(3), "fast": fast}


def distractor_library(split_library: list[Path], hours: float = 10.0) -> list[Path]:
    """Files that grow the report split's library to about ``hours`` of realistic audio, none of it
    a report outsider: the fit split's held-out music21 works (``calibration_library`` and
    ``calibration_outsiders``, same SoundFont as the library: 3 h), those works and the report
    library played backwards (written once under ``benchmarks/.cache/claims_backwards``: the same
    instruments and keys, no shared passage), and one-shot samples (:func:`common.oneshot_library`,
    LMMS and freedesktop sounds) until ``hours`` is reached."""
    from common import oneshot_library

    works = heldout_music("calibration_library") + heldout_music("calibration_outsiders")
    out_dir = CACHE / "claims_backwards"
    out_dir.mkdir(parents=True, exist_ok=True)
    files, total = list(works), 0.0
    for p in works + list(split_library):
        total += sf.info(str(p)).duration
    for p in works + list(split_library):
        dst = out_dir / f"{Path(p).stem}_backwards.wav"
        if not dst.exists():
            sf.write(str(dst), load16(p)[::-1], SR, subtype="PCM_16")
        files.append(dst)
        total += sf.info(str(dst)).duration
    for p in oneshot_library(10_000):
        if total >= hours * 3600:
            break
        files.append(p)
        total += sf.info(str(p)).duration
    print(f"distractors: {len(files)} files; library + distractors {total / 3600:.2f} h", file=sys.stderr, flush=True)
    return files


def load16(path) -> np.ndarray:
    from search_engine.audio import load

    return load(path, sr=SR)[0]


def cut(y: np.ndarray, seconds: float, n: int, rng) -> list[float]:
    if len(y) < (seconds + 0.5) * SR:
        return []
    return [float(rng.uniform(0, len(y) / SR - seconds)) for _ in range(n)]


def cut_edges(y: np.ndarray, seconds: float, n: int, rng) -> list[float]:
    """Starts (seconds) of clips that straddle the recording's start or end: 10-40 % of each clip
    lies outside it (a clip recorded a moment before a piece begins, or after it ends)."""
    if len(y) < (seconds + 0.5) * SR:
        return []
    hang = rng.uniform(0.1, 0.4, size=n) * seconds
    return [float(-h if rng.random() < 0.5 else len(y) / SR - seconds + h) for h in hang]


# --- damage -------------------------------------------------------------------------------------

def _tool(cmd_in_out, y: np.ndarray, out_ext: str = ".wav") -> np.ndarray:
    """Run ``cmd_in_out(in_path, out_path)`` (a command list) on ``y`` (16 kHz) and read the result
    back at 16 kHz mono, cut or padded to ``len(y)`` only where the damage keeps the length."""
    fd, src = tempfile.mkstemp(suffix=".wav", dir=TMP)
    os.close(fd)
    dst = src[:-4] + ".out" + out_ext
    dec = src[:-4] + ".dec.wav"
    try:
        sf.write(src, y, SR, subtype="FLOAT")
        subprocess.run(cmd_in_out(src, dst), check=True, capture_output=True)
        if out_ext != ".wav":
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", dst, "-ac", "1", "-ar", str(SR), "-c:a", "pcm_f32le", dec], check=True, capture_output=True)
            dst_read = dec
        else:
            dst_read = dst
        z, sr = sf.read(dst_read, dtype="float32", always_2d=True)
        z = z.mean(axis=1)
        if sr != SR:
            import soxr

            z = soxr.resample(z, sr, SR).astype(np.float32)
        return z
    finally:
        for p in (src, dst, dec):
            try:
                os.unlink(p)
            except OSError:
                pass


def _ffmpeg_codec(args: list[str], ext: str):
    return lambda i, o: ["ffmpeg", "-v", "error", "-y", "-i", i, *args, o]


def _sox(*effects: str):
    return lambda i, o: ["sox", "-q", i, o, *effects]


def _fit_len(z: np.ndarray, n: int) -> np.ndarray:
    return z[:n] if len(z) >= n else np.pad(z, (0, n - len(z)))


def _noise_bed(noise: list[np.ndarray], n: int, rng) -> np.ndarray:
    y = noise[int(rng.integers(len(noise)))]
    reps = int(np.ceil((n + len(y)) / max(1, len(y))))
    y = np.tile(y, reps)
    start = int(rng.integers(0, max(1, len(y) - n)))
    return y[start:start + n]


def _mix(clip: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    pc, pn = float(np.mean(clip**2)) + 1e-12, float(np.mean(noise**2)) + 1e-12
    out = clip + noise * np.sqrt(pc / pn / 10 ** (snr_db / 10))
    peak = float(np.max(np.abs(out))) or 1.0
    return (out / peak * 0.9 if peak > 0.99 else out).astype(np.float32)


CODECS = {
    "mp3_24k": (["-c:a", "libmp3lame", "-b:a", "24k"], ".mp3"),
    "opus_12k": (["-c:a", "libopus", "-b:a", "12k"], ".ogg"),
    "vorbis_q0": (["-c:a", "libvorbis", "-q:a", "0"], ".ogg"),
    "quiet": (["-af", "volume=-35dB", "-c:a", "libmp3lame", "-b:a", "24k"], ".mp3"),
}
GAP = SR // 2


def degrade_batch(cond: str, clips: list[np.ndarray], noise: list[np.ndarray], rng) -> list[np.ndarray]:
    """:func:`degrade` of many clips; codecs run once on the clips joined by 0.5 s of silence
    (ffmpeg trims the codecs' priming, so each clip comes back where it went in)."""
    if cond not in CODECS or len(clips) < 2:
        return [degrade(cond, c, noise, rng) for c in clips]
    gap = np.zeros(GAP, np.float32)
    joined = np.concatenate([x for c in clips for x in (c.astype(np.float32), gap)])
    args, ext = CODECS[cond]
    z = _fit_len(_tool(_ffmpeg_codec(args, ext), joined, ext), len(joined))
    out, pos = [], 0
    for c in clips:
        out.append(z[pos:pos + len(c)])
        pos += len(c) + GAP
    return out


def degrade(cond: str, clip: np.ndarray, noise: list[np.ndarray], rng) -> np.ndarray:
    n = len(clip)
    if cond == "clean":
        return clip
    if cond == "mp3_24k":
        return _fit_len(_tool(_ffmpeg_codec(["-c:a", "libmp3lame", "-b:a", "24k"], ".mp3"), clip, ".mp3"), n)
    if cond == "opus_12k":
        return _fit_len(_tool(_ffmpeg_codec(["-c:a", "libopus", "-b:a", "12k"], ".ogg"), clip, ".ogg"), n)
    if cond == "vorbis_q0":
        return _fit_len(_tool(_ffmpeg_codec(["-c:a", "libvorbis", "-q:a", "0"], ".ogg"), clip, ".ogg"), n)
    if cond == "quiet":
        return _fit_len(_tool(_ffmpeg_codec(["-af", "volume=-35dB", "-c:a", "libmp3lame", "-b:a", "24k"], ".mp3"), clip, ".mp3"), n)
    if cond in ("noise10", "noise0"):
        return _mix(clip, _noise_bed(noise, n, rng), 10.0 if cond == "noise10" else 0.0)
    if cond == "room_phone":
        rev, scale = int(rng.uniform(40, 90)), int(rng.uniform(50, 100))
        wet = _fit_len(_tool(_sox("gain", "-6", "reverb", str(rev), "50", str(scale), "rate", "8k", "sinc", "300-3400", "rate", "16k"), clip), n)
        return _mix(wet, _noise_bed(noise, n, rng), 20.0)
    if cond in ("pitch_up", "pitch_down"):
        return _fit_len(_tool(_sox("pitch", "100" if cond == "pitch_up" else "-100"), clip), n)
    if cond in ("tempo_up", "tempo_down"):
        return _tool(_sox("tempo", "1.05" if cond == "tempo_up" else "0.95"), clip)
    if cond in ("tape_up", "tape_down"):
        return _tool(_sox("speed", "1.05" if cond == "tape_up" else "0.95", "rate", "16k"), clip)
    raise ValueError(cond)


# --- collect ------------------------------------------------------------------------------------

def collect(split: str, model: str, per_file_in: int, per_file_out: int, seed: int, conditions, tag: str = "",
            durations=DURATIONS, reversed_per_file: int = 0, max_clips: int | None = None, distractors: list[Path] | None = None,
            edge_per_file: int = 1, out: Path | None = None, with_fast: bool = True) -> Path:
    from indexer import Indexer
    from search_engine import SearchEngine

    require_debian_package("sox", Path("/usr/bin/sox"))
    require_debian_package("ffmpeg", Path("/usr/bin/ffmpeg"))
    rng = np.random.default_rng(seed + (0 if split == "fit" else 1000))
    data = split_data("report" if split == "report10h" else split)
    if split == "report10h":
        distractors = distractor_library(data["library"])
        # outsiders sharing a tune with any distractor work are dropped too
        data["outsiders"]["music21"] = without_shared_music(data["outsiders"]["music21"], data["library"] + [p for p in distractors if p.parent.name == "music_heldout"])
    noise = [load16(p) for p in data["noise"]]
    tmp = Path(tempfile.mkdtemp(prefix="a2v_claims_"))
    records = []
    try:
        engine = SearchEngine.create(tmp / "idx", model=model)
        report = Indexer(engine, workers=1).add(data["library"] + list(distractors or []))
        lib_paths = {path_key(p) for p in data["library"] + list(distractors or [])}
        print(f"[{split}] library {report.added} files, {report.audio_s / 60:.1f} min", file=sys.stderr, flush=True)
        # clips: (kind, source, path, truth, seconds, start)
        clips = []
        for p in data["library"]:
            y = load16(p)
            src = "stk" if str(p).startswith(str(STK_MUSIC)) else "music21"
            for s in durations:
                clips += [("inside", src, path_key(p), path_key(p), s, t) for t in cut(y, s, per_file_in, rng)]
                # clips that straddle the recording's start or end (marked "edge": reported apart)
                clips += [("inside", src, path_key(p), path_key(p), s, t) for t in cut_edges(y, s, edge_per_file, rng)]
                # the library's own recordings played backwards: outsiders with the library's sound
                # (what ``audio2vec calibrate`` makes on a user's index)
                clips += [("outside", "reversed", path_key(p), None, s, t) for t in cut(y, s, reversed_per_file, rng)]
        for src, files in data["outsiders"].items():
            for p in files:
                y = load16(p)
                for s in durations:
                    clips += [("outside", src, path_key(p), None, s, t) for t in cut(y, s, per_file_out, rng)]
        audio_cache: dict[str, np.ndarray] = {}

        def audio(path):  # every file is decoded once and kept (the plan visits them in random order)
            if path not in audio_cache:
                audio_cache[path] = load16(path)
            return audio_cache[path]

        plan = [(c, cond) for cond in conditions for c in clips]
        for fast, base in data["fast"] if with_fast else []:
            y = load16(fast)
            for s in durations:
                plan += [(("inside", "stk_fast", path_key(fast), path_key(base), s, t), "stk_fast") for t in cut(y, s, per_file_in * 2, rng)]
        # random order, so that a run stopped early (every 10 batches are saved) still covers every cell
        plan = [plan[j] for j in np.random.default_rng(seed).permutation(len(plan))][:max_clips]
        out = out or CACHE / f"claims_{split}_{Path(model).name}{tag}.json"  # a model folder by its name
        out.parent.mkdir(parents=True, exist_ok=True)
        header = {"split": split, "model_id": engine.encoder.model_id, "library_hours": round(report.audio_s / 3600, 3),
                  "library_files": len(data["library"]) + len(distractors or []), "seed": seed, "planned": len(plan),
                  "data": {k: [str(p) for p in v] for k, v in data["outsiders"].items()},
                  "noise": [str(p) for p in data["noise"]]}
        t0 = time.perf_counter()
        batch_size = 32
        for b in range(0, len(plan), batch_size):
            chunk = plan[b:b + batch_size]
            waves = [None] * len(chunk)
            by_cond: dict[str, list[int]] = {}
            for j, (_, cond) in enumerate(chunk):
                by_cond.setdefault("clean" if cond == "stk_fast" else cond, []).append(j)
            for cond, js in by_cond.items():
                cl = []
                for j in js:
                    (kind, src, path, truth, s, t), _ = chunk[j]
                    piece = excerpt(audio(path), t, s, sr=SR)
                    cl.append(piece[::-1].copy() if src == "reversed" else piece)
                for j, w in zip(js, degrade_batch(cond, cl, noise, rng)):
                    waves[j] = (w, SR)
            answers = engine.query_batch(waves, k=1)
            for ((kind, src, path, truth, s, t), cond), a in zip(chunk, answers):
                top = a.matches[0] if a.matches else None
                outside_s = max(0.0, -t) + max(0.0, t + s - len(audio(path)) / SR)
                records.append({
                    "kind": kind, "source": src, "path": path, "condition": cond, "seconds": s, "start": round(t, 3),
                    **({"edge": round(outside_s / s, 3)} if outside_s > 0 else {}),
                    "right": bool(top is not None and truth is not None and top.path == truth),
                    "top_in_library": bool(top is not None and top.path in lib_paths),
                    "threshold_matched": bool(top is not None and top.distance <= engine.match_threshold(s)), "features": a.features[0] if a.features else None,
                    "speed": top.speed if top is not None else None,
                })
            if b // batch_size % 10 == 9 or b + batch_size >= len(plan):
                print(f"[{split}] {len(records)}/{len(plan)} clips, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                tmp_out = out.with_suffix(".part")
                tmp_out.write_text(json.dumps({**header, "records": records}))
                tmp_out.replace(out)
        engine.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"[{split}] wrote {out} ({len(records)} clips)", file=sys.stderr)
    return out


def calibrate_run(model: str, clips: int, split: str = "report") -> dict:
    """``audio2vec calibrate`` end to end on the report split's library: index it, calibrate (the
    engine's own call: backwards clips of the library, 1, 3 and 10 s), then judge the split's
    collected clips at the calibrated operating points. Stored in ``benchmarks/results/claims.json``
    under ``calibrate_run`` (kept by later ``report`` runs)."""
    from indexer import Indexer
    from search_engine import SearchEngine
    from search_engine.calibration import threshold as calibrated

    data = split_data(split)
    tmp = Path(tempfile.mkdtemp(prefix="a2v_claims_cal_"))
    try:
        with SearchEngine.create(tmp / "idx", model=model) as engine:
            Indexer(engine, workers=1).add(data["library"])
            t0 = time.perf_counter()
            cal = engine.calibrate(clips=clips, on_progress=lambda d, n, _: print(f"[calibrate] {d}/{n}", file=sys.stderr, flush=True) if d % 640 == 0 else None)
            seconds = time.perf_counter() - t0
            decision, model_id = engine.match_decision, engine.encoder.model_id
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rec = [r for r in load_split(split, model)["records"] if r["features"] is not None and "edge" not in r]
    conf = confidences(rec, decision)
    from search_engine.query import claim_threshold, is_verified

    checked = np.array([is_verified(r["features"], decision) for r in rec])  # judged by the part for checked matches
    out = {"command": f"python benchmarks/claims.py calibrate-run --clips {clips}", "split": split, "seconds": round(seconds, 1),
           "calibration": cal.as_dict(), "clips": {}}
    for d in sorted({r["seconds"] for r in rec}):
        m = np.array([r["seconds"] == d for r in rec])
        inside = np.array([r["kind"] == "inside" for r in rec]) & m
        outside = ~np.array([r["kind"] == "inside" for r in rec]) & m & np.array([r["source"] != "reversed" for r in rec])
        right = np.array([r["right"] for r in rec])
        for name, need in (("model", lambda v: claim_threshold(decision, d, verified=v)), ("calibrated", lambda v: calibrated(decision, d, cal, model_id, verified=v))):
            t = np.where(checked, need(True), need(False))
            claimed = conf >= t
            out["clips"].setdefault(f"{d:g}s", {})[name] = {
                "threshold": round(float(np.median(t[m])), 4), "claimed_right": round(float(np.mean(claimed[inside] & right[inside])), 4),
                "false_claims": round(float(claimed[outside].mean()), 4), "outsiders": int(outside.sum())}
    print(json.dumps(out, indent=1), file=sys.stderr)
    _keep_in_results(lambda res: res.update(calibrate_run=out))
    return out


def _keep_in_results(change) -> None:
    """Apply ``change(results dict)`` to ``benchmarks/results/claims.json`` in place."""
    res = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    change(res)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")


# --- fit ----------------------------------------------------------------------------------------

def load_split(split: str, model: str) -> dict | None:
    """The collected clips of a split: its first run and any tagged runs (``--tag``) merged.

    A tagged run is ``claims_<split>_<model><tag>.json``, so another model's caches can share that
    prefix (``m5`` and ``m50``); only runs made with the first run's weights (its ``model_id``) join."""
    name = Path(model).name
    first = CACHE / f"claims_{split}_{name}.json"
    if not first.exists():
        return None
    base = json.loads(first.read_text())
    runs, paths = [base], [first]
    for p in sorted(CACHE.glob(f"claims_{split}_{name}_*.json")):
        run = json.loads(p.read_text())
        if run.get("model_id") == base.get("model_id"):
            runs.append(run)
            paths.append(p)
    return {**runs[0], "records": [r for run in runs for r in run["records"]],
            "runs": [{"cache": p.name, "seed": run.get("seed"), "clips": len(run["records"])} for p, run in zip(paths, runs)]}


def _xy(records, basis=CLAIM_BASIS) -> tuple[np.ndarray, np.ndarray, list]:
    rec = [r for r in records if r["features"] is not None]
    X = np.stack([claim_basis(r["features"], basis) for r in rec])
    y = np.array([r["kind"] == "inside" and r["right"] for r in rec], dtype=np.float64)
    return X, y, rec


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, weights: np.ndarray | None = None) -> dict:
    """L2-regularised logistic regression (scipy L-BFGS) on standardised inputs."""
    from scipy.optimize import minimize

    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 1e-3, scale, 1.0)  # a constant input (one clip length) is left as it is
    Z = (X - mean) / scale
    w = np.ones(len(y)) if weights is None else weights
    w = w / w.mean()

    def loss(theta):
        b, c = theta[0], theta[1:]
        z = Z @ c + b
        p = 1 / (1 + np.exp(-z))
        nll = np.sum(w * (np.logaddexp(0, z) - y * z)) / len(y) + l2 * np.dot(c, c) / 2
        g = w * (p - y) / len(y)
        return nll, np.concatenate([[g.sum()], Z.T @ g + l2 * c])

    res = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B")
    return {"mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(), "coef": res.x[1:].round(6).tolist(), "intercept": round(float(res.x[0]), 6)}


def confidences(records, decision) -> np.ndarray:
    from search_engine.query import claim_confidence

    return np.array([claim_confidence(r["features"], decision) if r["features"] is not None else 0.0 for r in records])


def needs(records, decision) -> np.ndarray:
    """The confidence each collected clip's claim needs: the decision's operating point for its
    length (:func:`search_engine.query.claim_threshold`), checked against its recording or not."""
    from search_engine.query import claim_threshold, is_verified

    return np.array([claim_threshold(decision, r["features"]["duration_s"], verified=is_verified(r["features"], decision)) for r in records])


def model_config(model: str) -> dict:
    """A model's config.json (``model``: a bundled name or a folder)."""
    from search_engine.audio2vec.encoder import resolve_model_dir

    return json.loads((resolve_model_dir(model) / "config.json").read_text())


def shipped_decision(model: str) -> dict:
    """The ``match_decision`` in a model's config.json."""
    return model_config(model)["match_decision"]


def operating_point(conf_out: np.ndarray, target: float, conf_right: np.ndarray | None = None) -> float:
    """The confidence a claim needs: the smallest threshold at which at most ``target`` of the
    outsiders are claimed; given ``conf_right`` (the confidences of the in-library clips ranked
    right), raised to where claimed-right minus claimed outsiders is largest (the highest such
    threshold): an outsider claimed must buy at least one more right claim, so the target is a
    ceiling, not a budget to spend where the right clips are claimed anyway."""
    c = np.sort(conf_out)[::-1]
    allowed = int(np.floor(target * len(c)))
    low = 0.0 if allowed >= len(c) else float(np.nextafter(c[allowed], 1.0))  # the allowed-th outsider and below are refused
    if conf_right is None or not len(c):
        return low
    # raising the threshold just past an outsider refuses it: those are the thresholds worth trying
    tried = np.unique(np.concatenate([[low], np.nextafter(c[c >= low], 1.0)]))
    gain = (conf_right[None, :] >= tried[:, None]).sum(axis=1) - (c[None, :] >= tried[:, None]).sum(axis=1)
    return float(tried[np.flatnonzero(gain == gain.max())[-1]])


#: the sign of each basis input's effect on the trees' log-odds (monotone constraints: a nearer,
#: more distinct, better aligned match, lying more inside its recording, never lowers the confidence)
MONOTONE = {"distance": -1, "margin": 1, "relative": -1, "agree": 1, "spread_s": -1, "log_duration": 0, "level_db": 0, "excess": -1,
            "distance*log_duration": -1, "margin*log_duration": 1, "agree*log_duration": 1, "inside": 1, "peaks^16": 1, "peaks_backwards^16": -1}
#: the inputs ``fit`` uses unless told (``--basis``), per part (1 s, 3 s, 10 s; the last repeats):
#: for 3 s clips the distance relative to the library's own neighbourhood without the raw
#: distance, its length products or level (chosen out of fold on the fit split: 3 s
#: claimed-and-right 0.968 against 0.958 with every input; 1 s and 10 s lost with it)
FIT_BASIS = CLAIM_BASIS + ("inside",)
FIT_BASES = (FIT_BASIS, ("margin", "relative", "spread_s", "excess", "inside"), FIT_BASIS)
#: ``fit --verified``: the inputs of the part for matches checked against their recording's audio:
#: FIT_BASES and, from 3 s on, ``peaks^16`` (:mod:`search_engine.verification`; out of fold on the
#: fit split, noise 0 dB at 3 s claimed 0.903 with it, 0.898 with the 8th power, 0.885 with
#: -log(1 - peaks) and 0.867 with the plain share, against 0.854 without). 1 s clips keep their
#: inputs: a 1 s clip is often one held chord, whose peaks another piece ending on that chord (or
#: the clip's own recording played backwards) has too; with the check the 1 s part claimed 0.29
#: instead of 0.18 of the fit clips but 2.9 % of the backwards ones instead of 1.7 %, and on the
#: report split 1.6 % of all outsider clips instead of 0.5 % (docs/model.md, the fifth round)
#: ``peaks_backwards^16`` joined in the sixth round (the share with the passage's peaks backwards:
#: six of the eleven outsider clips the fifth round claimed at 3 s on the report split were one
#: held chord, whose peaks are the same either way). On the fit split, 3 s out of fold, noise 0 dB
#: claimed-and-right at 5 / 10 / 20 / 30 outsider clips claimed of 3,011: 0.836 / 0.898 / 0.898 /
#: 0.916 with it, 0.823 / 0.894 / 0.903 / 0.912 without (docs/model.md, the sixth round)
VERIFIED_INPUTS = ("peaks^16", "peaks_backwards^16")
VERIFIED_BASES = (FIT_BASES[0], FIT_BASES[1] + VERIFIED_INPUTS, FIT_BASES[2] + VERIFIED_INPUTS)


def part_bases(names) -> list[tuple]:
    """``--basis`` words as one basis per part: parts separated by ``/`` (the last repeats)."""
    parts, cur = [], []
    for w in list(names) + ["/"]:
        if w == "/":
            if cur:
                parts.append(tuple(cur))
            cur = []
        else:
            cur.append(w)
    return parts


def _trees(basis, seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # small on purpose: 100 trees of depth 3, evaluated in numpy at query time
    return HistGradientBoostingClassifier(max_depth=3, max_iter=100, learning_rate=0.1, monotonic_cst=[MONOTONE[b] for b in basis],
                                          min_samples_leaf=20, random_state=seed)


def out_of_fold(X: np.ndarray, y: np.ndarray, w: np.ndarray, groups: np.ndarray, kind: str, basis, folds: int = 5) -> np.ndarray:
    """Confidence of each clip from a decision fitted without the clips of its own recording
    (``groups``: folds by recording), so that the operating point is chosen on clips the decision
    did not learn from (trees fit their own training clips far too well)."""
    from search_engine.decision import log_odds, probability

    uniq = np.unique(groups)
    fold_of = {g: j % folds for j, g in enumerate(np.random.default_rng(0).permutation(uniq))}
    f = np.array([fold_of[g] for g in groups])
    conf = np.zeros(len(y))
    for j in range(folds):
        tr, te = f != j, f == j
        d = _fit_decision(X[tr], y[tr], w[tr], kind, basis)
        conf[te] = [probability(log_odds(x, d)) for x in X[te]]
    return conf


def _fit_decision(X, y, w, kind: str, basis) -> dict:
    from search_engine.decision import trees_from_sklearn

    if kind == "logistic":
        d = {"kind": "logistic", **fit_logistic(X, y.astype(np.float64), weights=w)}
    else:
        d = trees_from_sklearn(_trees(basis).fit(X, y.astype(int), sample_weight=w))
    return {**d, "basis": list(basis)}


def _fit_part(X, y, rec, kind: str, target: float, per_length: bool, basis) -> tuple[dict, np.ndarray]:
    """One decision over these clips and its operating point(s); also its out-of-fold confidences."""
    outside = np.array([r["kind"] == "outside" for r in rec])
    # outsiders and insiders weigh the same in total, whatever their counts
    w = np.where(outside, 0.5 / outside.mean(), 0.5 / (1 - outside.mean()))
    oof = out_of_fold(X, y, w, np.array([r["path"] for r in rec]), kind, basis)
    decision = _fit_decision(X, y, w, kind, basis)
    seconds = np.array([r["seconds"] for r in rec])
    # the operating point: the confidence that at most ``target`` of the fit outsiders reach, each
    # judged by a decision fitted without its recording
    right = ~outside & (y == 1)
    decision["threshold"] = float(np.ceil(operating_point(oof[outside], target, oof[right]) * 1e6) / 1e6)
    if per_length and len(set(seconds.tolist())) > 1:
        decision["thresholds"] = {f"{d:g}": float(np.ceil(operating_point(oof[outside & (seconds == d)], target, oof[right & (seconds == d)]) * 1e6) / 1e6)
                                  for d in sorted(set(seconds.tolist()))}
    return decision, oof


def fit(model: str, target: float, write: bool, kinds=("logistic", "logistic", "logistic"), per_length: bool = True, edges: tuple = (2.0, 5.0), bases=FIT_BASES,
        verified: bool = False) -> dict:
    """Fit the claim decision on the fit split: one part per length range (``edges``, seconds),
    part ``j`` of kind ``kinds[j]`` over inputs ``bases[j]`` (the last of each repeats), each with
    its operating point(s).

    ``verified``: fit the part for matches checked against their recording's audio instead (a part
    whose inputs include ``peaks`` learns from the clips that have it; a part whose inputs leave the
    check out is the present decision's own), and keep the model's present decision (or its
    ``unverified`` part) for matches not checked: the result is a ``"verified"`` decision
    (:mod:`search_engine.decision`)."""
    from search_engine.query import claim_threshold

    from search_engine.audio2vec.encoder import resolve_model_dir

    fit_data = load_split("fit", model)
    # backwards clips of the library are kept out: they stand in for outsiders in ``audio2vec
    # calibrate`` and are checked against the real ones in ``report``; a held chord played backwards
    # is still nearly itself, so they would set the model's point for clips it never meets
    rec = [r for r in fit_data["records"] if r["source"] != "reversed" and "edge" not in r and r["features"] is not None]
    y = np.array([r["kind"] == "inside" and r["right"] for r in rec], dtype=np.float64)
    outside = np.array([r["kind"] == "outside" for r in rec])
    seconds = np.array([r["seconds"] for r in rec])
    oof = np.zeros(len(rec))
    bounds = [0.0, *edges, np.inf]
    parts = []
    kinds, bases = list(kinds), [tuple(b) for b in bases]
    # a part whose inputs use the check against the recording learns from the clips that have it
    uses_check = np.array([any(b.startswith("peaks") for b in bases[min(j, len(bases) - 1)]) for j in range(len(bounds) - 1)])
    checked = np.array([r["features"].get("peaks") is not None for r in rec])
    if verified:  # a part the check does not enter stays the present decision's (the same clips would fit it again)
        present = shipped_decision(model)
        present = present["unverified"] if present.get("kind") == "verified" else present
        if not uses_check.all() and present.get("edges_s") != list(edges):
            raise SystemExit(f"fit --verified keeps the present decision's parts without peaks; its edges {present.get('edges_s')} are not {list(edges)}")
    for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if verified and not uses_check[j]:
            parts.append(present["parts"][j])
            continue
        m = (seconds >= lo) & (seconds < hi) & (checked | ~uses_check[j])
        part_rec, basis = [r for r, k in zip(rec, m) if k], bases[min(j, len(bases) - 1)]
        d, oof[m] = _fit_part(_xy(part_rec, basis)[0], y[m], part_rec, kinds[min(j, len(kinds) - 1)], target, per_length, basis)
        parts.append(d)
    decision = parts[0] if not edges else {"kind": "by_length", "edges_s": list(edges), "parts": parts}
    fitted = uses_check[np.searchsorted(edges, seconds, side="right")]
    keep = (checked & fitted) | ~(fitted | np.array(verified))  # the figures below: the clips of the parts fitted here
    rec, y, outside, seconds, oof = [r for r, k in zip(rec, keep) if k], y[keep], outside[keep], seconds[keep], oof[keep]
    lengths = sorted(set(seconds.tolist()))
    need = np.array([claim_threshold(decision, r["seconds"]) for r in rec])
    claimed = oof >= need
    print(f"fit ({' '.join(kinds)}, edges {list(edges)}): {len(rec)} clips ({outside.sum()} outsiders): out-of-fold false claims {claimed[outside].mean():.4f}, "
          f"claimed-and-right {np.mean(claimed[~outside] & y[~outside].astype(bool)):.4f} (top-1 {y[~outside].mean():.4f})", file=sys.stderr)
    for d in lengths:
        m = seconds == d
        print(f"  {d:g} s: confidence >= {claim_threshold(decision, d):.4f}; outsiders {int((outside & m).sum())}, false claims {claimed[outside & m].mean():.4f}, "
              f"claimed-and-right {np.mean(claimed[~outside & m] & y[~outside & m].astype(bool)):.4f} (top-1 {y[~outside & m].mean():.4f})", file=sys.stderr)
    decision["target_false_claims"] = target
    decision["fit"] = {"command": f"python benchmarks/claims.py fit --kind {' '.join(kinds)} --edges {' '.join(f'{e:g}' for e in edges)} --basis {' / '.join(' '.join(b) for b in bases)}" + ("" if per_length else " --one-point")
                       + f" --target {target}" + (" --verified" if verified else "") + (" --write" if write else ""),
                       "data": "benchmarks/claims.py split 'fit' (see its docstring)", "clips": len(rec),
                       "outsiders": int(outside.sum()), "outsiders_per_length": {f"{d:g}": int((outside & (seconds == d)).sum()) for d in lengths},
                       "library_hours": fit_data["library_hours"],
                       "operating_point": "per part and length: at most the target of the fit outsiders claimed, each judged by a decision fitted without its recording (5 folds by recording), "
                                          "then raised to where claimed-right minus claimed outsiders is largest",
                       "false_claims_out_of_fold": round(float(claimed[outside].mean()), 4),
                       "claimed_right_out_of_fold": round(float(np.mean(claimed[~outside] & y[~outside].astype(bool))), 4)}
    if verified:
        decision = {"kind": "verified", "verified": decision, "unverified": present}
    if write:
        cfg_path = resolve_model_dir(model) / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["match_decision"] = decision
        cfg_path.write_text(model_config_text(cfg))
        print(f"wrote match_decision to {cfg_path}", file=sys.stderr)
    return decision


# --- report -------------------------------------------------------------------------------------

def _cells(rec, claimed, old) -> dict:
    cells = {}
    keys = sorted({(r["condition"], r["seconds"]) for r in rec}, key=lambda k: (k[1], (CONDITIONS + ("stk_fast",)).index(k[0])))
    for cond, s in keys:
        ins = [j for j, r in enumerate(rec) if r["condition"] == cond and r["seconds"] == s and r["kind"] == "inside"]
        out = [j for j, r in enumerate(rec) if r["condition"] == cond and r["seconds"] == s and r["kind"] == "outside"]
        right = np.array([rec[j]["right"] for j in ins])
        c = {"queries": len(ins), "top1": round(float(right.mean()), 4) if ins else None,
             "claimed_right": round(float(np.mean(right & claimed[ins])), 4) if ins else None,
             "claimed_right_threshold": round(float(np.mean(right & old[ins])), 4) if ins else None,
             "claimed_wrong": round(float(np.mean(~right & claimed[ins])), 4) if ins else None}
        if out:
            c.update(outsiders=len(out), false_claims=round(float(np.mean(claimed[out])), 4),
                     false_claims_threshold=round(float(np.mean(old[out])), 4))
        if cond == "stk_fast":
            c["by_recording"] = _by_recording([rec[j] for j in ins], claimed[ins])
        cells[f"{cond}/{s:g}s"] = c
    return cells


def _by_recording(rec, claimed) -> dict:
    """Top-1 and claimed-and-right per recording the clips were cut from, with the median
    distance and tempo rate (``speed``) of their first matches: the ``_fast`` recordings are not
    all their piece played fast (see the module docstring)."""
    names = [Path(r["path"]).name for r in rec]
    out = {}
    for name in sorted(set(names)):
        js = [j for j, n in enumerate(names) if n == name]
        right = np.array([rec[j]["right"] for j in js])
        speeds = [rec[j]["speed"] for j in js if rec[j].get("speed") is not None]
        out[name] = {"queries": len(js), "top1": round(float(right.mean()), 4), "claimed_right": round(float(np.mean(right & claimed[js])), 4),
                     "median_distance": round(float(np.median([rec[j]["features"]["distance"] for j in js])), 3),
                     **({"median_speed": round(float(np.median(speeds)), 3)} if speeds else {})}
    return out


def report(model: str, plot: bool) -> dict:
    decision = shipped_decision(model)
    fitted = _last_fitted(decision)
    out = {**result_header("claims", command="python benchmarks/claims.py collect --split fit; ... collect --split report; ... fit --write; ... report"),
           "operating_point": _points(fitted), "target_false_claims": fitted["target_false_claims"], "splits": {}}
    if fitted is not decision:  # the part for unchecked matches: the decision before the check
        out["operating_point_unverified"] = _points(decision["unverified"])
    curves = {}
    for split in ("fit", "report", "report10h"):
        data = load_split(split, model)
        if data is None:
            continue
        rec = [r for r in data["records"] if r["features"] is not None]
        edge = [r for r in rec if "edge" in r]  # clips straddling a recording's start or end: apart
        rec = [r for r in rec if "edge" not in r]
        lengths = sorted({r["seconds"] for r in rec})
        conf = confidences(rec, decision)
        need = needs(rec, decision)
        claimed = conf >= need
        old = np.array([r["threshold_matched"] for r in rec])
        inside = np.array([r["kind"] == "inside" for r in rec])
        right = np.array([r["right"] for r in rec])
        s = out["splits"][split] = {
            "library_hours": data["library_hours"], "library_files": data["library_files"], "model_id": data["model_id"],
            "runs": data["runs"],
            "outsiders": int((~inside).sum()), "inside_clips": int(inside.sum()),
            "outsiders_per_length": {f"{d:g}s": int(sum(1 for r in rec if r["kind"] == "outside" and r["seconds"] == d)) for d in lengths},
            "outsiders_by_source": {k: int(sum(1 for r in rec if r["kind"] == "outside" and r["source"] == k)) for k in sorted({r["source"] for r in rec if r["kind"] == "outside"})},
            "top1": round(float(right[inside].mean()), 4),
            "claimed_right": round(float(np.mean(right[inside] & claimed[inside])), 4),
            "claimed_right_threshold": round(float(np.mean(right[inside] & old[inside])), 4),
            "false_claims": round(float(claimed[~inside].mean()), 4), "false_claims_n": int(claimed[~inside].sum()),
            "false_claims_upper95": round(_upper95(int(claimed[~inside].sum()), int((~inside).sum())), 4),
            "false_claims_threshold": round(float(old[~inside].mean()), 4),
            "per_length": {}, "cells": _cells(rec, claimed, old),
        }
        src = np.array([r["source"] for r in rec])
        s["false_claims_by_source"] = {k: {"clips": int((~inside & (src == k)).sum()), "claimed": int((claimed & ~inside & (src == k)).sum()),
                                           "upper95": round(_upper95(int((claimed & ~inside & (src == k)).sum()), int((~inside & (src == k)).sum())), 4)}
                                       for k in sorted(set(src[~inside].tolist()))}
        if edge:
            e_claimed = confidences(edge, decision) >= needs(edge, decision)
            e_right = np.array([r["right"] for r in edge])
            e_secs = np.array([r["seconds"] for r in edge])
            s["edge_clips"] = {f"{d:g}s": {"queries": int((e_secs == d).sum()), "top1": round(float(e_right[e_secs == d].mean()), 4),
                                            "claimed_right": round(float(np.mean(e_right[e_secs == d] & e_claimed[e_secs == d])), 4)}
                               for d in sorted(set(e_secs.tolist()))}
        if (src == "reversed").any():
            s["calibrate_check"] = _calibrate_check(rec, conf, need, inside, right, src, fitted["target_false_claims"])
        for d in lengths:
            m_in = inside & np.array([r["seconds"] == d for r in rec])
            m_out = ~inside & np.array([r["seconds"] == d for r in rec])
            s["per_length"][f"{d:g}s"] = {"top1": round(float(right[m_in].mean()), 4), "claimed_right": round(float(np.mean(right[m_in] & claimed[m_in])), 4),
                                         "false_claims": round(float(claimed[m_out].mean()), 4), "outsiders": int(m_out.sum()),
                                         "false_claims_n": int(claimed[m_out].sum()), "false_claims_upper95": round(_upper95(int(claimed[m_out].sum()), int(m_out.sum())), 4),
                                         "claimed_right_threshold": round(float(np.mean(right[m_in] & old[m_in])), 4), "false_claims_threshold": round(float(old[m_out].mean()), 4)}
        secs_all = np.array([r["seconds"] for r in rec])
        m_in, m_out = inside & (secs_all >= 3), ~inside & (secs_all >= 3)  # the issue's own lengths
        s["per_length"]["3s_and_10s"] = {"top1": round(float(right[m_in].mean()), 4), "claimed_right": round(float(np.mean(right[m_in] & claimed[m_in])), 4),
                                         "false_claims": round(float(claimed[m_out].mean()), 4), "outsiders": int(m_out.sum()),
                                         "false_claims_n": int(claimed[m_out].sum()), "false_claims_upper95": round(_upper95(int(claimed[m_out].sum()), int(m_out.sum())), 4),
                                         "claimed_right_threshold": round(float(np.mean(right[m_in] & old[m_in])), 4), "false_claims_threshold": round(float(old[m_out].mean()), 4)}
        # the curve: claimed-and-right against false claims as every length's operating point moves
        # together (in log-odds: score 0 is the shipped point)
        def logit(p):
            p = np.clip(p, 1e-9, 1 - 1e-9)
            return np.log(p / (1 - p))

        score = logit(conf) - logit(need)
        secs = np.array([r["seconds"] for r in rec])
        for d in lengths:  # one curve per split and clip length
            m = secs == d
            if split == "fit" or not (inside & m).any() or not (~inside & m).any():
                continue
            pl = s["per_length"][f"{d:g}s"]
            curves[f"{split}, {d:g} s"] = _curve(score[m], inside[m], right[m]) + (pl["false_claims"], pl["claimed_right"], pl["top1"])
        print(_table(split, s), file=sys.stderr)
    out["decision_us_per_match"] = _decision_time(decision)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out.update({k: kept[k] for k in KEPT_PARTS if k in kept})
    write_result("claims", out)
    if plot and curves:
        _plot(curves, _points(fitted))
    return out


def cell(model: str, split: str, condition: str, seconds: float, clips: int, seed: int) -> dict:
    """One cell (a damage at one clip length) measured on a sample of its own, for a figure the
    split's mixed sample holds too few clips of: ``clips`` in-library clips (no outsiders, no
    edge clips), cached apart (``claims_cell_<split>_<condition>_<seconds>s_<model>_<seed>.json``,
    not merged into the split) and judged by the model's decision (``match_decision`` in its
    config.json). Top-1 and claimed-and-right with two-sided 95 % Clopper-Pearson intervals,
    stored in ``benchmarks/results/claims.json`` under ``cells_apart`` (kept by later ``report``
    runs; a model other than ``default`` by its folder's name after the cell's)."""
    data = split_data("report" if split == "report10h" else split)
    fast = condition == "stk_fast"  # clips of the SuperTuxKart pieces' own fast recordings (report only)
    if fast and not data["fast"]:
        raise SystemExit(f"the {split} split has no fast recordings (stk_fast is a report cell)")
    per_file = -(-clips // (2 * len(data["fast"]))) if fast else -(-clips // len(data["library"]))
    cache = CACHE / f"claims_cell_{split}_{condition}_{seconds:g}s_{Path(model).name}_{seed}.json"
    cfg = model_config(model)
    # a cache of other weights under the same name (the default before a new one shipped) is made again
    if not cache.exists() or json.loads(cache.read_text()).get("model_id") != cfg["model_id"]:
        collect(split, model, per_file, 0, seed, [] if fast else [condition], durations=[seconds], max_clips=clips, edge_per_file=0,
                out=cache, with_fast=fast)
    collected = json.loads(cache.read_text())
    rec = [r for r in collected["records"] if r["features"] is not None and r["kind"] == "inside"]
    decision = cfg["match_decision"]
    right = np.array([r["right"] for r in rec])
    claimed = confidences(rec, decision) >= needs(rec, decision)
    key = f"{split}/{condition}/{seconds:g}s" + ("" if model == "default" else f" {Path(model).name}")
    res = {"model_id": collected["model_id"], "queries": len(rec), "seed": seed, "top1": round(float(right.mean()), 4), "top1_95": _interval95(int(right.sum()), len(rec)),
           "claimed_right": round(float(np.mean(right & claimed)), 4), "claimed_right_95": _interval95(int((right & claimed).sum()), len(rec)),
           "command": f"python benchmarks/claims.py cell --split {split} --condition {condition} --seconds {seconds:g} --clips {clips} --seed {seed}"
                      + ("" if model == "default" else f" --model {model}")}
    print(f"{key}: {len(rec)} clips, top-1 {res['top1']:.4f} {res['top1_95']}, claimed-and-right {res['claimed_right']:.4f} {res['claimed_right_95']}", file=sys.stderr)
    if fast:
        res["by_recording"] = _by_recording(rec, claimed)
        for name, r in res["by_recording"].items():
            print(f"  {name}: {r}", file=sys.stderr)
    _keep_in_results(lambda results: results.setdefault("cells_apart", {}).update({key: res}))
    return res


def _interval95(k: int, n: int) -> list[float]:
    """Two-sided 95 % Clopper-Pearson interval of a rate seen ``k`` times in ``n``: ``[low, high]``."""
    from scipy.stats import beta

    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return [round(low, 4), round(high, 4)]


def _decision_time(decision: dict, n: int = 2000) -> float:
    """Median over 5 runs of the time (microseconds) to decide one match: confidence and the
    operating point for its length (what the decision adds to a query)."""
    from search_engine.query import claim_confidence, claim_threshold, is_verified

    f = {"distance": 0.4, "margin": 0.2, "relative": 0.6, "agree": 0.7, "spread_s": 0.1, "duration_s": 3.0, "level_db": -20.0, "excess": 0.05, "peaks": 0.9, "peaks_backwards": 0.7}
    checked = is_verified(f, decision)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            claim_confidence(f, decision) >= claim_threshold(decision, 3.0, verified=checked)
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return round(float(np.median(runs)), 1)


def _last_fitted(decision: dict) -> dict:
    """The decision ``fit`` made last: a ``"verified"`` decision's ``verified`` part (``fit
    --verified``), else the decision itself."""
    return decision["verified"] if decision.get("kind") == "verified" else decision


def _points(decision: dict) -> dict:
    """The confidence a claim needs, per clip length the benchmark collects (1 s, ``DURATIONS``)."""
    from search_engine.decision import part

    lengths = sorted({1.0, *DURATIONS})
    out = {}
    for d in lengths:
        p = part(decision, d)
        out[f"{d:g}"] = float(p.get("thresholds", {}).get(f"{d:g}", p.get("threshold", float("nan"))))
    return out


def _calibrate_check(rec, conf, need, inside, right, src, target) -> dict:
    """What ``audio2vec calibrate`` would do on this library: per length, the operating point that
    claims at most ``target`` of the backwards clips (never below the model's), and the real
    outsiders (every other source) and in-library clips claimed at it."""
    from search_engine.calibration import operating_point

    out = {}
    secs = np.array([r["seconds"] for r in rec])
    for d in sorted(set(secs.tolist())):
        m = secs == d
        back, real = m & (src == "reversed"), m & ~inside & (src != "reversed")
        if not back.any():
            continue
        own = float(np.median(need[m]))
        t = max(own, operating_point(conf[back], target))
        out[f"{d:g}s"] = {"backwards_clips": int(back.sum()), "backwards_claimed_at_model_point": round(float(np.mean(conf[back] >= need[back])), 4),
                          "real_outsiders": int(real.sum()), "real_claimed_at_model_point": round(float(np.mean(conf[real] >= need[real])), 4),
                          "calibrated_threshold": round(t, 4), "model_threshold": round(own, 4),
                          "real_claimed_at_calibrated": round(float(np.mean(conf[real] >= t)), 4),
                          "claimed_right_at_model_point": round(float(np.mean((conf >= need)[m & inside] & right[m & inside])), 4),
                          "claimed_right_at_calibrated": round(float(np.mean((conf >= t)[m & inside] & right[m & inside])), 4)}
    return out


def _curve(score: np.ndarray, inside: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of outsiders claimed and of in-library clips claimed and right, as the operating point
    moves (``score``: log-odds over the operating point; 0 is the shipped point), strictest first."""
    ts = np.unique(np.concatenate([score, [0.0]]))
    o_sorted = np.sort(score[~inside])
    fc = 1 - np.searchsorted(o_sorted, ts, side="left") / len(o_sorted)
    i_conf, i_right = score[inside], right[inside]
    order = np.argsort(i_conf)
    ic_sorted, rr = i_conf[order], np.cumsum(i_right[order][::-1])[::-1]
    pos = np.searchsorted(ic_sorted, ts, side="left")
    cr = np.where(pos < len(rr), rr[np.minimum(pos, len(rr) - 1)], 0) / len(i_conf)
    order = np.argsort(-ts, kind="stable")  # both rates only grow
    return fc[order], cr[order]


def _upper95(k: int, n: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of a rate seen ``k`` times in ``n``."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(0.95, k + 1, n - k))


def _table(split: str, s: dict) -> str:
    lines = [f"[{split}] library {s['library_files']} files ({s['library_hours']} h); {s['outsiders']} outsider clips {s['outsiders_by_source']}",
             f"overall: top-1 {s['top1']:.4f}  claimed-and-right {s['claimed_right']:.4f} (distance threshold: {s['claimed_right_threshold']:.4f})  "
             f"false claims {s['false_claims_n']}/{s['outsiders']} = {s['false_claims']:.4f}, 95 % upper bound {s['false_claims_upper95']:.4f} (threshold: {s['false_claims_threshold']:.4f})",
             "per length: " + "; ".join(f"{k}: top-1 {v['top1']:.4f}, claimed-and-right {v['claimed_right']:.4f}, false claims {v['false_claims_n']}/{v['outsiders']} (95 % upper bound {v['false_claims_upper95']:.4f})" for k, v in s["per_length"].items()),
             f"{'cell':<18}{'n':>5}{'top1':>8}{'claimed':>9}{'thresh':>8}{'out':>6}{'false':>8}{'f.thr':>8}"]
    for key, c in s["cells"].items():
        lines.append(f"{key:<18}{c['queries']:>5}{c['top1'] if c['top1'] is not None else float('nan'):>8.3f}{c['claimed_right'] if c['claimed_right'] is not None else float('nan'):>9.3f}"
                     f"{c['claimed_right_threshold'] if c['claimed_right_threshold'] is not None else float('nan'):>8.3f}{c.get('outsiders', 0):>6}"
                     f"{c.get('false_claims', float('nan')):>8.3f}{c.get('false_claims_threshold', float('nan')):>8.3f}")
    if s.get("edge_clips"):
        lines.append("clips straddling a recording's start or end: " + "; ".join(f"{k}: {v['queries']} clips, top-1 {v['top1']:.4f}, claimed-and-right {v['claimed_right']:.4f}" for k, v in s["edge_clips"].items()))
    return "\n".join(lines)


def _plot(curves: dict, threshold) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 5.0))
    for n, (name, (fc, cr, f0, c0, top1)) in enumerate(curves.items()):
        line, = ax.plot(fc * 100, cr, drawstyle="steps-post", label=f"{name}: top-1 {top1:.3f}, shipped {c0:.3f} at {f0 * 100:.2f} %",
                        ls="-" if "10h" not in name else "--")
        ax.axhline(top1, color=line.get_color(), lw=0.6, ls=":")
        ax.plot([f0 * 100], [c0], "o", color=line.get_color())
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlim(0, 5)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("false claims: outsider clips claimed (%)")
    ax.set_ylabel("claimed and right (share of in-library clips)")
    shown = ", ".join(f"{k} s: {v:.3f}" for k, v in threshold.items()) if isinstance(threshold, dict) else f"{threshold:.3f}"
    ax.set_title(f"match claims (dot: shipped operating point, confidence ≥ {shown})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=7)
    fig.tight_layout()
    out = REPO / "docs" / "claims_curve.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--split", choices=["fit", "report", "report10h"], required=True,
                   help="report10h: the report split's clips against its library grown to 10 h (distractor_library)")
    c.add_argument("--per-file-inside", type=int, default=2)
    c.add_argument("--per-file-outside", type=int, default=4)
    c.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--tag", default="", help="suffix of the cache file: more clips of a split (other --seed) kept beside the first run's")
    c.add_argument("--durations", nargs="+", type=float, default=list(DURATIONS))
    c.add_argument("--reversed-per-file", type=int, default=0, help="clips of each library file played backwards, as outsiders")
    c.add_argument("--edge-per-file", type=int, default=1, help="clips of each library file (per length) that straddle its start or end (10-40 %% outside)")
    c.add_argument("--max-clips", type=int, default=None, help="stop after this many clips (the plan is in random order)")
    f = sub.add_parser("fit")
    f.add_argument("--target", type=float, default=0.01)
    f.add_argument("--write", action="store_true")
    f.add_argument("--kind", nargs="+", choices=["trees", "logistic"], default=["logistic", "logistic", "logistic"],
                   help="the kind of each part (shortest clips first; the last repeats)")
    f.add_argument("--one-point", action="store_true", help="one operating point per part, not one per clip length")
    f.add_argument("--edges", nargs="*", type=float, default=[2.0, 5.0], help="clip lengths (s) where one fitted decision hands over to the next")
    f.add_argument("--basis", nargs="+", default=None, choices=sorted(MONOTONE) + ["/"],
                   help="the decision's inputs (search_engine.query.BASIS_INPUTS); '/' between the parts' lists (the last repeats); default: FIT_BASES (VERIFIED_BASES with --verified)")
    f.add_argument("--verified", action="store_true",
                   help="fit the part for matches checked against their recording's audio (clips collected with peaks) and keep the present decision for the others")
    k = sub.add_parser("calibrate-run", help="audio2vec calibrate on the report library, judged on the report clips")
    k.add_argument("--clips", type=int, default=1000)
    r = sub.add_parser("report")
    r.add_argument("--no-plot", action="store_true")
    e = sub.add_parser("cell", help="one damage at one clip length on a sample of its own (in-library clips; kept apart from the split's)")
    e.add_argument("--split", choices=["fit", "report", "report10h"], default="report")
    e.add_argument("--condition", choices=CONDITIONS + ("stk_fast",), required=True)
    e.add_argument("--seconds", type=float, default=3.0)
    e.add_argument("--clips", type=int, default=400)
    e.add_argument("--seed", type=int, default=100)
    for p in (c, f, r, k, e):
        p.add_argument("--model", default="default")
    args = ap.parse_args(argv)
    if args.step == "collect":
        collect(args.split, args.model, args.per_file_inside, args.per_file_outside, args.seed, args.conditions, args.tag,
                args.durations, args.reversed_per_file, args.max_clips, edge_per_file=args.edge_per_file)
    elif args.step == "fit":
        fit(args.model, args.target, args.write, args.kind, not args.one_point, tuple(args.edges),
            part_bases(args.basis) if args.basis else (VERIFIED_BASES if args.verified else FIT_BASES), args.verified)
    elif args.step == "calibrate-run":
        calibrate_run(args.model, args.clips)
    elif args.step == "cell":
        cell(args.model, args.split, args.condition, args.seconds, args.clips, args.seed)
    else:
        report(args.model, not args.no_plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
