"""Which model and settings an index was built with, and whether this audio2vec can read it.

An index records its format, model id, features and embedding size when it is created
(:func:`initial_settings`); opening it again checks them (:func:`check_compatible`): vectors of
different models or features cannot be compared, so a mismatch is an error that says what to do.
"""

from __future__ import annotations

from pathlib import Path

from .config import Settings
from .errors import IndexMismatchError, ParameterError
from .features import frames_for

INDEX_FORMAT = 1
#: settings whose change makes an index's vectors incomparable with a model's
GUARDED = ("model_id", "features", "embedding_dim")


def initial_settings(settings: Settings, encoder) -> dict:
    hop = frames_for(settings.segment_hop_s, encoder.features)
    if hop % settings.query_phases:
        raise ParameterError(
            f"segment_hop_s={settings.segment_hop_s} is {hop} frames of "
            f"{encoder.features.frame_s * 1000:.0f} ms, not a multiple of query_phases={settings.query_phases}"
        )
    return {
        "format": INDEX_FORMAT,
        "model": settings.model,
        "model_id": encoder.model_id,
        "similar_model_id": encoder.similar.model_id,
        "features": encoder.features.as_dict(),
        "embedding_dim": encoder.dim,
        "segment_hop_frames": hop,
        "index_factory": settings.index_factory,
        "similar_index_factory": settings.similar_index_factory,
        "generation": 0,
        "next_segment_id": 0,
    }

def check_compatible(settings: Settings, stored: dict):
    from .audio2vec import Encoder

    if stored.get("format") != INDEX_FORMAT:
        raise IndexMismatchError(
            f"index at {settings.index_dir} has format {stored.get('format')}; this audio2vec reads format {INDEX_FORMAT}"
        )
    # the model the index was built with, unless another one was asked for explicitly
    model = stored["model"] if settings.model == "default" else settings.model
    from .audio2vec.encoder import bundled_model, bundled_models
    from .audio2vec.retired import raise_if_retired

    if model not in bundled_models() and not (Path(model).expanduser() / "config.json").is_file():
        raise_if_retired(settings.index_dir, model)  # a bundled model of an earlier version, by name
    encoder = Encoder.load(model)
    if settings.model == "default" and encoder.model_id != stored.get("model_id"):
        # built with a bundled model that is no longer the default: use it, if still bundled
        folder = bundled_model(stored.get("model_id"))
        if folder is not None:
            encoder = Encoder.load(folder)
        else:
            raise_if_retired(settings.index_dir, stored.get("model_id"))
    hop = int(stored["segment_hop_frames"])
    if hop % settings.query_phases:
        raise ParameterError(
            f"query_phases={settings.query_phases} does not divide the {hop}-frame segment hop of the index at "
            f"{settings.index_dir}: use a divisor of {hop} (the default is 2)"
        )
    now = {"model_id": encoder.model_id, "features": encoder.features.as_dict(), "embedding_dim": encoder.dim}
    differs = differences({k: stored.get(k) for k in GUARDED}, now)
    if differs:
        raise IndexMismatchError(
            f"index at {settings.index_dir} was built with model {stored['model']!r} and other settings than "
            f"model {model!r} has ({'; '.join(differs)}). Vectors of different models or features cannot be "
            f"compared: query with the model the index was built with (--model), or rebuild the index with "
            f"this one: `audio2vec index YOUR_FOLDERS --index NEW_FOLDER`"
        )
    return encoder


def differences(stored: dict, now: dict, prefix: str = "") -> list[str]:
    """``"key: index has A, now B"`` for every (nested) key whose value differs."""
    out = []
    for key in sorted(set(stored) | set(now)):
        a, b = stored.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: index has {a!r}, now {b!r}")
    return out


def whole_encoder(stored: dict, encoder, index_dir: Path):
    """The model of an index's whole-sound vectors: ``encoder.similar`` when the index was made
    with it, else the bundled model with the recorded id; None for an index made before whole
    vectors had their own model (they are its pooled segment vectors)."""
    wanted = stored.get("similar_model_id")
    if wanted is None:
        return None
    if encoder.similar.model_id == wanted:
        return encoder.similar
    from .audio2vec import Encoder
    from .audio2vec.encoder import bundled_model

    folder = bundled_model(wanted)
    if folder is None:
        from .audio2vec.retired import raise_if_retired

        raise_if_retired(index_dir, wanted, space="similar")
        raise IndexMismatchError(
            f"index at {index_dir} was built with similar model {wanted}, which neither model {encoder.name!r} "
            "nor this audio2vec's bundled models are: rebuild the index (`audio2vec index YOUR_FOLDERS --index NEW_FOLDER`)"
        )
    return Encoder.load(folder)
