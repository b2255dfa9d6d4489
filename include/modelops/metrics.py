"""Metrics by name: which exist for which problem, which way is better, and what range they live in.

Training, evaluation, the gate and monitoring all compare metric values; they ask this module
which direction "better" points instead of keeping their own copy of the rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.config import ModelConfig

CLASSIFICATION_METRICS = {"roc_auc", "accuracy", "f1", "f1_macro", "log_loss", "precision", "recall"}
#: Metrics of one positive class: undefined for multiclass (sklearn raises in cross-validation).
BINARY_ONLY_METRICS = {"f1", "precision", "recall"}
REGRESSION_METRICS = {"rmse", "mae", "r2", "mape"}
#: Metrics where a smaller value is better; every other metric is maximised.
LOWER_IS_BETTER = {"rmse", "mae", "mape", "log_loss"}
#: Metrics bounded to [0, 1] (a fixed tolerance means the same on every model).
UNIT_INTERVAL = {"roc_auc", "accuracy", "f1", "f1_macro", "precision", "recall"}


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def is_bounded(metric: str) -> bool:
    """True for metrics whose values live in [0, 1]; errors (rmse, mae, mape, log_loss) are not."""
    return metric in UNIT_INTERVAL


def worse_by(metric: str, reference: float | None, value: float | None) -> float | None:
    """How much worse ``value`` is than ``reference``, in the metric's units (positive = worse)."""
    if reference is None or value is None:
        return None
    return (value - reference) if metric in LOWER_IS_BETTER else (reference - value)


def metric_names(config: ModelConfig) -> list[str]:
    """Primary first, then secondaries, without duplicates."""
    names = [config.metrics.primary]
    names += [m for m in config.metrics.secondary if m not in names]
    return names
