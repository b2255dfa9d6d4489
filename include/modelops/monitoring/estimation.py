"""Performance without labels: confidence-based performance estimation (CBPE, as NannyML does it).

Labels arrive late or never. If the served probabilities are calibrated (see
:mod:`modelops.training.calibration`, fitted on the held-out rows and stored with the baseline),
a row scored 0.8 is positive with probability 0.8, so the day's *expected* confusion matrix
follows from the probabilities alone: expected TP = sum of calibrated p over rows predicted
positive, and so on. From it: accuracy, precision, recall, F1 (binary), F1 macro (one-vs-rest),
log loss, and ROC AUC (expected true/false positive mass below each score, NannyML's estimate).

The confidence band is the sampling spread of the realised metric if calibration holds: labels are
drawn from the calibrated probabilities (seeded, so a re-run writes the same report) and the metric
computed per draw; the band is the estimate +/- ``SIGMAS`` standard deviations.

What it cannot see: CBPE assumes the relation between features and label (P(y|x)) is what it
was at training, i.e. only covariate shift. Under concept shift the probabilities stay confident
while the labels change; the estimate stays where it was and only realised metrics show the drop.
Regression models get no estimate (the report says so).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.jsonsafe import finite, json_safe
from modelops.metrics import higher_is_better, is_bounded, metric_names, worse_by

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

#: Served rows needed before an estimate is made (the band is too wide below).
MIN_ROWS = 100
#: Rows kept per version and day for the estimate (a seeded reservoir beyond that: memory stays bounded).
MAX_ROWS = 100_000
#: Label draws behind the confidence band, and its width in standard deviations (NannyML: 3).
DRAWS = 100
SIGMAS = 3.0
SEED = 0
#: Metrics CBPE estimates; others (none today for classifiers) are reported as not estimated.
ESTIMABLE = {"roc_auc", "accuracy", "f1", "f1_macro", "precision", "recall", "log_loss"}
ASSUMPTION = (
    "CBPE assumes no concept shift: it estimates from the calibrated probabilities, so it cannot see a drop "
    "caused by a change in how the label depends on the features (P(y|x)); only realised metrics on labels can"
)
_EPS = 1e-15


class ScoreSample:
    """The day's served probabilities and predictions of one version, capped at ``max_rows``:
    every row draws a seeded uniform priority and the ``max_rows`` lowest are kept (a uniform
    sample without replacement, the same files giving the same sample), chunk by chunk in numpy,
    so a day of millions of rows costs no Python per row beyond reading its probability lists."""

    def __init__(self, max_rows: int = MAX_ROWS, seed: int = SEED) -> None:
        import numpy as np

        self.max_rows = max_rows
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._priority = np.zeros(0)
        self._matrix: np.ndarray | None = None
        self._predictions = np.zeros(0, dtype=object)
        #: Row widths seen; more than one (or not the classes') is refused by :meth:`arrays`.
        self._widths: set[int] = set()

    def add(self, probabilities: pd.Series, predictions: pd.Series) -> None:
        """Fold one chunk in; rows without probabilities (a model that gave none) are skipped."""
        import numpy as np

        keep = probabilities.notna().to_numpy()
        if not keep.any():
            return
        rows = [np.asarray(p, dtype=float) for p in probabilities[keep]]
        widths = {len(r) for r in rows}
        self._widths |= widths
        self.seen += len(rows)
        if len(self._widths) > 1:  # refused at arrays(); nothing more to keep
            return
        matrix = np.vstack(rows) if rows[0].size else np.zeros((len(rows), 0))
        labels = predictions[keep].astype(str).to_numpy(dtype=object)
        priority = self._rng.random(len(rows))
        if self._matrix is not None:
            priority = np.concatenate([self._priority, priority])
            matrix = np.vstack([self._matrix, matrix])
            labels = np.concatenate([self._predictions, labels])
        if len(priority) > self.max_rows:
            chosen = np.sort(np.argpartition(priority, self.max_rows - 1)[: self.max_rows])  # in arrival order
            priority, matrix, labels = priority[chosen], matrix[chosen], labels[chosen]
        self._priority, self._matrix, self._predictions = priority, matrix, labels

    def __len__(self) -> int:
        return len(self._predictions)

    def arrays(self, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (n, k), predicted class index (n,))``; a prediction that is not a
        class (should not happen) falls back to the most probable class."""
        import numpy as np

        if not self._widths:
            return np.zeros((0, len(classes))), np.zeros(0, dtype=int)
        if self._widths != {len(classes)}:
            raise ValueError(
                f"captured probabilities have {sorted(self._widths)} columns, the classes are {list(classes)}"
            )
        matrix = self._matrix
        index = {c: i for i, c in enumerate(classes)}
        predicted = np.asarray([index.get(p, -1) for p in self._predictions], dtype=int)
        return matrix, np.where(predicted >= 0, predicted, matrix.argmax(axis=1))


