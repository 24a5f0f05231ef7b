"""The fitted claim decision: log-odds that a clip is in the recording ranked first.

A decision is a plain dict stored with the model (``match_decision`` in its config.json) and read
here with numpy only; it is fitted by ``benchmarks/claims.py fit`` on clips of no recording the
model was trained on. Two kinds:

- ``"logistic"`` (the default when ``kind`` is missing): ``mean``, ``scale``, ``coef`` (one per
  input) and ``intercept``: ``intercept + coef · (x - mean) / scale``.
- ``"trees"``: boosted regression trees (gradient boosting on the logistic loss): ``init`` (log-odds)
  plus ``learning_rate`` times the sum of each tree's leaf value. Each tree is stored as flat node
  arrays ``feature``, ``cut``, ``left``, ``right``, ``value`` (a node is a leaf when ``left`` is -1;
  an input ``x[feature] <= cut`` goes left).

- ``"by_length"``: ``edges_s`` (ascending clip lengths, seconds) and ``parts`` (one decision of
  the kinds above per length range: clips shorter than ``edges_s[0]`` use ``parts[0]``, and so on),
  each with its own operating point: a 1-second clip is a single window and behaves unlike a
  3-second one (:func:`part`).
- ``"verified"``: ``verified`` and ``unverified``, one decision of the kinds above each: the first
  judges a match checked against its recording's audio (its claim features carry ``peaks``,
  :mod:`search_engine.verification`), the second one that was not (verification off, a file that
  cannot be read, a span of a long clip).

The inputs ``x`` are :func:`search_engine.query.claim_basis` of one match's claim features.
"""

from __future__ import annotations

import numpy as np


def part(decision: dict, duration_s: float, *, verified: bool = False) -> dict:
    """The decision that judges clips of ``duration_s`` seconds (itself unless ``"by_length"`` or
    ``"verified"``), checked against their recording's audio or not (``verified``)."""
    if decision.get("kind") == "verified":
        decision = decision["verified" if verified else "unverified"]
    if decision.get("kind") != "by_length":
        return decision
    return decision["parts"][int(np.searchsorted(decision["edges_s"], duration_s, side="right"))]


def log_odds(x: np.ndarray, decision: dict) -> float:
    """Log-odds (natural log) that the clip is in the match's recording.

    Parameters
    ----------
    x : np.ndarray [shape=(n_inputs,), float]
        The decision's inputs (:func:`search_engine.query.claim_basis`).
    decision : dict
        A fitted decision (see the module docstring).
    """
    kind = decision.get("kind", "logistic")
    if kind in ("by_length", "verified"):
        raise ValueError(f"a {kind!r} decision needs the clip's length: use part(decision, duration_s, verified=...) first")
    if kind == "logistic":
        z = (np.asarray(x, dtype=np.float64) - np.asarray(decision["mean"])) / np.asarray(decision["scale"])
        return float(np.dot(z, decision["coef"]) + decision["intercept"])
    if kind == "trees":
        feature, cut, left, right, value = _arrays(decision["trees"])
        x = np.asarray(x, dtype=np.float64)
        rows = np.arange(len(feature))
        node = np.zeros(len(feature), dtype=np.int64)
        for _ in range(feature.shape[1]):  # every tree one level down at a time
            nxt = np.where(x[feature[rows, node]] <= cut[rows, node], left[rows, node], right[rows, node])
            done = nxt < 0
            if done.all():
                break
            node = np.where(done, node, nxt)
        return float(decision["init"] + decision["learning_rate"] * value[rows, node].sum())
    raise ValueError(f"unknown decision kind {kind!r}")


_ARRAYS: dict[int, tuple] = {}


def _arrays(trees: list) -> tuple:
    """The trees as padded ``[n_trees, max_nodes]`` arrays (made once per stored tree list)."""
    hit = _ARRAYS.get(id(trees))
    if hit is not None and hit[0] is trees:
        return hit[1]
    width = max(len(t["feature"]) for t in trees)

    def pad(key, fill, dtype):
        return np.array([list(t[key]) + [fill] * (width - len(t[key])) for t in trees], dtype=dtype)

    arrays = (pad("feature", 0, np.int64), pad("cut", 0.0, np.float64), pad("left", -1, np.int64), pad("right", -1, np.int64), pad("value", 0.0, np.float64))
    _ARRAYS[id(trees)] = (trees, arrays)
    return arrays


def probability(z: float) -> float:
    """The logistic function of log-odds ``z`` (0..1)."""
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


def trees_from_sklearn(model, *, digits: int = 6) -> dict:
    """A ``"trees"`` decision from a fitted binary ``sklearn.ensemble.GradientBoostingClassifier``
    or ``HistGradientBoostingClassifier`` (numeric inputs, no missing values): its trees as plain
    lists, so that the runtime needs numpy only."""
    if hasattr(model, "_predictors"):  # HistGradientBoosting: leaf values already shrunk
        trees = []
        for (pred,) in model._predictors:
            n = pred.nodes
            leaf = n["is_leaf"].astype(bool)
            trees.append({
                "feature": [int(f) for f in n["feature_idx"]], "cut": [float(c) for c in n["num_threshold"]],
                "left": [-1 if lf else int(v) for lf, v in zip(leaf, n["left"])], "right": [-1 if lf else int(v) for lf, v in zip(leaf, n["right"])],
                "value": [round(float(v), digits) for v in n["value"]],
            })
        return {"kind": "trees", "init": round(float(np.ravel(model._baseline_prediction)[0]), digits), "learning_rate": 1.0, "trees": trees}
    prior = model.init_.class_prior_ if hasattr(model.init_, "class_prior_") else None
    if prior is not None:
        init = float(np.log(prior[1] / prior[0]))
    else:  # an init estimator sklearn did not make: read its raw prediction back
        init = float(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0])
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append({
            "feature": [max(int(f), 0) for f in t.feature], "cut": [float(c) for c in t.threshold],
            "left": [int(v) for v in t.children_left], "right": [int(v) for v in t.children_right],
            "value": [round(float(v), digits) for v in t.value[:, 0, 0]],
        })
    return {"kind": "trees", "init": round(init, digits), "learning_rate": float(model.learning_rate), "trees": trees}
