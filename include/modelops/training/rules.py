"""Training rules that can fail a fitted candidate (SageMaker Debugger's idea): overfitting,
unstable CV, degenerate predictions, non-convergence.

A candidate that breaks a rule is kept in the record but not selected, and the rule's message
says why, in numbers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from modelops.jsonsafe import finite
from modelops.metrics import higher_is_better

log = logging.getLogger(__name__)

#: Metrics on a fixed 0..1 scale (r2 is at most 1): gaps and spreads are compared in absolute
#: terms. Error metrics (rmse, mae, mape, log_loss) have the target's scale, so relative terms.
_BOUNDED_METRICS = {"roc_auc", "accuracy", "f1", "f1_macro", "precision", "recall", "r2"}
#: (Unlike ``modelops.metrics.UNIT_INTERVAL`` this counts r2 as bounded: a rule's gap on r2 is
#: compared in absolute points.)


@dataclass(frozen=True)
class TrainingRules:
    """Thresholds of the training rules; defaults suit the bundled models, override per test or run.

    Bounded metrics (AUC, accuracy, F1, R2...) are compared in absolute points; error metrics
    (rmse, mae, mape, log_loss) carry the target's units, so they are compared relative to the CV
    value instead.
    """

    #: Train minus CV primary, bounded metrics (AUC 0.98 train vs 0.75 CV = 0.23 > 0.2: fails).
    max_overfit_gap: float = 0.2
    #: 1 - train_error / cv_error, error metrics (train rmse under 30% of CV rmse: fails).
    max_relative_overfit_gap: float = 0.7
    #: Std of the primary across folds, bounded metrics.
    max_cv_std: float = 0.05
    #: Std / |mean| of the primary across folds, error metrics.
    max_cv_relative_std: float = 0.25
    #: Share of rows a classifier may give to its most frequent predicted class.
    max_majority_prediction_share: float = 0.99
    #: Std of a regressor's predictions / std of the target below which predictions are "constant".
    min_prediction_std_ratio: float = 1e-3
    #: Fail on a ConvergenceWarning during the final fit.
    fail_on_convergence_warning: bool = True


@dataclass(frozen=True)
class RuleResult:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value"] = finite(self.value)
        out["threshold"] = finite(self.threshold)
        return out


def check_overfitting(
    metric: str, train_value: float | None, cv_mean: float | None, rules: TrainingRules
) -> RuleResult:
    """Train far better than CV means the model memorised rows rather than learning a pattern."""
    name = "overfitting_gap"
    if train_value is None or cv_mean is None:
        return RuleResult(name, True, None, None, f"{metric} undefined on train or CV; overfitting not checked")
    if metric in _BOUNDED_METRICS:
        gap = train_value - cv_mean if higher_is_better(metric) else cv_mean - train_value
        threshold = rules.max_overfit_gap
        detail = f"train {metric} {train_value:.4f} vs CV {cv_mean:.4f}: gap {gap:.4f}"
    else:  # error metric: relative to the CV error
        gap = 1.0 - train_value / cv_mean if cv_mean > 0 else 0.0
        threshold = rules.max_relative_overfit_gap
        detail = f"train {metric} {train_value:.4g} vs CV {cv_mean:.4g}: train error is {gap:.0%} below CV"
    passed = gap <= threshold
    verdict = "within" if passed else "exceeds"
    return RuleResult(name, passed, gap, threshold, f"Overfitting: {detail}, {verdict} the limit {threshold:g}.")


def check_cv_stability(metric: str, folds: list[float | None], rules: TrainingRules) -> RuleResult:
    """A primary metric that swings across folds makes the CV mean, and the selection, unreliable."""
    import numpy as np

    name = "unstable_cv"
    values = [v for v in folds if v is not None]
    if len(values) < 2:
        return RuleResult(
            name, True, None, None, f"fewer than two defined CV folds for {metric}; stability not checked"
        )
    std = float(np.std(values))
    if metric in _BOUNDED_METRICS:
        value, threshold, what = std, rules.max_cv_std, f"std {std:.4f}"
    else:
        mean = abs(float(np.mean(values)))
        value = std / mean if mean > 0 else 0.0
        threshold, what = rules.max_cv_relative_std, f"std/mean {value:.2%}"
    passed = value <= threshold
    verdict = "within" if passed else "exceeds"
    return RuleResult(
        name,
        passed,
        value,
        threshold,
        f"CV stability: {metric} across {len(values)} folds has {what}, {verdict} the limit {threshold:g}.",
    )


def check_degenerate_predictions(
    is_classifier: bool, predictions: Any, y_true: Any, rules: TrainingRules
) -> RuleResult:
    """A model that answers the same thing for everyone has learned nothing usable.

    For classifiers the rule does not fire when the labels themselves are that lopsided: then the
    data, not the model, is the problem and the floor on the primary metric will say so.
    """
    import numpy as np
    import pandas as pd

    name = "degenerate_predictions"
    predictions = np.asarray(predictions)
    if len(predictions) == 0:
        return RuleResult(name, False, None, None, "Degenerate predictions: the model produced no predictions.")
    if is_classifier:
        shares = pd.Series(predictions).value_counts(normalize=True)
        share, top = float(shares.iloc[0]), shares.index[0]
        label_share = float(pd.Series(np.asarray(y_true)).value_counts(normalize=True).iloc[0])
        threshold = rules.max_majority_prediction_share
        passed = share < threshold or label_share >= threshold
        message = (
            f"Degenerate predictions: class {top!r} is predicted for {share:.1%} of training rows "
            f"(labels: majority {label_share:.1%}); limit {threshold:.0%}."
        )
        return RuleResult(name, passed, share, threshold, message)
    pred_std = float(np.std(predictions.astype(float)))
    y_std = float(np.std(np.asarray(y_true, dtype=float)))
    ratio = pred_std / y_std if y_std > 0 else (0.0 if pred_std == 0 else math.inf)
    threshold = rules.min_prediction_std_ratio
    passed = ratio >= threshold
    message = (
        f"Degenerate predictions: prediction std {pred_std:.4g} is {ratio:.2g} of the target std "
        f"{y_std:.4g}; minimum {threshold:g}."
    )
    return RuleResult(name, passed, ratio, threshold, message)


def check_convergence(warning_messages: list[str], rules: TrainingRules) -> RuleResult:
    """An optimiser that stopped at max_iter returns whatever it had: not a trustworthy model."""
    name = "non_convergence"
    count = len(warning_messages)
    passed = count == 0 or not rules.fail_on_convergence_warning
    if count == 0:
        message = "Convergence: the final fit converged."
    else:
        message = f"Convergence: the final fit raised {count} ConvergenceWarning(s): {warning_messages[0]}"
    return RuleResult(name, passed, float(count), 0.0, message)
