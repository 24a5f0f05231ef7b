"""The aisfx teacher: embed allowed audio, window by window, aligned with the student's windows.

Runs in its own environment (``make teacher``: torch 2.13.0 CPU, ``aisfx`` 0.1.2 installed with
``--no-deps``, numpy, librosa, soundfile); the engine never imports this file, torch or aisfx.

Teacher: the pretrained sound-effects network of Ma & Lerch, "Representation Learning for the
Automatic Indexing of Sound Effects Libraries" (ISMIR 2022), PyPI ``aisfx`` 0.1.2, weights in the
wheel, CC BY 4.0 (see NOTICE). Its checkpoint is loaded once into a plain state_dict; only the
convolutional embedding net (8 conv layers, 512-d max-pooled output) is used. Its input is computed
here with librosa exactly as ``aisfx.spectrogram.spectrogram_librosa`` does: audio at 44.1 kHz,
peak-normalised, 96 HTK mel bands 0–22.05 kHz (L1-normalised filters), STFT 2048, hop 1024,
``log10(1e4 * power + 1)`` / 9.4578 (the paper's min-max constants).

Alignment with the student: the student reads windows of 64 frames at hop 256 at 16 kHz (1.04 s)
starting at frame ``f`` (``f * 256 / 16000`` s). The teacher reads the same span of the file at
44.1 kHz (45 of its frames). One window every ``--hop-frames`` student frames (default 64 =
1.024 s, as ``Encoder.encode`` pools), at most ``--max-windows`` per file spread evenly.

Output (``--out DIR``), keyed by the teacher's checksum:

    DIR/teacher.json            {"teacher": "aisfx-0.1.2", "sha256": ..., "dim": 512, "files": N, ...}
    DIR/vectors.npz             paths [n_files], file_index [n], start_frame [n] (student frames),
                                vectors [n, 512] float32 (the raw teacher embeddings, not normalised)

``audio2vec train --objective distill --teacher-vectors DIR`` reads this folder. A second run on the
same paths with the same checksum reuses ``DIR/vectors.npz`` entries (the cache).

    .teacher-venv/bin/python teacher/aisfx_teacher.py PATH... --out DIR [--hop-frames 64]
    .teacher-venv/bin/python teacher/aisfx_teacher.py --files LIST.txt --out DIR   # one path a line
    .teacher-venv/bin/python teacher/aisfx_teacher.py --whole FILES.txt --out X.npy  # one vector per file (benchmark)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SR_T = 44100
N_FFT_T, HOP_T, MELS_T = 2048, 1024, 96
SPEC_MAX = 9.457798957824707
# student geometry (search_engine.features.FeatureSettings defaults)
SR_S, HOP_S, N_FFT_S, WIN_S = 16000, 256, 512, 64
AUDIO_EXT = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}


def _package_dir() -> Path:
    """aisfx's folder, found without importing the package (its __init__ needs tqdm and more)."""
    import importlib.util

    spec = importlib.util.find_spec("aisfx")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("aisfx is not installed: run `make teacher`")
    return Path(list(spec.submodule_search_locations)[0])


def checkpoint_path() -> Path:
    return _package_dir() / "models" / "checkpoint.pth"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_teacher():
    """The embedding net of aisfx's X-Sequential-CE checkpoint, eval mode, on the CPU."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("aisfx_cnn2d", _package_dir() / "models" / "cnn2d.py")
    cnn2d = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cnn2d)
    EmbeddingNet = cnn2d.EmbeddingNet

    weights, _ds = torch.load(checkpoint_path(), map_location="cpu", weights_only=False)
    state = {k[len("embedding_net."):]: v for k, v in weights.items() if k.startswith("embedding_net.")}
    net = EmbeddingNet("max", 3, 1, 64)
    net.load_state_dict(state)
    net.eval()
    # one thread by default: OpenMP threads spin-wait and crawl on a shared, oversubscribed CPU
    torch.set_num_threads(int(os.environ.get("TEACHER_THREADS", "1")))
    return net


def teacher_spec(y44: np.ndarray) -> np.ndarray:
    """aisfx's librosa input: ``[frames, 96]`` (time first), min-max normalised."""
    import librosa

    peak = float(np.max(np.abs(y44))) if len(y44) else 0.0
    y = y44 / (peak if peak > 0 else 1.0)
    spec = librosa.feature.melspectrogram(
        y=y, sr=SR_T, n_mels=MELS_T, norm=1.0, fmin=0.0, fmax=SR_T / 2, htk=True, power=2.0,
        hop_length=HOP_T, win_length=N_FFT_T, n_fft=N_FFT_T,
    )
    return (np.log10(spec * 10000.0 + 1.0) / SPEC_MAX).T.astype(np.float32)


