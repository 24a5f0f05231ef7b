"""Audio2Vec: the encoder that turns log-mel windows into vectors (model, inference, training)."""

from .encoder import DEFAULT_MODEL_DIR, Embedded, Encoder
from .model import Architecture

__all__ = ["Architecture", "DEFAULT_MODEL_DIR", "Embedded", "Encoder"]
