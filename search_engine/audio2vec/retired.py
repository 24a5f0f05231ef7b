"""Models an earlier audio2vec bundled and this one no longer does.

An index records the model id of its segment vectors (``model_id``) and of its whole-sound
vectors (``similar_model_id``). When neither the model asked for nor a bundled model has that id,
the index cannot be searched with this version's models; if the id is one listed here, the error
says which retired model built the index and how to rebuild it, instead of a bare mismatch.
"""

from __future__ import annotations

from ..errors import IndexMismatchError

#: model id -> (name as it was bundled, what it was and why it left the package)
RETIRED_MODELS: dict[str, tuple[str, str]] = {
    "278b6d211e2250d2": (
        "autoencoder",
        "the seed denoising autoencoder (issue 3), the default model until the contrastive model "
        "replaced it; no longer bundled, to keep the package's weights small (its folder is "
        "models/autoencoder in the source repository, for benchmarks)",
    ),
    "6df30c97695a07c0": (
        "match_v1",
        "the first contrastive match model, the default until issue 18 and bundled beside the later "
        "defaults until the third match model (issue 18) replaced the second; no longer bundled, to keep "
        "the package's weights small",
    ),
    "61747447b4680898": (
        "match_v2",
        "the second contrastive match model, the default until the third match model (issue 18) and "
        "bundled beside it until the fourth replaced the third; no longer bundled, to keep the "
        "package's weights small",
    ),
}


def retired(model: str | None) -> tuple[str, str] | None:
    """``(name, note)`` of a retired model, by model id or by the name it was bundled under."""
    if model is None:
        return None
    if model in RETIRED_MODELS:
        return RETIRED_MODELS[model]
    return next((v for v in RETIRED_MODELS.values() if v[0] == model), None)


def raise_if_retired(index_dir, model: str | None, *, space: str = "segment") -> None:
    """Raise :class:`IndexMismatchError` naming the retired model (an id or a bundled name) that
    built the index at ``index_dir``, with the command that rebuilds it; return if ``model`` is
    not retired."""
    found = retired(model)
    if found is None:
        return
    name, note = found
    raise IndexMismatchError(
        f"index at {index_dir} was built with the {space} model {name!r} ({model}), which this version of "
        f"audio2vec no longer bundles: {note}. Rebuild the index with the current models: "
        f"`audio2vec index YOUR_FOLDERS --index NEW_FOLDER` (or `--model FOLDER` with a copy of the old model)"
    )


__all__ = ["RETIRED_MODELS", "retired", "raise_if_retired"]