def load_audio(path: Path, sr: int) -> np.ndarray:
    import librosa
    import soundfile as sf

    try:
        y, sr_in = sf.read(str(path), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
    except Exception:
        y, sr_in = librosa.load(str(path), sr=None, mono=True)
    if sr_in != sr:
        y = librosa.resample(y, orig_sr=sr_in, target_sr=sr, res_type="soxr_hq")
    return y.astype(np.float32)


def student_starts(n_samples_16k: int, hop_frames: int, max_windows: int) -> np.ndarray:
    """Start frames of the student's windows (as ``features.window_starts``), thinned to ``max_windows``."""
    n_frames = 0 if n_samples_16k < N_FFT_S else 1 + (n_samples_16k - N_FFT_S) // HOP_S
    starts = np.arange(0, n_frames - WIN_S + 1, hop_frames) if n_frames >= WIN_S else np.zeros(1 if n_samples_16k else 0, int)
    if len(starts) > max_windows:
        starts = starts[np.unique(np.linspace(0, len(starts) - 1, max_windows).round().astype(int))]
    return starts.astype(np.int64)


def embed_blocks(net, blocks: list[np.ndarray]) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(blocks), 64):
            out.append(net(torch.from_numpy(np.stack(blocks[i : i + 64]))).numpy())
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


def window_blocks(spec: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    """The teacher frames covering each student window (45 frames; zero-padded at the end)."""
    span = int(np.ceil(((WIN_S - 1) * HOP_S + N_FFT_S) / SR_S * SR_T / HOP_T))  # 45
    out = []
    for f in starts:
        t0 = int(round(f * HOP_S / SR_S * SR_T / HOP_T))
        b = spec[t0 : t0 + span]
        if len(b) < span:
            b = np.pad(b, ((0, span - len(b)), (0, 0)))
        out.append(b)
    return out


def audio_files(paths: list[str], listfile: str | None) -> list[Path]:
    files: list[Path] = []
    if listfile:
        files += [Path(l.strip()) for l in open(listfile) if l.strip()]
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXT and q.is_file())
        else:
            files.append(p)
    return files


