"""Training baseline: what the data looked like when the model learned, kept with the model version.

SageMaker Model Monitor's idea: statistics and constraints are computed once from the training
data and stored with the model; the daily monitor compares captured serving traffic against
them. So the profile has a fixed, versioned schema (``schema_version``), fixed histogram bins
(monitoring re-bins current data on the same edges with :func:`histogram` for PSI), finer
``fine_bins`` with each bin's sum of values (for the Wasserstein effect size; optional: a baseline
written before them is still read, with the coarse bins' estimate) and a small deterministic
sample per numeric feature (for KS tests), and everything is JSON-safe.

The constraints are turned into a Great Expectations suite as a plain dict
(:func:`constraints_to_gx_suite`); GX itself is not imported here (it is slow to import).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
QUANTILES = (1, 5, 25, 50, 75, 95, 99)
#: Inner bin edges at these quantiles of the reference: 12 bins, ~10% each in the middle, open ends.
BIN_QUANTILES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Finer bins for the Wasserstein effect size: every 2.5% quantile of the reference (the bins above
#: included), each with the sum of its values, so monitoring places each bin's mass at its mean
#: (exact when the two CDFs do not cross inside a bin; modelops.drift.wasserstein).
FINE_BIN_QUANTILES = tuple(k / 40 for k in range(1, 40))
#: Numeric features with at most this many distinct values get one bin per value instead.
DISCRETE_MAX_VALUES = 20
SAMPLE_SIZE = 1000
SAMPLE_SEED = 0
TOP_CATEGORIES = 50
OTHER = "__other__"
#: Categorical features with more distinct values than this get no allowed-set constraint.
MAX_ALLOWED_VALUES = 1000
#: Margins that turn observed statistics into constraints.
NULL_FRACTION_MARGIN = 0.05
RANGE_IQR_MARGIN = 0.5
RANGE_MOSTLY = 0.99
IN_SET_MOSTLY = 0.99


def histogram(values: Any, edges: list[float]) -> list[int]:
    """Counts over the open-ended bins of ``edges``: ``len(edges) + 1`` counts.

    Bin 0 is ``(-inf, edges[0])``, bin i is ``[edges[i-1], edges[i])``, the last is
    ``[edges[-1], +inf)``. Missing values are not counted. Monitoring must bin current data with
    this same function so reference and current counts line up.
    """
    import numpy as np

    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    index = np.searchsorted(np.asarray(edges, dtype=float), array, side="right")
    return np.bincount(index, minlength=len(edges) + 1).astype(int).tolist()


def bin_sums(values: Any, edges: list[float]) -> list[float]:
    """Sum of the values in each bin of :func:`histogram` (same bins, missing values left out)."""
    import numpy as np

    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    index = np.searchsorted(np.asarray(edges, dtype=float), array, side="right")
    return np.bincount(index, weights=array, minlength=len(edges) + 1).tolist()


def _fine_edges(values: Any, edges: list[float]) -> list[float]:
    """The coarse edges plus the reference's 2.5% quantiles (discrete features: the same edges)."""
    import numpy as np

    if len(edges) <= 1 or len(np.unique(values)) <= DISCRETE_MAX_VALUES:
        return list(edges)
    fine = np.unique(np.concatenate([np.asarray(edges, dtype=float), np.quantile(values, FINE_BIN_QUANTILES)]))
    return [float(x) for x in fine]


def _bin_edges(values: Any) -> list[float]:
    import numpy as np

    unique = np.unique(values)
    if len(unique) <= 1:
        return [float(unique[0])] if len(unique) else []
    if len(unique) <= DISCRETE_MAX_VALUES:
        return [float(x) for x in (unique[:-1] + unique[1:]) / 2.0]
    edges = np.unique(np.quantile(values, BIN_QUANTILES))
    return [float(x) for x in edges]


