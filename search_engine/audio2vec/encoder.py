"""Load an Audio2Vec model folder and turn waveforms into window vectors.

A model folder holds ``config.json`` (architecture, feature settings, training record, model id)
and the Keras weights of the encoder, the projection g() and the decoder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DecodeError, ParameterError
from ..features import FeatureSettings, log_mel, normalize_windows, require_windows, windows
from .model import Architecture

MODEL_FORMAT = 1
BUNDLED_DIR = Path(__file__).parent / "weights"
#: the default model (contrastive); ``weights/autoencoder`` keeps the seed model, the baseline
DEFAULT_MODEL_DIR = BUNDLED_DIR / "default"
WEIGHT_FILES = {"encoder": "encoder.weights.h5", "g": "g.weights.h5", "decoder": "decoder.weights.h5"}
#: hop of the windows averaged into a whole-sound (``similar``) vector: 64 frames = 1.024 s
WHOLE_HOP_FRAMES = 64
#: at most this many of them, evenly spread, for a longer recording (its whole vector stays cheap)
WHOLE_MAX_WINDOWS = 48

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def bundled_models() -> dict[str, Path]:
    """Models shipped in the package, by name (``default``, ``autoencoder``)."""
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / "config.json").is_file()}


def bundled_model(model_id: str | None) -> Path | None:
    """The folder of the bundled model with this model id, or None."""
    for folder in bundled_models().values():
        if json.loads((folder / "config.json").read_text()).get("model_id") == model_id:
            return folder
    return None


def resolve_model_dir(model: str | os.PathLike) -> Path:
    """The name of a bundled model (``"default"``, ``"autoencoder"``) -> its folder; anything else
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
        """Build the network, and its :attr:`similar` model's, now (otherwise their first use
        does); returns ``self``."""
        self._call  # noqa: B018 - the cached property builds it
        if self.similar is not self:
            self.similar.build()
        return self

    def keras_model(self):
        """The inference network as a Keras model, window -> vector, with this model's weights."""
        from .model import build_embedder, build_encoder, build_projection

        f = self.features
        enc = build_encoder(f.window_frames, f.n_mels, self.architecture)
        g = build_projection(self.architecture)
        enc.load_weights(self.folder / WEIGHT_FILES["encoder"])
        g.load_weights(self.folder / WEIGHT_FILES["g"])
        return build_embedder(enc, g)

    @functools.cached_property
    def _call(self):
        """The compiled network, built on first use: opening an index or skipping unchanged files
        never pays for importing TensorFlow. A ``tf.function`` with a fixed signature: the fastest
        backend measured (``benchmarks/inference_backends.py``)."""
        import tensorflow as tf

        model = self.keras_model()
        spec = tf.TensorSpec([None, self.features.window_frames, self.features.n_mels], tf.float32)
        return tf.function(lambda x: model(x, training=False), input_signature=[spec])

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
        from ..query import pool

        model = self.similar
        win, _ = model._mel_windows(mel, hop_frames=WHOLE_HOP_FRAMES, source=source)
        z = model.encode_windows(normalize_windows(win[whole_windows(len(win))], top_db=model.features.top_db), batch_size=batch_size)
        if not np.isfinite(z).all():
            raise DecodeError(source, "the model gave non-finite vectors for this audio")
        return pool(z)

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
        show_progress_bar: bool | None = None,
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
        show_progress_bar : bool, optional
            Progress bar on stderr (default: when stderr is a terminal).

        Returns
        -------
        np.ndarray [shape=(len(clips), similar.dim), dtype=float32], unit L2 norm

        Raises
        ------
        DecodeError
            For the first clip that cannot be used (unreadable, silent, ...).
        """
        from ..audio import load_clip
        from ..progress import progress_bar
        from ..query import pool

        if self.similar is not self:
            return self.similar.encode(clips, batch_size=batch_size, hop_frames=hop_frames, show_progress_bar=show_progress_bar)
        sr = self.features.sample_rate_hz
        clips = list(clips)
        out = np.empty((len(clips), self.dim), dtype=np.float32)
        pending: list[tuple[int, np.ndarray]] = []  # (clip index, its prepared windows)

        def flush() -> None:
            z = self.encode_windows(np.concatenate([x for _, x in pending]), batch_size=batch_size)
            pos = 0
            for i, x in pending:
                part = z[pos : pos + len(x)]
                if not np.isfinite(part).all():
                    raise DecodeError(clips[i], "the model gave non-finite vectors for this audio")
                out[i] = pool(part)
                pos += len(x)
            pending.clear()

        with progress_bar(show_progress_bar) as bar:
            task = bar.add_task("embedding", total=len(clips))
            for i, clip in enumerate(clips):
                name, y = load_clip(clip, sr=sr)
                x = self.windows(y, hop_frames=hop_frames, source=name)[0]
                pending.append((i, x[whole_windows(len(x))]))
                if sum(len(x) for _, x in pending) >= batch_size:
                    flush()
                    bar.update(task, completed=i + 1)
            if pending:
                flush()
            bar.update(task, completed=len(clips))
        return out

    def windows(self, y: np.ndarray, *, hop_frames: int, source: object = "<waveform>"):
        """Prepared encoder input of a waveform: ``(x [n, W, mels], starts_s [n])``.

        Raises :class:`~search_engine.errors.DecodeError` when ``y`` is empty; any shorter sound is
        padded with silence (one window).
        """
        win, starts_s = self._raw_windows(y, hop_frames=hop_frames, source=source)
        return normalize_windows(win, top_db=self.features.top_db), starts_s

    def _raw_windows(self, y: np.ndarray, *, hop_frames: int, source: object):
        """Windows of the log-mel spectrogram (a view) and their starts; raises on unusable input."""
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
        win, starts_s = self._mel_windows(mel, hop_frames=hop_frames, source=source)
        top_db = self.features.top_db
        z = np.empty((len(win), self.dim), dtype=np.float32)
        for i in range(0, len(win), batch_size):
            z[i : i + batch_size] = self.encode_windows(normalize_windows(win[i : i + batch_size], top_db=top_db), batch_size=batch_size)
        if not np.isfinite(z).all():
            raise DecodeError(source, "the model gave non-finite vectors for this audio")
        return Embedded(z, starts_s, duration_s)


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

    def keras_model(self):
        raise ParameterError(f"{self.name} is an ensemble of {len(self.members)} Keras models: use its members' keras_model()")

    def build(self) -> "Ensemble":
        for m in self.members:
            m.build()
        return self

    def encode_windows(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        z = np.concatenate([m.encode_windows(x, batch_size=batch_size) for m in self.members], axis=1)
        return z / np.float32(np.sqrt(len(self.members)))
