"""What an indexing worker does for one file, in its own process: decode, spectrogram, format and
tags (:func:`prepare`, no model: the encoder runs in the main process), or all of that and the
encoder too (:func:`embed_file`, for Dask workers on other machines)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from search_engine.audio import load
from search_engine.audio2vec.encoder import spectrogram
from search_engine.features import FeatureSettings

from .filestate import channels_and_rate, read_tags


@dataclass
class Prepared:
    """A decoded file, ready for the encoder."""

    mel: np.ndarray  # [frames, n_mels], dB
    duration_s: float
    channels: int
    sample_rate_hz: int
    tags: dict
    #: set by :func:`embed_file` (and then ``mel`` is dropped: it stays on the worker)
    vectors: np.ndarray | None = None
    starts_s: np.ndarray | None = None
    whole: np.ndarray | None = None


_ENCODERS: dict = {}


def embed_file(path: str | os.PathLike, model: str, whole_model: str | None, hop_frames: int, batch_size: int) -> Prepared:
    """:func:`prepare` plus the encoders, in a Dask worker; each model is loaded once per worker.

    ``model`` (segment vectors) and ``whole_model`` (whose :meth:`Encoder.whole` makes the
    whole-sound vector, with its ``similar`` model, see :meth:`SearchEngine.whole`; None: the
    pooled segment vectors) are bundled model names or model folders that the worker can read.
    """
    from search_engine.audio2vec import Encoder
    from search_engine.query import pool

    def loaded(name):
        return _ENCODERS.get(name) or _ENCODERS.setdefault(name, Encoder.load(name))

    encoder = loaded(model)
    prep = prepare(path, encoder.features)
    e = encoder.embed_spectrogram(prep.mel, hop_frames=hop_frames, duration_s=prep.duration_s, batch_size=batch_size, source=path)
    if whole_model is None:
        prep.whole = pool(e.vectors)
    else:
        prep.whole = loaded(whole_model).whole(prep.mel, batch_size=batch_size, source=path)
    prep.mel, prep.vectors, prep.starts_s = None, e.vectors, e.starts_s
    return prep


def prepare(path: str | os.PathLike, features: FeatureSettings) -> Prepared:
    """Decode ``path`` and compute its log-mel spectrogram; raises ``DecodeError`` / ``OSError``."""
    y, sr = load(path, sr=features.sample_rate_hz)
    mel = spectrogram(y, features, source=path)
    channels, native_sr = channels_and_rate(path)
    return Prepared(mel, len(y) / sr, channels, native_sr, read_tags(path))
