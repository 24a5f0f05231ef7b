"""Teacher-vector folders for ``audio2vec train --objective distill``: made by an Audio2Vec model,
and several teachers combined into one.

A teacher-vector folder (the format ``teacher/aisfx_teacher.py`` writes) holds

    DIR/teacher.json    {"teacher": name, "dim": d, "files": n_files, "windows": n, ...}
    DIR/vectors.npz     paths [n_files], file_index [n], start_frame [n] (student frames, 16 kHz,
                        hop 256), vectors [n, d] float32

- :func:`model_teacher_vectors`: the vectors an Audio2Vec model (e.g. the shipped ``similar`` +
  ``similar_plus`` pair, as an index stores them) gives the same windows, read clean. Distilling
  a pair into one model this way (ensemble distillation) keeps what the pair knows while the
  index pays for one encoder.
- :func:`merge_teachers`: runs of one teacher on different files, as one folder.
- :func:`combine_teachers`: one folder whose window vectors are the teachers' unit vectors side
  by side, each scaled by its weight; a window that one teacher did not embed gets that teacher's
  mean unit vector there (after the student's PCA centring: no opinion), so every window of any
  teacher is kept. The student then reproduces the geometry of the weighted concatenation.

    python -m search_engine.audio2vec.teachers model AUDIO... --model M [--model M2 ...] --out DIR [--like TEACHER_DIR]
    python -m search_engine.audio2vec.teachers combine DIR1:W1 DIR2:W2 --out DIR
    python -m search_engine.audio2vec.teachers merge DIR_A DIR_B --out DIR     # one teacher, two runs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import DecodeError, ParameterError
from ..features import normalize_windows, window_starts


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def write_teacher_folder(out, paths, file_index, start_frame, vectors, meta: dict) -> Path:
    """Write ``teacher.json`` + ``vectors.npz`` (the format :func:`~.objectives.load_teacher_vectors` reads)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    tmp = out / "vectors.tmp.npz"
    np.savez(tmp, paths=np.asarray([str(p) for p in paths]), file_index=np.asarray(file_index, np.int32),
             start_frame=np.asarray(start_frame, np.int64), vectors=vectors)
    tmp.replace(out / "vectors.npz")
    meta = {**meta, "dim": int(vectors.shape[1]), "files": len(paths), "windows": int(len(vectors))}
    (out / "teacher.json").write_text(json.dumps(meta, indent=1))
    return out


def spread_starts(n_frames: int, *, window_frames: int, hop_frames: int, n: int) -> np.ndarray:
    """At most ``n`` of a sound's window starts (:func:`~search_engine.features.window_starts`),
    spread evenly from the first to the last, as ``teacher/aisfx_teacher.py`` picks them."""
    st = window_starts(n_frames, window_frames=window_frames, hop_frames=hop_frames)
    if len(st) > n:
        st = st[np.unique(np.linspace(0, len(st) - 1, n).round().astype(int))]
    return np.asarray(st, np.int64)


def model_windows(files, *, like: dict | None) -> list[tuple[str, np.ndarray]]:
    """The windows to embed: per file its start frames in ``like`` (another teacher's folder, as
    loaded by :func:`~.objectives.load_teacher_vectors`) where it has them, else the first
    ``per_file`` of :func:`~search_engine.features.window_starts` at ``hop_frames`` (as the distill
    trainer takes a file's SupCon-only windows). Paths resolved."""
    have: dict[str, list[int]] = {}
    if like is not None:
        for i, s in zip(like["file_index"], like["start_frame"]):
            have.setdefault(str(Path(like["paths"][int(i)]).resolve()), []).append(int(s))
    return [(str(Path(p).resolve()), np.asarray(have.get(str(Path(p).resolve()), []), np.int64)) for p in files]