# --- expected metrics: P is calibrated probabilities, or a one-hot label matrix (then exact) ------


def _binary_auc(p: np.ndarray, score: np.ndarray) -> float | None:
    """Expected ROC AUC: positive mass times the negative mass ranked below it (ties count half),
    over the expected number of positive-negative pairs. Exact when ``p`` is 0/1."""
    import numpy as np

    order = np.argsort(score, kind="stable")
    s, pp = score[order], p[order]
    neg = 1.0 - pp
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    group_neg = np.add.reduceat(neg, start)
    below = np.concatenate([[0.0], np.cumsum(group_neg)[:-1]])
    group = np.repeat(np.arange(len(start)), counts)
    numerator = float(np.sum(pp * (below[group] + 0.5 * (group_neg[group] - neg))))
    denominator = float(pp.sum() * neg.sum() - np.sum(pp * neg))
    return numerator / denominator if denominator > _EPS else None


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > _EPS else 0.0


def expected_metrics(P: np.ndarray, raw: np.ndarray, predicted: np.ndarray, metrics: Sequence[str]) -> dict:
    """The metrics' expected values under label probabilities ``P`` (n, k) for raw scores ``raw``
    and predicted class indices; the positive class of a binary model is the last column."""
    import numpy as np

    n, k = P.shape
    rows = np.arange(n)
    out: dict[str, float | None] = {}
    positive = predicted == k - 1
    tp, fp, fn = (
        float(P[positive, k - 1].sum()),
        float((1.0 - P[positive, k - 1]).sum()),
        float(P[~positive, k - 1].sum()),
    )
    for metric in metrics:
        if metric == "accuracy":
            out[metric] = float(P[rows, predicted].mean())
        elif metric == "precision":
            out[metric] = tp / (tp + fp) if tp + fp > _EPS else 0.0
        elif metric == "recall":
            out[metric] = tp / (tp + fn) if tp + fn > _EPS else 0.0
        elif metric == "f1":
            out[metric] = _f1(tp, fp, fn)
        elif metric == "f1_macro":
            scores = []
            for c in range(k):
                mine = predicted == c
                scores.append(_f1(float(P[mine, c].sum()), float((1 - P[mine, c]).sum()), float(P[~mine, c].sum())))
            out[metric] = float(np.mean(scores))
        elif metric == "log_loss":
            clipped = np.clip(raw, _EPS, 1.0)
            clipped = clipped / clipped.sum(axis=1, keepdims=True)
            out[metric] = float(-(P * np.log(clipped)).sum(axis=1).mean())
        elif metric == "roc_auc":
            columns = [k - 1] if k == 2 else range(k)
            aucs = [_binary_auc(P[:, c], raw[:, c]) for c in columns]
            out[metric] = None if any(a is None for a in aucs) else float(np.mean(aucs))
        else:
            out[metric] = None
    return out


