"""Load an Audio2Vec model folder and turn waveforms into window vectors.

A model folder holds ``config.json`` (architecture, feature settings, training record, model id),
the Keras weights of the encoder, the projection g() and the decoder (for training), and
``encoder.onnx``, the inference network that ONNX Runtime runs: queries and indexing never import
TensorFlow. The bundled models ship ``config.json`` and ``encoder.onnx`` only (one copy of the
weights); fine-tuning from one reads its weights from the ONNX file (:meth:`Encoder.network`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DecodeError, ParameterError, result_or_raise
from ..features import FeatureSettings, log_mel, normalize_windows, require_windows, windows
from .model import Architecture

MODEL_FORMAT = 1
BUNDLED_DIR = Path(__file__).parent / "weights"
#: the default model (contrastive); the seed autoencoder is no longer bundled (``models/autoencoder``, :mod:`.retired`)
DEFAULT_MODEL_DIR = BUNDLED_DIR / "default"
WEIGHT_FILES = {"encoder": "encoder.weights.h5", "g": "g.weights.h5", "decoder": "decoder.weights.h5"}
#: the inference network (encoder + g) as ONNX, written by training (:mod:`.export`)
ONNX_FILE = "encoder.onnx"
#: hop of the windows averaged into a whole-sound (``similar``) vector: 64 frames = 1.024 s
WHOLE_HOP_FRAMES = 64
#: at most this many of them, evenly spread, for a longer recording (its whole vector stays cheap)
WHOLE_MAX_WINDOWS = 48



def bundled_models() -> dict[str, Path]:
    """Models shipped in the package, by name (``default``, ``similar``, ...)."""
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / "config.json").is_file()}


def bundled_model(model_id: str | None) -> Path | None:
    """The folder of the bundled model with this model id, or None."""
    for folder in bundled_models().values():
        if json.loads((folder / "config.json").read_text()).get("model_id") == model_id:
            return folder
    return None


def resolve_model_dir(model: str | os.PathLike) -> Path:
    """The name of a bundled model (``"default"``, ``"similar"``) -> its folder; anything else
    is a folder path."""
    path = bundled_models().get(str(model)) or Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ParameterError(f"no Audio2Vec model at {path} (expected {path / 'config.json'})")
    return path


def weights_id(folder: Path) -> str:
    """Content hash of the inference weights (encoder + g): the model id recorded in indexes."""
    h = hashlib.sha256()
    for key in ("encoder", "g"):
        h.update((folder / WEIGHT_FILES[key]).read_bytes())
    return h.hexdigest()[:16]


def whole_windows(n: int) -> np.ndarray:
    """Which of a sound's ``n`` windows (every :data:`WHOLE_HOP_FRAMES`) its whole-sound vector
    averages: all of them, or :data:`WHOLE_MAX_WINDOWS` spread evenly over a longer recording."""
    if n <= WHOLE_MAX_WINDOWS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, WHOLE_MAX_WINDOWS).round().astype(np.int64))


def spectrogram(y: np.ndarray, features: FeatureSettings, *, source: object = "<waveform>") -> np.ndarray:
    """The log-mel spectrogram the encoder reads, ``[frames, n_mels]`` dB; refuses non-finite input.

    Needs no model (and no TensorFlow): indexing workers call it in their own processes.
    """
    if len(y) and not (np.isfinite(np.max(y)) and np.isfinite(np.min(y))):  # max/min: no copy of y
        raise DecodeError(source, "contains NaN or infinite samples")
    if 0 < len(y) < features.n_fft:  # a tick shorter than one STFT frame: zero-padded to one frame
        y = np.pad(y, (0, features.n_fft - len(y)))
    mel = log_mel(y, settings=features)
    if not np.isfinite(mel).all():
        raise DecodeError(source, "contains NaN or infinite samples")
    return mel


@dataclass(frozen=True)
class Embedded:
    """Window vectors of one waveform."""

    vectors: np.ndarray  #: [shape=(n, dim), float32], unit length
    starts_s: np.ndarray  #: [shape=(n,), float64], start of each window in seconds
    duration_s: float  #: length of the waveform in seconds


class Encoder:
    """An Audio2Vec model ready for inference.

    Use :meth:`load`; then :meth:`embed` (waveforms) or :meth:`encode` (prepared windows).
    """

    def __init__(self, folder: Path, config: dict):
        self.folder = folder
        self.config = config
        self.features = FeatureSettings(**config["features"])
        self.architecture = Architecture(**config["architecture"])
        self.model_id = config["model_id"]

    def build(self) -> "Encoder":
        """Load the network, and its :attr:`similar` model's, now (otherwise their first use
        does); returns ``self``."""
        self._call  # noqa: B018 - the cached property builds it
        if self.similar is not self:
            self.similar.build()
        return self

    def keras_model(self):
        """The inference network as a Keras model, window -> vector, with this model's weights
        (for training and tests: needs TensorFlow, the ``train`` extra)."""
        from .model import build_embedder, build_encoder, build_projection, set_network_weights

        f = self.features
        enc = build_encoder(f.window_frames, f.n_mels, self.architecture)
        g = build_projection(self.architecture)
        set_network_weights(enc, g, self.network())
        return build_embedder(enc, g)

    def network(self):
        """The weights of encoder + g() as a :class:`.forward.Network`: from the Keras files when
        the folder has them (what training writes), otherwise from :data:`ONNX_FILE` (a bundled
        model; reading it needs the ``onnx`` package, the ``train`` extra)."""
        from .forward import load_network, network_from_onnx

        if (self.folder / WEIGHT_FILES["encoder"]).is_file():
            return load_network(self.folder / WEIGHT_FILES["encoder"], self.folder / WEIGHT_FILES["g"], strided=len(self.architecture.filters))
        net, model_id = network_from_onnx(self.folder / ONNX_FILE)
        if model_id != self.model_id:
            raise ParameterError(f"{self.folder / ONNX_FILE} was made from other weights (model {model_id}, "
                                 f"config.json says {self.model_id}), and the folder has no Keras weights")
        return net

    @functools.cached_property
    def backend(self) -> str:
        """What runs the network: ``"onnxruntime"`` (the folder's :data:`ONNX_FILE`, made from
        these weights) or ``"numpy"`` (:mod:`.forward`, for a folder trained before ONNX files)."""
        self._call  # noqa: B018
        return self._backend

    @functools.cached_property
    def _call(self):
        """The network, loaded on first use: opening an index or skipping unchanged files loads
        nothing. ONNX Runtime runs :data:`ONNX_FILE` when it was made from this folder's weights
        (its ``model_id``); otherwise the numpy forward pass reads the Keras weights. Both give the
        Keras vectors to 1e-6 (``tests/test_model.py``); ``benchmarks/inference_backends.py``
        measures their speed."""
        onnx_path = self.folder / ONNX_FILE
        if onnx_path.is_file():
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            # idle threads sleep instead of spinning: indexing workers decode on the same cores
            # (and a 2-core machine ran 1.1-1.6x faster without spinning, batches of 32-512)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            if session.get_modelmeta().custom_metadata_map.get("model_id") == self.model_id:
                self._backend = "onnxruntime"
                return lambda x: session.run(None, {"x": x})[0]
        from .forward import forward

        net = self.network()  # the Keras weights; refuses a stale ONNX file with none beside it
        self._backend = "numpy"
        return functools.partial(forward, net)

    @classmethod
    def load(cls, model: str | os.PathLike = "default") -> "Encoder":
        """Load ``"default"`` (the bundled model) or a model folder written by ``audio2vec train``."""
        folder = resolve_model_dir(model)
        config = json.loads((folder / "config.json").read_text())
        if config.get("format") != MODEL_FORMAT:
            raise ParameterError(f"{folder}: model format {config.get('format')} is not {MODEL_FORMAT}")
        return cls(folder, config)

    @property
    def name(self) -> str:
        """What :meth:`load` takes to load this model again: a bundled model's name, else its folder."""
        return self.folder.name if self.folder.parent == BUNDLED_DIR else str(self.folder)

    @functools.cached_property
    def similar(self) -> "Encoder":
        """The model of the ``similar`` space (whole-sound vectors): the model named by this
        model's config ``similar_model`` (a bundled name, or a folder relative to this one),
        trained with the ``similarity`` objective on the same features, or an :class:`Ensemble`
        of the models it lists; else this model itself. The default model names bundled
        ``similar`` models: small models behind one API."""
        names = self.config.get("similar_model")
        if not names:
            return self
        members = []
        for name in [names] if isinstance(names, str) else names:
            other = Encoder.load(name if name in bundled_models() else self.folder / name)
            if other.features != self.features:
                raise ParameterError(f"{self.folder}: similar_model {name!r} has other feature settings than this model")
            members.append(other)
        return members[0] if len(members) == 1 else Ensemble(members)

    def whole(self, mel: np.ndarray, *, batch_size: int = 512, source: object = "<waveform>") -> np.ndarray:
        """Whole-sound vector ``[dim]`` of a :func:`spectrogram`: the :attr:`similar` model's
        vectors of windows every :data:`WHOLE_HOP_FRAMES` (:func:`whole_windows` of them),
        averaged and L2-normalised. Raises ``DecodeError`` when the sound is too short."""
        return result_or_raise(self.wholes([mel], batch_size=batch_size, sources=[source])[0])

    def wholes(self, mels: Sequence[np.ndarray], *, batch_size: int = 512, sources: Sequence[object] | None = None) -> list:
        """:meth:`whole` of many spectrograms, their windows sharing encoder calls; per
        spectrogram its vector or the :class:`DecodeError` that refuses it."""
        from ..query import pool

        model = self.similar
        sources = list(sources) if sources is not None else ["<waveform>"] * len(mels)
        out: list = [None] * len(mels)
        parts = []
        for i, mel in enumerate(mels):
            try:
                win, _ = model._mel_windows(mel, hop_frames=WHOLE_HOP_FRAMES, source=sources[i])
            except DecodeError as exc:
                out[i] = exc
                continue
            parts.append((i, win[whole_windows(len(win))]))
        for (i, _), z in zip(parts, model.encode_parts([w for _, w in parts], batch_size=batch_size)):
            out[i] = pool(z) if np.isfinite(z).all() else DecodeError(sources[i], "the model gave non-finite vectors for this audio")
        return out

    def encode_parts(self, parts: Sequence[np.ndarray], *, batch_size: int) -> list[np.ndarray]:
        """Vectors of several sounds' windows of a :func:`spectrogram` (dB, e.g. views from
        :func:`~search_engine.features.windows`), normalised and encoded ``batch_size`` at a time
        across sounds: a thousand one-shots cost two calls, an hour of audio needs no more memory
        than a batch. Returns one ``[n_i, dim]`` array per part."""
        sizes = [len(p) for p in parts]
        z = np.empty((sum(sizes), self.dim), dtype=np.float32)
        top_db = self.features.top_db
        pos, chunk, filled = 0, [], 0

        def run() -> None:
            nonlocal pos
            if len(chunk) == 1:  # a view of a spectrogram
                x = normalize_windows(chunk[0], top_db=top_db)
            else:
                x = normalize_windows(np.concatenate(chunk, dtype=np.float32), top_db=top_db, copy=False)
            z[pos : pos + len(x)] = self.encode_windows(x, batch_size=batch_size)
            pos += len(x)
            chunk.clear()

        for part in parts:
            start = 0
            while start < len(part):
                take = min(batch_size - filled, len(part) - start)
                chunk.append(part[start : start + take])
                filled, start = filled + take, start + take
                if filled == batch_size:
                    run()
                    filled = 0
        if chunk:
            run()
        return np.split(z, np.cumsum(sizes)[:-1]) if parts else []

    @property
    def dim(self) -> int:
        """Length of one vector."""
        return self.architecture.embedding_dim

    def encode_windows(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """Vectors of prepared windows.

        Parameters
        ----------
        x : np.ndarray [shape=(n, window_frames, n_mels)]
            Output of :func:`~search_engine.features.normalize_windows`.
        batch_size : int

        Returns
        -------
        z : np.ndarray [shape=(n, dim), dtype=float32], unit L2 norm
        """
        out = np.empty((len(x), self.dim), dtype=np.float32)
        for i in range(0, len(x), batch_size):
            out[i : i + batch_size] = self._call(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32))
        return out

    def encode(
        self,
        clips,
        *,
        batch_size: int = 512,
        hop_frames: int = WHOLE_HOP_FRAMES,
        on_progress=None,
    ) -> np.ndarray:
        """One vector per clip (the whole-sound, ``similar`` vector, made by :attr:`similar` as
        :meth:`whole` makes an indexed file's), in input order.

        Parameters
        ----------
        clips : sequence of path-like, ``(waveform, sample_rate)`` or 1-D waveform at the model rate
        batch_size : int
            Windows per encoder call; windows of consecutive clips share a call, so many short
            clips cost few calls.
        hop_frames : int
            Window hop in frames (:data:`WHOLE_HOP_FRAMES` = 1.024 s, as in an index).
        on_progress : callable(done, total, item), optional
            Called as clips are embedded (:mod:`search_engine.progress`).

        Returns
        -------
        np.ndarray [shape=(len(clips), similar.dim), dtype=float32], unit L2 norm

        Raises
        ------
        DecodeError
            For the first clip that cannot be used (unreadable, silent, ...).
        """
        from ..audio import load_clip
        from ..query import pool

        if self.similar is not self:
            return self.similar.encode(clips, batch_size=batch_size, hop_frames=hop_frames, on_progress=on_progress)
        sr = self.features.sample_rate_hz
        clips = list(clips)
        out = np.empty((len(clips), self.dim), dtype=np.float32)
        pending: list[tuple[int, np.ndarray]] = []  # (clip index, its windows, dB)

        def flush() -> None:
            for (i, _), z in zip(pending, self.encode_parts([w for _, w in pending], batch_size=batch_size)):
                if not np.isfinite(z).all():
                    raise DecodeError(clips[i], "the model gave non-finite vectors for this audio")
                out[i] = pool(z)
            pending.clear()

        for i, clip in enumerate(clips):
            name, y = load_clip(clip, sr=sr)
            win, _ = self.raw_windows(y, hop_frames=hop_frames, source=name)
            pending.append((i, win[whole_windows(len(win))]))
            if sum(len(w) for _, w in pending) >= batch_size:
                flush()
                if on_progress is not None:
                    on_progress(i + 1, len(clips), str(name))
        if pending:
            flush()
        if on_progress is not None:
            on_progress(len(clips), len(clips), "")
        return out

    def windows(self, y: np.ndarray, *, hop_frames: int, source: object = "<waveform>"):
        """Prepared encoder input of a waveform: ``(x [n, W, mels], starts_s [n])``.

        Raises :class:`~search_engine.errors.DecodeError` when ``y`` is empty; any shorter sound is
        padded with silence (one window).
        """
        win, starts_s = self.raw_windows(y, hop_frames=hop_frames, source=source)
        return normalize_windows(win, top_db=self.features.top_db), starts_s

    def raw_windows(self, y: np.ndarray, *, hop_frames: int, source: object = "<waveform>"):
        """Windows of the log-mel spectrogram (dB; a view) and their starts in seconds, for
        :meth:`encode_parts`; raises :class:`DecodeError` on unusable input."""
        return self._mel_windows(spectrogram(y, self.features, source=source), hop_frames=hop_frames, source=source)

    def _mel_windows(self, mel: np.ndarray, *, hop_frames: int, source: object):
        f = self.features
        # a sound shorter than a window is followed by silence at the normalisation floor
        floor = float(mel.max()) - f.top_db if mel.size else None
        win, starts = windows(mel, window_frames=f.window_frames, hop_frames=hop_frames, pad_value=floor)
        duration_s = 0.0 if not len(mel) else ((len(mel) - 1) * f.hop_length + f.n_fft) / f.sample_rate_hz
        require_windows(len(starts), source=source, duration_s=duration_s, settings=f)
        return win, starts * f.frame_s

    def embed(self, y: np.ndarray, *, hop_frames: int, batch_size: int = 512, source: object = "<waveform>") -> Embedded:
        """Window vectors of a mono waveform at ``features.sample_rate_hz``, one every ``hop_frames``.

        Windows are normalised and encoded a batch at a time, so hours of audio need little memory
        beyond the spectrogram. Raises :class:`~search_engine.errors.DecodeError` when ``y`` is too
        short or not finite: the vectors returned are always finite.
        """
        mel = spectrogram(y, self.features, source=source)
        return self.embed_spectrogram(mel, hop_frames=hop_frames, batch_size=batch_size, source=source, duration_s=len(y) / self.features.sample_rate_hz)

    def embed_spectrogram(
        self, mel: np.ndarray, *, hop_frames: int, duration_s: float, batch_size: int = 512, source: object = "<waveform>"
    ) -> Embedded:
        """:meth:`embed` from a :func:`spectrogram` made elsewhere (e.g. in an indexing worker)."""
        return result_or_raise(self.embed_spectrograms([mel], hop_frames=hop_frames, durations_s=[duration_s], batch_size=batch_size, sources=[source])[0])

    def embed_spectrograms(
        self,
        mels: Sequence[np.ndarray],
        *,
        hop_frames: int,
        durations_s: Sequence[float],
        batch_size: int = 512,
        sources: Sequence[object] | None = None,
    ) -> list:
        """:meth:`embed_spectrogram` of many spectrograms, their windows sharing encoder calls
        (a library of one-shots costs a call per ``batch_size`` windows, not per file); per
        spectrogram its :class:`Embedded` or the :class:`DecodeError` that refuses it."""
        sources = list(sources) if sources is not None else ["<waveform>"] * len(mels)
        out: list = [None] * len(mels)
        parts = []
        for i, mel in enumerate(mels):
            try:
                parts.append((i, *self._mel_windows(mel, hop_frames=hop_frames, source=sources[i])))
            except DecodeError as exc:
                out[i] = exc
        for (i, _, starts_s), z in zip(parts, self.encode_parts([w for _, w, _ in parts], batch_size=batch_size)):
            ok = np.isfinite(z).all()
            out[i] = Embedded(z, starts_s, durations_s[i]) if ok else DecodeError(sources[i], "the model gave non-finite vectors for this audio")
        return out


class Ensemble(Encoder):
    """Models of one feature setting used as one: a window's vector is its members' unit vectors
    side by side, divided by the square root of their number (unit length again), so a squared
    distance is the mean of the members' squared distances. Its model id is made from theirs."""

    def __init__(self, members: list[Encoder]):
        super().__init__(members[0].folder, members[0].config)
        self.members = members
        self.model_id = hashlib.sha256("+".join(m.model_id for m in members).encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        """Its members' names joined by ``+`` (shown, not loadable: load the model that lists them)."""
        return "+".join(m.name for m in self.members)

    @property
    def dim(self) -> int:
        return sum(m.dim for m in self.members)

    @property
    def backend(self) -> str:
        return "+".join(dict.fromkeys(m.backend for m in self.members))

    def keras_model(self):
        raise ParameterError(f"{self.name} is an ensemble of {len(self.members)} Keras models: use its members' keras_model()")

    def build(self) -> "Ensemble":
        for m in self.members:
            m.build()
        return self

    def encode_windows(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        z = np.concatenate([m.encode_windows(x, batch_size=batch_size) for m in self.members], axis=1)
        return z / np.float32(np.sqrt(len(self.members)))