def model_teacher_vectors(files, out, *, model: str = "default", like=None, per_file: int = 2,
                          batch_size: int = 512, log=print) -> Path:
    """Embed training windows with an Audio2Vec model's whole-sound (``similar``) space.

    Parameters
    ----------
    files : audio paths (the training files)
    out : the folder to write
    model : anything :meth:`Encoder.load` takes, or a list of them; its :attr:`~Encoder.similar`
        model embeds (``default``: the shipped similar space); a list is one :class:`Ensemble` (the
        members' window vectors side by side, as an index built with them stores them)
    like : a teacher folder whose windows to embed for its files (aligned with it); other files
        get ``per_file`` windows (:func:`spread_starts`: every 1.024 s, spread evenly)
    """
    from .encoder import WHOLE_HOP_FRAMES, Encoder
    from .objectives import load_teacher_vectors
    from ..audio import load
    from ..features import log_mel

    names = [model] if isinstance(model, str) else list(model)
    if len(names) == 1:
        enc = Encoder.load(names[0]).similar.build()
    else:  # several models as one (their window vectors side by side, as an index's ensemble)
        from .encoder import Ensemble

        enc = Ensemble([Encoder.load(n).similar for n in names]).build()

    f = enc.features
    like_t = load_teacher_vectors(like) if like is not None else None
    plan = model_windows(files, like=like_t)
    paths, fidx, starts, vecs = [], [], [], []
    batch: list[np.ndarray] = []

    def flush():
        if batch:
            x = normalize_windows(np.stack(batch), top_db=f.top_db)
            vecs.append(enc.encode_windows(x, batch_size=batch_size))
            batch.clear()

    for n, (path, st) in enumerate(plan):
        try:
            y, _ = load(path, sr=f.sample_rate_hz)
        except DecodeError as exc:
            log(f"skipped {exc}")
            continue
        mel_db = log_mel(y, settings=f)  # dB, as the trainer's windows (its power, back in dB)
        if len(mel_db) < f.window_frames:  # the trainer skips these too
            continue
        if not len(st):
            st = spread_starts(len(mel_db), window_frames=f.window_frames, hop_frames=WHOLE_HOP_FRAMES, n=per_file)
        st = np.clip(st, 0, len(mel_db) - f.window_frames)
        paths.append(path)
        for s in st:
            batch.append(mel_db[s : s + f.window_frames])
        fidx.append(np.full(len(st), len(paths) - 1, np.int32))
        starts.append(st)
        if len(batch) >= batch_size:
            flush()
        if (n + 1) % 1000 == 0:
            log(f"{n + 1}/{len(plan)} files")
    flush()
    if not paths:
        raise ParameterError("no usable training file to embed")
    meta = {"teacher": f"audio2vec:{'+'.join(map(str, names))} ({enc.name}, id {enc.model_id}), similar space, clean windows"}
    return write_teacher_folder(out, paths, np.concatenate(fidx), np.concatenate(starts), np.concatenate(vecs), meta)


def combine_teachers(folders_weights, out) -> Path:
    """One teacher folder from several: each window's vector is ``[w1 * unit(v1), w2 * unit(v2), ...]``.

    Windows are matched by (resolved path, start frame). A window one teacher lacks gets that
    teacher's mean unit vector (times its weight). Returns ``out``.
    """
    from .objectives import load_teacher_vectors

    teachers = [(load_teacher_vectors(d), float(w)) for d, w in folders_weights]
    if not teachers:
        raise ParameterError("no teacher folders to combine")
    keys: dict[tuple[str, int], int] = {}
    per: list[dict[tuple[str, int], np.ndarray]] = []
    for t, _ in teachers:
        u = _unit(t["vectors"])
        rows = {}
        for i, (fi, s) in enumerate(zip(t["file_index"], t["start_frame"])):
            key = (str(Path(t["paths"][int(fi)]).resolve()), int(s))
            rows[key] = u[i]
            keys.setdefault(key, len(keys))
        per.append(rows)
    order = sorted(keys, key=keys.get)
    parts = []
    for (t, w), rows in zip(teachers, per):
        mean = _unit(t["vectors"]).mean(axis=0)
        parts.append(w * np.stack([rows.get(k, mean) for k in order]))
    paths = list(dict.fromkeys(p for p, _ in order))
    index = {p: i for i, p in enumerate(paths)}
    meta = {
        "teacher": " + ".join(f"{w:g} x [{t['meta'].get('teacher', '?')}]" for t, w in teachers),
        "combined_from": [{"folder": str(d), "weight": float(w), "windows": len(t["vectors"])} for (d, w), (t, _) in zip(folders_weights, teachers)],
        **{k: teachers[0][0]["meta"][k] for k in ("sha256", "hop_frames", "student") if k in teachers[0][0]["meta"]},
    }
    return write_teacher_folder(out, paths, [index[p] for p, _ in order], [s for _, s in order],
                                np.concatenate(parts, axis=1), meta)