def sampling_std(
    P: np.ndarray, raw: np.ndarray, predicted: np.ndarray, metric: str, draws: int = DRAWS
) -> float | None:
    """The standard deviation of the realised metric over label draws from ``P`` (seeded)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    cumulative = np.cumsum(P, axis=1)
    values = []
    for _ in range(draws):
        drawn = (rng.random((len(P), 1)) > cumulative).sum(axis=1).clip(0, P.shape[1] - 1)
        one_hot = np.eye(P.shape[1])[drawn]
        value = expected_metrics(one_hot, raw, predicted, [metric])[metric]
        if value is not None:
            values.append(value)
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


# --- the report section ---------------------------------------------------------------------------


def _not_estimated(config: ModelConfig, status: str, message: str, rows: int = 0) -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "method": "cbpe",
        "assumption": ASSUMPTION,
        "rows": int(rows),
        "primary_metric": config.metrics.primary,
        "estimated": None,
        "degraded": False,
    }


def _band(metric: str, estimate: float | None, sigma: float | None) -> dict[str, Any] | None:
    if estimate is None or sigma is None:
        return None
    lower, upper = estimate - SIGMAS * sigma, estimate + SIGMAS * sigma
    if is_bounded(metric):
        lower, upper = max(0.0, lower), min(1.0, upper)
    return {"lower": lower, "upper": upper, "sigma": sigma, "sigmas": SIGMAS}


def _realised(result: dict[str, Any], performance: Mapping[str, Any] | None) -> None:
    """Put the realised primary beside the estimate when the labels were enough to judge it."""
    perf = performance or {}
    realised = finite(perf.get("primary"))
    if realised is None or perf.get("status") in (None, "insufficient_labels", "undefined"):
        result["realised"] = None
        return
    estimate, band = result["estimated"], result["band"]
    inside = band is not None and band["lower"] <= realised <= band["upper"]
    result["realised"] = {
        "primary": realised,
        "labels": perf.get("labels"),
        "error": estimate - realised if estimate is not None else None,
        "within_band": bool(inside),
    }
    if band is not None and not inside:
        result["message"] += (
            f"; the realised {result['primary_metric']} {realised:.4g} lies outside the band: calibration no longer "
            "holds, likely concept shift (P(y|x) changed), which this estimate cannot see"
        )


def estimate_performance(
    config: ModelConfig,
    baseline: Mapping[str, Any] | None,
    scores: ScoreSample | None,
    classes: list[str] | None,
    performance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The day's estimated primary metric with its band, next to the realised one when labels exist.

    ``baseline`` is the version's training baseline (its ``calibration``); ``scores`` the day's
    served probabilities; ``performance`` the realised result of
    :func:`modelops.monitoring.performance.performance` (its reference and tolerance are reused, so
    an estimated drop is judged exactly like a realised one). Status: ``not_estimated``,
    ``insufficient_rows``, ``no_reference``, ``ok`` or ``degraded``.
    """
    from modelops.monitoring.performance import drop_tolerance
    from modelops.training.calibration import apply_calibration

    primary = config.metrics.primary
    if not config.is_classifier:
        return _not_estimated(
            config, "not_estimated", "no label-free estimate for a regression model: only realised metrics on labels"
        )
    calibration = (baseline or {}).get("calibration") or {}
    if calibration.get("status") != "ok":
        reason = calibration.get("reason") or "the baseline has no calibration (trained before estimation existed)"
        return _not_estimated(config, "not_estimated", f"no estimate: {reason}")
    n = len(scores) if scores is not None else 0
    if n < MIN_ROWS or not classes:
        return _not_estimated(
            config, "insufficient_rows", f"{n} served row(s) with probabilities, at least {MIN_ROWS} needed", rows=n
        )
    raw, predicted = scores.arrays(classes)
    P = apply_calibration(calibration, raw, classes)
    names = [m for m in metric_names(config) if m in ESTIMABLE]
    metrics = expected_metrics(P, raw, predicted, names)
    estimate = metrics.get(primary)
    band = _band(primary, estimate, sampling_std(P, raw, predicted, primary) if estimate is not None else None)
    reference = finite(((performance or {}).get("reference") or {}).get("primary"))
    tolerance, tolerance_source = drop_tolerance(config, reference, None)
    drop = worse_by(primary, reference, estimate)
    result = _not_estimated(config, "ok", "", rows=n) | {
        "rows_seen": scores.seen,
        "estimated": estimate,
        "higher_is_better": higher_is_better(primary),
        "band": band,
        "metrics": metrics,
        "reference": reference,
        "estimated_drop": drop,
        "tolerance": tolerance,
        "tolerance_source": tolerance_source,
        "calibration_quality": calibration.get("quality"),
    }
    if estimate is None:
        result["status"], result["message"] = "undefined", f"estimated {primary} is undefined on these {n} rows"
    elif drop is None:
        result["status"] = "no_reference"
        result["message"] = f"estimated {primary}={estimate:.4g} over {n} rows; no reference metric to compare with"
    else:
        result["degraded"] = drop > tolerance
        result["status"] = "degraded" if result["degraded"] else "ok"
        result["message"] = (
            f"estimated {primary}={estimate:.4g} (band {band['lower']:.4g} to {band['upper']:.4g}) over {n} rows "
            f"without labels vs {reference:.4g} at training: {'worse' if drop > 0 else 'better'} by {abs(drop):.4g} "
            f"({'beyond' if result['degraded'] else 'within'} the tolerance {tolerance:.4g})"
            if band
            else f"estimated {primary}={estimate:.4g} over {n} rows vs {reference:.4g} at training"
        )
    _realised(result, performance)
    return json_safe(result)