def _numeric_profile(series: pd.Series, name: str) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    try:
        numeric = pd.to_numeric(series, errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column '{name}' is declared numeric but holds non-numeric values: {exc}") from exc
    total = len(numeric)
    values = numeric.dropna().to_numpy()
    profile: dict[str, Any] = {
        "kind": "numeric",
        "dtype": str(series.dtype),
        "count": int(len(values)),
        "null_fraction": float(1 - len(values) / total) if total else 0.0,
    }
    if len(values) == 0:
        profile.update(
            {
                "min": None,
                "max": None,
                "mean": None,
                "std": None,
                "quantiles": {f"p{q}": None for q in QUANTILES},
                "bins": {"edges": [], "counts": [0]},
                "fine_bins": {"edges": [], "counts": [0], "sums": [0.0]},
                "sample": [],
            }
        )
        return profile
    edges = _bin_edges(values)
    fine_edges = _fine_edges(values, edges)
    if len(values) > SAMPLE_SIZE:
        rng = np.random.default_rng(SAMPLE_SEED)
        sample = values[np.sort(rng.choice(len(values), size=SAMPLE_SIZE, replace=False))]
    else:
        sample = values
    profile.update(
        {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "quantiles": {
                f"p{q}": float(v)
                for q, v in zip(QUANTILES, np.quantile(values, [q / 100 for q in QUANTILES]), strict=True)
            },
            "bins": {"edges": edges, "counts": histogram(values, edges)},
            "fine_bins": {
                "edges": fine_edges,
                "counts": histogram(values, fine_edges),
                "sums": bin_sums(values, fine_edges),
            },
            "sample": [float(v) for v in np.sort(sample)],
        }
    )
    return profile


def _categorical_profile(series: pd.Series) -> dict[str, Any]:
    total = len(series)
    present = series.dropna()
    strings = present.astype(str)
    counts = strings.value_counts()
    # Ties in frequency are broken by the value itself, so the same data gives the same listing.
    ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    top = ordered[:TOP_CATEGORIES]
    other = sum(int(c) for _, c in ordered[TOP_CATEGORIES:])
    top_counts = {str(k): int(c) for k, c in top}
    if other:
        top_counts[OTHER] = other
    n = len(present)
    return {
        "kind": "categorical",
        "dtype": str(series.dtype),
        "count": int(n),
        "null_fraction": float(1 - n / total) if total else 0.0,
        "cardinality": int(len(counts)),
        "counts": top_counts,
        "frequencies": {k: (c / n if n else 0.0) for k, c in top_counts.items()},
        # All observed values (not just the top 50) for the allowed-set constraint; dropped later.
        "_all_values": sorted(str(k) for k in counts.index) if len(counts) <= MAX_ALLOWED_VALUES else None,
    }


def _prediction_kind(predictions: Any, is_classifier: bool) -> str:
    import numpy as np

    array = np.asarray(predictions)
    if not is_classifier:
        return "numeric"
    if array.dtype.kind == "f":
        finite = array[np.isfinite(array)]
        if len(finite) and not np.all(np.equal(np.mod(finite, 1), 0)):
            return "numeric"  # scores or probabilities, not labels
    return "categorical"


def _strip_private(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if not k.startswith("_")}


def profile_baseline(
    df: pd.DataFrame,
    config: ModelConfig,
    *,
    predictions: Any = None,
    null_margin: float = NULL_FRACTION_MARGIN,
    range_iqr_margin: float = RANGE_IQR_MARGIN,
) -> dict[str, Any]:
    """Per-feature statistics of the training rows, plus the constraints derived from them.

    Returns ``{"schema_version", "model", "row_count", "features": {name: profile}, "target",
    "predictions", "constraints"}``; see the module docstring and the tests for the fields.
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in config.feature_names if c not in df.columns]
    if missing:
        raise ValueError(f"{config.name}: baseline data lacks feature column(s) {missing}")
    if len(df) == 0:
        raise ValueError(f"{config.name}: cannot profile an empty training set")

    raw: dict[str, dict[str, Any]] = {}
    for feature in config.features:
        series = df[feature.name]
        raw[feature.name] = (
            _numeric_profile(series, feature.name) if feature.type == "numeric" else _categorical_profile(series)
        )

    target = None
    if config.target in df.columns:
        series = df[config.target]
        target = _categorical_profile(series) if config.is_classifier else _numeric_profile(series, config.target)
        target = _strip_private(target)

    prediction_profile = None
    if predictions is not None:
        series = pd.Series(np.asarray(predictions))
        if len(series) != len(df):
            raise ValueError(f"{config.name}: {len(series)} predictions for {len(df)} rows")
        kind = _prediction_kind(series.to_numpy(), config.is_classifier)
        profile = _numeric_profile(series, "prediction") if kind == "numeric" else _categorical_profile(series)
        prediction_profile = _strip_private(profile)

    constraints = _constraints(config, raw, null_margin=null_margin, range_iqr_margin=range_iqr_margin)
    result = {
        "schema_version": SCHEMA_VERSION,
        "model": config.name,
        "row_count": int(len(df)),
        "features": {name: _strip_private(p) for name, p in raw.items()},
        "target": target,
        "predictions": prediction_profile,
        "constraints": constraints,
    }
    log.info("%s: baseline of %d rows, %d features", config.name, len(df), len(raw))
    return result


def _constraints(
    config: ModelConfig, profiles: dict[str, dict[str, Any]], *, null_margin: float, range_iqr_margin: float
) -> dict[str, Any]:
    """Observed statistics, loosened by margins, as limits monitoring can check row by row.

    A feature the config declares non-nullable that had no nulls keeps a zero null allowance:
    its first null in serving is a violation, not noise.
    """
    features: dict[str, Any] = {}
    for feature in config.features:
        profile = profiles[feature.name]
        observed_null = profile["null_fraction"]
        max_null = min(1.0, observed_null + null_margin) if feature.nullable or observed_null > 0 else 0.0
        entry: dict[str, Any] = {
            "type": feature.type,
            "nullable": feature.nullable,
            "max_null_fraction": round(max_null, 6),
        }
        if feature.type == "numeric":
            low, high = profile["min"], profile["max"]
            if low is None:
                entry.update({"min": None, "max": None})
            else:
                iqr = profile["quantiles"]["p75"] - profile["quantiles"]["p25"]
                width = iqr if iqr > 0 else (high - low)
                entry.update({"min": low - range_iqr_margin * width, "max": high + range_iqr_margin * width})
            entry["mostly"] = RANGE_MOSTLY
        else:
            entry["allowed_values"] = profile["_all_values"]
            entry["mostly"] = IN_SET_MOSTLY
        features[feature.name] = entry
    return {
        "schema_version": SCHEMA_VERSION,
        "columns": list(config.feature_names),
        "features": features,
        "margins": {
            "null_fraction": null_margin,
            "range_iqr": range_iqr_margin,
            "range_mostly": RANGE_MOSTLY,
            "in_set_mostly": IN_SET_MOSTLY,
        },
    }


def constraints_to_gx_suite(constraints: dict[str, Any], name: str, *, exact_match: bool = False) -> dict[str, Any]:
    """A GX 1.x ExpectationSuite as JSON (``gx.ExpectationSuite(**suite)`` loads it).

    ``exact_match=False`` because captured serving data carries extra columns (request id,
    prediction, model version); a missing feature column still fails.
    """

    def expectation(kind: str, kwargs: dict[str, Any], **meta: Any) -> dict[str, Any]:
        return {"type": kind, "kwargs": kwargs, "meta": {"source": "baseline constraints", **meta}}

    expectations = [
        expectation(
            "expect_table_columns_to_match_set",
            {"column_set": list(constraints["columns"]), "exact_match": exact_match},
        ),
    ]
    for column, rule in constraints["features"].items():
        max_null = float(rule["max_null_fraction"])
        if max_null < 1.0:
            expectations.append(
                expectation(
                    "expect_column_values_to_not_be_null",
                    {"column": column, "mostly": round(1.0 - max_null, 6)},
                    max_null_fraction=max_null,
                )
            )
        if rule["type"] == "numeric" and rule.get("min") is not None:
            expectations.append(
                expectation(
                    "expect_column_values_to_be_between",
                    {"column": column, "min_value": rule["min"], "max_value": rule["max"], "mostly": rule["mostly"]},
                )
            )
        elif rule["type"] == "categorical" and rule.get("allowed_values"):
            expectations.append(
                expectation(
                    "expect_column_values_to_be_in_set",
                    {"column": column, "value_set": list(rule["allowed_values"]), "mostly": rule["mostly"]},
                )
            )
    return {
        "name": name,
        "expectations": expectations,
        "meta": {
            "generated_by": "modelops.data.baseline.constraints_to_gx_suite",
            "constraints_schema_version": constraints.get("schema_version"),
        },
    }