def merge_teachers(folders, out) -> Path:
    """One teacher folder from several runs of the same teacher on different files (e.g. a pool
    embedded in parts): their windows together; a file in several folders is taken from the last.
    The teachers must agree (``teacher``, ``sha256``, ``dim`` of their ``teacher.json``)."""
    from .objectives import load_teacher_vectors

    runs = [load_teacher_vectors(d) for d in folders]
    if not runs:
        raise ParameterError("no teacher folders to merge")
    for key in ("teacher", "sha256", "dim"):
        if len({json.dumps(r["meta"].get(key)) for r in runs}) > 1:
            raise ParameterError(f"the folders' teachers differ in {key!r}: merge only runs of one teacher")
    owner = {}
    for n, r in enumerate(runs):
        for p in r["paths"]:
            owner[str(Path(p).resolve())] = n
    paths, fidx, starts, vecs = [], [], [], []
    for n, r in enumerate(runs):
        for i, p in enumerate(r["paths"]):
            key = str(Path(p).resolve())
            if owner[key] != n:
                continue
            sel = r["file_index"] == i
            paths.append(key)
            fidx.append(np.full(int(sel.sum()), len(paths) - 1, np.int32))
            starts.append(r["start_frame"][sel])
            vecs.append(r["vectors"][sel])
    meta = {**{k: v for k, v in runs[-1]["meta"].items() if k not in ("files", "windows")}, "merged_from": [str(d) for d in folders]}
    return write_teacher_folder(out, paths, np.concatenate(fidx), np.concatenate(starts), np.concatenate(vecs), meta)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model", help="embed training windows with an Audio2Vec model")
    m.add_argument("paths", nargs="+")
    m.add_argument("--model", action="append", help="a model (name or folder); several: one ensemble (default: default)")
    m.add_argument("--like", help="a teacher folder whose windows to embed for its files")
    m.add_argument("--per-file", type=int, default=2)
    m.add_argument("--out", required=True)
    g = sub.add_parser("merge", help="merge runs of one teacher on different files")
    g.add_argument("folders", nargs="+")
    g.add_argument("--out", required=True)
    c = sub.add_parser("combine", help="combine teacher folders (DIR:WEIGHT ...)")
    c.add_argument("folders", nargs="+")
    c.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "model":
        from ..audio import find_audio_files

        files = list(find_audio_files(args.paths))
        out = model_teacher_vectors(files, args.out, model=args.model or ["default"], like=args.like, per_file=args.per_file,
                                    log=lambda s: print(s, file=sys.stderr, flush=True))
    elif args.cmd == "merge":
        out = merge_teachers(args.folders, args.out)
    else:
        fw = [(s.rsplit(":", 1)[0], float(s.rsplit(":", 1)[1])) if ":" in s else (s, 1.0) for s in args.folders]
        out = combine_teachers(fw, args.out)
    print(json.loads((Path(out) / "teacher.json").read_text()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["model_teacher_vectors", "combine_teachers", "merge_teachers", "write_teacher_folder", "model_windows", "spread_starts"]
