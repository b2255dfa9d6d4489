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
