"""Held-out evaluation: the evidence the promotion gate decides on.

The candidate and the champion are both measured here, on the same test rows with the same
scorers, so the gate compares like with like. Besides the metrics it records what serving will
feel: per-slice quality (a model can win on average and lose a segment), prediction latency and
the artifact's size. The output is a plain JSON-safe dict; no MLflow here.
"""

from __future__ import annotations

import logging
import pickle
import time
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.metrics import higher_is_better
from modelops.training.scoring import build_scorers, cached_responses, row_positions, score

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)

#: Slices with fewer rows are reported but flagged ``small``: their metric is too noisy to gate on.
MIN_SLICE_ROWS = 30
#: Rows per timed predict call, and how many timed calls (after one warm-up) the median is over.
LATENCY_ROWS = 1000
LATENCY_REPEATS = 5
MISSING_SLICE = "__missing__"


def model_size_mb(model: Any) -> float | None:
    """Size of the pickled model in MB: close to the skops artifact, and works for any model object."""
    try:
        return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
    except Exception as exc:  # an unpicklable model is reported, not fatal: the gate refuses unknown size
        log.warning("cannot measure model size: %s", exc)
        return None


def prediction_latency_ms_per_1k(model: Any, X: pd.DataFrame, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall time of ``predict`` on up to 1,000 rows, scaled to milliseconds per 1,000 rows.

    One untimed warm-up call first (lazy imports, caches); the median ignores a noisy neighbour.
    """
    import statistics

    batch = X.iloc[:LATENCY_ROWS]
    if len(batch) == 0:
        raise ValueError("cannot time predictions on zero rows")
    model.predict(batch)
    timings = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        model.predict(batch)
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings) * LATENCY_ROWS / len(batch)


def _classes(model: Any, y: Any) -> list[Any] | None:
    classes = getattr(model, "classes_", None)
    if classes is not None:
        return list(classes)
    import pandas as pd

    return sorted(pd.Series(y).dropna().unique().tolist())


def _json_key(value: Any) -> str:
    """Slice values become JSON object keys: strings, with every kind of missing folded into one."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return MISSING_SLICE
    return str(value)


def _slice_quality(
    config: ModelConfig, model: Any, X: Any, y: Any, scorer: Any, slice_values: Any, column: str | None
) -> dict[str, Any]:
    """The primary metric per slice value, small slices flagged (too noisy to gate on). ``model``
    and ``X`` are the :func:`~modelops.training.scoring.cached_responses` model and row positions."""
    import numpy as np
    import pandas as pd

    primary = config.metrics.primary
    values = pd.Series(np.asarray(slice_values, dtype=object))
    if len(values) != len(X):
        raise ValueError(f"{config.name}: {len(values)} slice values but {len(X)} test rows")
    keys = values.map(_json_key)
    groups = {}
    for key in sorted(keys.unique()):
        mask = (keys == key).to_numpy()
        rows = int(mask.sum())
        groups[key] = {
            "rows": rows,
            "primary": score(scorer, primary, model, X[mask], y[mask]),
            "small": rows < MIN_SLICE_ROWS,
        }
    return {
        "column": column if column is not None else getattr(slice_values, "name", None),
        "min_rows": MIN_SLICE_ROWS,
        "groups": groups,
    }


def evaluate_model(
    model: Any,
    X_test: pd.DataFrame,
    y_test: Any,
    config: ModelConfig,
    slice_values: pd.Series | None = None,
) -> dict[str, Any]:
    """Primary and secondary metrics, per-slice primary, latency and size of one fitted model.

    ``slice_values`` defaults to ``X_test[config.gate.slice_column]``; pass it to slice by
    something else aligned with the test rows. Returns::

        {"n_rows", "primary_metric", "higher_is_better", "primary", "metrics": {name: value},
         "slices": None | {"column", "min_rows", "groups": {value: {"rows", "primary", "small"}}},
         "latency_ms_per_1k", "latency_rows", "model_size_mb"}

    A metric undefined on the data (e.g. AUC on a slice holding one class) is ``None``.
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in config.feature_names if c not in X_test.columns]
    if missing:
        raise ValueError(f"{config.name}: test data lacks feature column(s) {missing}")
    X = X_test[config.feature_names].reset_index(drop=True)
    y = pd.Series(np.asarray(y_test), name=config.target)
    if len(X) == 0:
        raise ValueError(f"{config.name}: the test set is empty")
    if len(X) != len(y):
        raise ValueError(f"{config.name}: {len(X)} test rows but {len(y)} target values")

    primary = config.metrics.primary
    scorers = build_scorers(config, _classes(model, y) if config.is_classifier else None)
    # Each response method once over the test rows (in chunks), shared by every metric and slice.
    answers, positions = cached_responses(model, X, config.is_classifier), row_positions(len(X))
    metrics = {m: score(s, m, answers, positions, y) for m, s in scorers.items()}

    column = config.gate.slice_column
    if slice_values is None and column is not None:
        slice_values = X_test[column]
    slices = None
    if slice_values is not None:
        slices = _slice_quality(config, answers, positions, y, scorers[primary], slice_values, column)

    latency = prediction_latency_ms_per_1k(model, X)
    size = model_size_mb(model)
    result = {
        "n_rows": len(X),
        "primary_metric": primary,
        "higher_is_better": higher_is_better(primary),
        "primary": metrics[primary],
        "metrics": metrics,
        "slices": slices,
        "latency_ms_per_1k": round(latency, 4),
        "latency_rows": min(len(X), LATENCY_ROWS),
        "model_size_mb": None if size is None else round(size, 6),
    }
    log.info(
        "%s: test %s=%s on %d rows, %.1f ms/1k rows, %s MB",
        config.name,
        primary,
        metrics[primary],
        len(X),
        latency,
        result["model_size_mb"],
    )
    return result


__all__ = ["evaluate_model", "model_size_mb", "prediction_latency_ms_per_1k", "MIN_SLICE_ROWS"]