def embed_windows(files: list[Path], out: Path, hop_frames: int, max_windows: int, save_every: int = 200) -> None:
    out.mkdir(parents=True, exist_ok=True)
    digest = sha256(checkpoint_path())
    meta_path, vec_path = out / "teacher.json", out / "vectors.npz"
    cached: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if meta_path.exists() and vec_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("sha256") == digest and meta.get("hop_frames") == hop_frames and meta.get("max_windows") == max_windows:
            z = np.load(vec_path)
            for i, p in enumerate(z["paths"]):
                sel = z["file_index"] == i
                cached[str(p)] = (z["start_frame"][sel], z["vectors"][sel])
    net = load_teacher()
    paths, fidx, starts_all, vecs = [], [], [], []
    t0, seconds, done = time.time(), 0.0, 0
    pending: list[tuple[str, np.ndarray, list[np.ndarray]]] = []  # windows of several files share a call

    def flush():
        if not pending:
            return
        v = embed_blocks(net, [b for _, _, blocks in pending for b in blocks])
        pos = 0
        for key, st, blocks in pending:
            add(key, st, v[pos : pos + len(blocks)])
            pos += len(blocks)
        pending.clear()

    def add(key, st, v):
        paths.append(key)
        fidx.append(np.full(len(st), len(paths) - 1, np.int32))
        starts_all.append(st)
        vecs.append(v.astype(np.float32))

    for p in files:
        key = str(Path(p).resolve())
        if key in cached:
            add(key, *cached[key])
        else:
            try:
                y44 = load_audio(p, SR_T)
            except Exception as exc:  # unreadable: skipped, as the trainer skips it
                print(f"skip {p}: {exc}", file=sys.stderr)
                continue
            n16 = int(len(y44) * SR_S / SR_T)
            st = student_starts(n16, hop_frames, max_windows)
            if len(st) == 0 or not np.any(y44):
                continue
            pending.append((key, st, window_blocks(teacher_spec(y44), st)))
            seconds += len(y44) / SR_T
            if sum(len(b) for _, _, b in pending) >= 128:
                flush()
        done += 1
        if done % 200 == 0:
            el = time.time() - t0
            print(f"{done}/{len(files)} files, {sum(map(len, vecs))} windows, {el:.0f} s ({seconds / max(el, 1e-9):.0f}x realtime)", file=sys.stderr, flush=True)
            if done % save_every == 0:  # checkpoint: a run stopped at any time leaves a usable cache
                _save(vec_path, meta_path, paths, fidx, starts_all, vecs, digest, hop_frames, max_windows)
    flush()
    _save(vec_path, meta_path, paths, fidx, starts_all, vecs, digest, hop_frames, max_windows)
    print(f"wrote {vec_path}: {len(paths)} files, {sum(map(len, vecs))} windows in {time.time() - t0:.0f} s", file=sys.stderr)


def _save(vec_path, meta_path, paths, fidx, starts_all, vecs, digest, hop_frames, max_windows) -> None:
    tmp = vec_path.with_suffix(".tmp.npz")
    np.savez(
        tmp, paths=np.asarray(paths), file_index=np.concatenate(fidx), start_frame=np.concatenate(starts_all),
        vectors=np.concatenate(vecs),
    )
    os.replace(tmp, vec_path)
    meta = {
        "teacher": "aisfx-0.1.2 (Ma & Lerch, ISMIR 2022; CC BY 4.0), embedding net, librosa input",
        "sha256": digest, "dim": 512, "files": len(paths), "windows": int(sum(map(len, vecs))),
        "hop_frames": hop_frames, "max_windows": max_windows,
        "student": {"sample_rate_hz": SR_S, "hop_length": HOP_S, "n_fft": N_FFT_S, "window_frames": WIN_S},
    }
    meta_path.write_text(json.dumps(meta, indent=1))


def embed_whole(files: list[Path], out: Path, mode: str) -> None:
    """One teacher vector per file (benchmarks): ``first`` = its first 2.3 s block (100 frames, the
    package's block), ``windows`` = the mean of its unit window vectors every 1.024 s (as the student pools)."""
    net = load_teacher()
    res = np.zeros((len(files), 512), np.float32)
    for i, p in enumerate(files):
        y44 = load_audio(p, SR_T)
        spec = teacher_spec(y44)
        if mode == "first":
            b = spec[:100]
            if len(b) < 100:
                b = np.pad(b, ((0, 100 - len(b)), (0, 0)))
            res[i] = embed_blocks(net, [b])[0]
        else:
            st = student_starts(int(len(y44) * SR_S / SR_T), 64, 48)
            v = embed_blocks(net, window_blocks(spec, st))
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            res[i] = v.mean(axis=0)
    np.save(out, res)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--files", help="a text file, one audio path a line")
    ap.add_argument("--out", required=True)
    ap.add_argument("--hop-frames", type=int, default=64)
    ap.add_argument("--max-windows", type=int, default=8, help="at most this many windows per file")
    ap.add_argument("--save-every", type=int, default=200, help="write the cache every this many files")
    ap.add_argument("--whole", choices=("first", "windows"), help="one vector per file instead (benchmarks)")
    args = ap.parse_args(argv)
    files = audio_files(args.paths, args.files)
    if args.whole:
        embed_whole(files, Path(args.out), args.whole)
    else:
        embed_windows(files, Path(args.out), args.hop_frames, args.max_windows, args.save_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
