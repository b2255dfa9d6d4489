"""Metrics as sklearn scorers, in their natural sign: one way to score a model, shared by CV,
held-out evaluation and monitoring, so live and test numbers mean the same thing.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.metrics import metric_names

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)

#: Metric name -> (sklearn scorer name, sign that turns the scorer value into the natural value).
_SCORERS: dict[str, tuple[str, int]] = {
    "roc_auc": ("roc_auc", 1),
    "accuracy": ("accuracy", 1),
    "f1": ("f1", 1),
    "f1_macro": ("f1_macro", 1),
    "precision": ("precision", 1),
    "recall": ("recall", 1),
    "log_loss": ("neg_log_loss", -1),
    "rmse": ("neg_root_mean_squared_error", -1),
    "mae": ("neg_mean_absolute_error", -1),
    "r2": ("r2", 1),
    "mape": ("neg_mean_absolute_percentage_error", -1),
}


def metric_sign(metric: str) -> int:
    """+1 if the sklearn scorer returns the natural value, -1 if it returns its negation."""
    return _SCORERS[metric][1]


def build_scorers(config: ModelConfig, classes: list[Any] | None = None) -> dict[str, Any]:
    """sklearn scorers for the config's metrics, keyed by metric name.

    For binary problems the positive class is the last of the sorted labels (what sklearn's
    ``predict_proba[:, 1]`` means), so string labels work for f1/precision/recall too. log_loss
    gets the label list so a fold or slice holding one class still scores instead of failing.
    """
    from sklearn.metrics import f1_score, get_scorer, log_loss, make_scorer, precision_score, recall_score

    binary = config.problem_type == "binary_classification"
    pos_label = classes[-1] if binary and classes else None
    scorers: dict[str, Any] = {}
    for metric in metric_names(config):
        if metric in {"f1", "precision", "recall"} and pos_label is not None:
            func = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[metric]
            scorers[metric] = make_scorer(func, pos_label=pos_label, zero_division=0)
        elif metric == "log_loss" and classes:
            scorers[metric] = make_scorer(
                log_loss, greater_is_better=False, response_method="predict_proba", labels=list(classes)
            )
        elif metric == "roc_auc" and config.problem_type == "multiclass_classification":
            scorers[metric] = get_scorer("roc_auc_ovr")
        else:
            scorers[metric] = get_scorer(_SCORERS[metric][0])
    return scorers


def score(scorer: Any, metric: str, model: Any, X: pd.DataFrame, y: Any) -> float | None:
    """One metric in its natural sign (rmse positive); None when undefined (e.g. one class)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(scorer(model, X, y)) * metric_sign(metric)
    except ValueError as exc:
        log.info("metric %s undefined here: %s", metric, exc)
        return None
    return None if math.isnan(value) else value


#: Rows per model call when a large frame is scored: the pipeline's dense float64 intermediate
#: (one-hot columns included) stays bounded by this, not by the frame (benchmarks/growth.py).
PREDICT_CHUNK_ROWS = 100_000
#: The response methods a scorer may ask of a model (``sklearn.metrics._scorer``).
RESPONSE_METHODS = ("predict", "predict_proba", "decision_function")


def predict_in_chunks(model: Any, X: pd.DataFrame, method: str = "predict", rows: int = PREDICT_CHUNK_ROWS) -> Any:
    """``getattr(model, method)(X)``, called on at most ``rows`` rows at a time and concatenated."""
    import numpy as np

    call = getattr(model, method)
    if len(X) <= rows:
        return call(X)
    return np.concatenate([np.asarray(call(X.iloc[start : start + rows])) for start in range(0, len(X), rows)])


def row_positions(n: int) -> Any:
    """The ``X`` to give a :func:`replayed` or :func:`cached_responses` model: row positions, so a
    scorer called on a subset (a slice) gets the answers of exactly those rows."""
    import numpy as np

    return np.arange(n).reshape(-1, 1)


def replayed(is_classifier: bool, classes: Any, answers: dict[str, Any]) -> Any:
    """An estimator that answers each response method in ``answers`` with the given arrays
    (indexed by :func:`row_positions`), so the training scorers apply to answers already made:
    what serving answered (monitoring) or what a model answered once (evaluation)."""
    return _responder(is_classifier, classes, {m: (lambda a=a: a) for m, a in answers.items()})


def cached_responses(model: Any, X: pd.DataFrame, is_classifier: bool) -> Any:
    """``model`` seen through :func:`replayed`: each response method the model has is computed on
    the whole of ``X`` once (in chunks), when a scorer first asks for it, then reused by every
    metric and slice. Scores equal the model's own, at one model call per method."""
    import functools

    methods = [m for m in RESPONSE_METHODS if hasattr(model, m)]
    answers = {m: functools.cache(functools.partial(predict_in_chunks, model, X, m)) for m in methods}
    return _responder(is_classifier, getattr(model, "classes_", None) if is_classifier else None, answers)


def _responder(is_classifier: bool, classes: Any, answers: dict[str, Any]) -> Any:
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    def method(name: str):
        def respond(self, X: Any) -> Any:
            return np.asarray(answers[name]())[np.asarray(X)[:, 0].astype(np.intp)]

        respond.__name__ = name
        return respond

    mixin = ClassifierMixin if is_classifier else RegressorMixin
    cls = type("Replayed", (mixin, BaseEstimator), {name: method(name) for name in answers})
    estimator = cls()
    if is_classifier:
        estimator.classes_ = np.asarray(classes) if classes is not None else np.asarray([], dtype=object)
    return estimator
