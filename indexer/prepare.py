"""What an indexing worker does for one file, in its own process: decode, spectrogram, format and
tags. No model and no TensorFlow: the encoder runs in the main process, in large batches."""

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


def prepare(path: str | os.PathLike, features: FeatureSettings) -> Prepared:
    """Decode ``path`` and compute its log-mel spectrogram; raises ``DecodeError`` / ``OSError``."""
    y, sr = load(path, sr=features.sample_rate_hz)
    mel = spectrogram(y, features, source=path)
    channels, native_sr = channels_and_rate(path)
    return Prepared(mel, len(y) / sr, channels, native_sr, read_tags(path))
