"""Realised performance of the served predictions against late labels, vs the test metrics.

The served predictions are replayed through the training scorers, so a live number and the
champion's test number mean the same thing; a drop counts only past a tolerance wide enough for
the noise of a few hundred labels (see :func:`drop_tolerance`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.jsonsafe import finite, json_safe
from modelops.metrics import higher_is_better, metric_names, worse_by
from modelops.monitoring.capture_format import LABEL, PREDICTION, PROBABILITIES
from modelops.monitoring.labels import LabelledRows, probability_matrix

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)

#: Joined labels needed before realised metrics are judged.
MIN_LABELS = 100
#: Tolerance floors for live metrics: ``config.gate.tolerance`` is a paired comparison of two
#: models on the same test rows, while a live metric over a few hundred labels moves by several
#: points on noise alone. Absolute for bounded metrics, relative to the reference for errors.
BOUNDED_TOLERANCE_FLOOR = 0.05
RELATIVE_TOLERANCE_FLOOR = 0.10


def drop_tolerance(config: ModelConfig, reference: float | None, override: float | None) -> tuple[float, str]:
    """The primary-metric drop that counts as degraded, and where it comes from (for the report)."""
    if override is not None:
        return float(override), "argument"
    gate = float(config.gate.tolerance)
    if not higher_is_better(config.metrics.primary):
        floor = RELATIVE_TOLERANCE_FLOOR * abs(reference) if reference is not None else 0.0
        source = f"max(gate.tolerance, {RELATIVE_TOLERANCE_FLOOR:.0%} of the reference)"
    else:
        floor = BOUNDED_TOLERANCE_FLOOR
        source = f"max(gate.tolerance, {BOUNDED_TOLERANCE_FLOOR})"
    return max(gate, floor), source


def _reference(config: ModelConfig, baseline_metrics: Mapping[str, Any] | None) -> tuple[float | None, dict]:
    """The reference primary value and metrics, or ``(None, {})`` if they are for another metric."""
    primary = config.metrics.primary
    reference_metrics = dict((baseline_metrics or {}).get("metrics") or {})
    reference_primary = finite((baseline_metrics or {}).get("primary", reference_metrics.get(primary)))
    if baseline_metrics and baseline_metrics.get("primary_metric") not in (None, primary):
        log.warning(
            "%s: reference metrics are for %s, the config's primary is %s; no comparison",
            config.name,
            baseline_metrics.get("primary_metric"),
            primary,
        )
        return None, {}
    return reference_primary, reference_metrics


def _label_arrays(labels: pd.DataFrame | LabelledRows) -> tuple[Any, Any, Any]:
    """``(predictions, labels, probability matrix or None)`` of the rows with both a prediction
    and a label, from a DataFrame or the compact :class:`LabelledRows`."""
    import numpy as np
    import pandas as pd

    if isinstance(labels, LabelledRows):
        predictions, y, probabilities = labels.arrays()
    elif not {PREDICTION, LABEL} <= set(labels.columns):
        return np.empty(0, object), np.empty(0, object), None
    else:
        predictions, y = labels[PREDICTION].to_numpy(), labels[LABEL].to_numpy()
        probabilities = probability_matrix(labels[PROBABILITIES]) if PROBABILITIES in labels.columns else None
    keep = ~(pd.isna(predictions) | pd.isna(y))
    if not keep.all():
        predictions, y = predictions[keep], y[keep]
        probabilities = probabilities[keep] if probabilities is not None else None
    return predictions, y, probabilities


def _live_metrics(
    config: ModelConfig, predictions: Any, y: Any, probabilities: Any, classes: list[str] | None
) -> dict[str, float | None]:
    """The training scorers applied to what serving answered for the labelled rows."""
    import numpy as np

    from modelops.training.scoring import build_scorers, replayed, row_positions, score

    if config.is_classifier:
        y = y.astype(str).astype(object)
        predictions = predictions.astype(str).astype(object)
        known = classes or sorted(set(y.tolist()) | set(predictions.tolist()))
        if not classes or probabilities is None or probabilities.shape[1] != len(known):
            probabilities = None
    else:
        y = y.astype(float)
        predictions = predictions.astype(float)
        known, probabilities = None, None
    answers = {"predict": predictions} | ({"predict_proba": probabilities} if probabilities is not None else {})
    classes_ = np.asarray(known, dtype=object) if known is not None else None
    model = replayed(config.is_classifier, classes_, answers)
    scorers = build_scorers(config, list(known) if known else None)
    return {m: score(s, m, model, row_positions(len(y)), y) for m, s in scorers.items()}


def live_metrics(
    config: ModelConfig, labels: pd.DataFrame | LabelledRows, classes: list[str] | None
) -> dict[str, float | None]:
    """The training scorers on served answers and their labels (rows lacking either are left out)."""
    predictions, y, probabilities = _label_arrays(labels)
    return _live_metrics(config, predictions, y, probabilities, classes)


def _judge(result: dict[str, Any], n: int, reference_primary: float | None) -> None:
    """Set ``status``, ``message`` and ``degraded`` from the live and reference primary values."""
    primary, live_primary = result["primary_metric"], result["primary"]
    primary_drop, used_tolerance = result["primary_drop"], result["tolerance"]
    if live_primary is None:
        result["status"] = "undefined"
        result["message"] = (
            f"{primary} cannot be computed on these {n} labels (a single class, or no captured probabilities)"
        )
    elif reference_primary is None:
        result["status"] = "no_reference"
        result["message"] = f"{primary}={live_primary:.4g} on {n} labels; no reference metrics to compare with"
    else:
        degraded = primary_drop is not None and primary_drop > used_tolerance
        result["degraded"] = bool(degraded)
        result["status"] = "degraded" if degraded else "ok"
        result["message"] = (
            f"{primary}={live_primary:.4g} on {n} labels vs {reference_primary:.4g} at training: "
            f"{'worse' if primary_drop > 0 else 'better'} by {abs(primary_drop):.4g} "
            f"({'beyond' if degraded else 'within'} the tolerance {used_tolerance:.4g})"
        )


def performance(
    config: ModelConfig,
    labels_frame: pd.DataFrame | LabelledRows,
    baseline_metrics: Mapping[str, Any] | None = None,
    *,
    classes: list[str] | None = None,
    min_labels: int = MIN_LABELS,
    tolerance: float | None = None,
) -> dict[str, Any]:
    """Realised metrics of the served predictions against their labels, vs the champion's test metrics.

    ``labels_frame`` has ``prediction`` and ``label`` (and ``probabilities`` lists for classifiers,
    columns in ``classes`` order). ``baseline_metrics`` is the version's evaluation dict
    (``{"primary_metric", "primary", "metrics"}``). Metrics are the training scorers
    (:func:`modelops.training.candidate.build_scorers`), so live and test numbers mean the same thing.
    Status: ``insufficient_labels`` (fewer than ``min_labels``), ``undefined`` (the primary cannot
    be computed: one class, no probabilities), ``no_reference`` (metrics but nothing to compare
    with), ``ok`` or ``degraded`` (primary drop above the tolerance).
    """
    primary = config.metrics.primary
    predictions, y, probabilities = _label_arrays(labels_frame)
    n = len(y)
    reference_primary, reference_metrics = _reference(config, baseline_metrics)
    used_tolerance, tolerance_source = drop_tolerance(config, reference_primary, tolerance)
    result: dict[str, Any] = {
        "status": "insufficient_labels",
        "message": "",
        "labels": int(n),
        "min_labels": int(min_labels),
        "primary_metric": primary,
        "higher_is_better": higher_is_better(primary),
        "primary": None,
        "metrics": {m: None for m in metric_names(config)},
        "reference": {"primary": reference_primary, "metrics": {k: finite(v) for k, v in reference_metrics.items()}}
        if reference_primary is not None
        else None,
        "drop": {},
        "primary_drop": None,
        "tolerance": used_tolerance,
        "tolerance_source": tolerance_source,
        "degraded": False,
    }
    if n < min_labels:
        result["message"] = f"{n} joined label(s), at least {min_labels} needed to judge performance"
        return json_safe(result)

    metrics = _live_metrics(config, predictions, y, probabilities, classes)
    live_primary = metrics.get(primary)
    result["metrics"] = metrics
    result["primary"] = live_primary
    result["drop"] = {m: worse_by(m, finite(reference_metrics.get(m)), v) for m, v in metrics.items()}
    if reference_primary is not None:
        result["drop"][primary] = worse_by(primary, reference_primary, live_primary)
    result["primary_drop"] = result["drop"].get(primary)
    _judge(result, n, reference_primary)
    return json_safe(result)
