"""A model declaration inferred from a sample of its data: the YAML half of ``python -m modelops.scaffold``.

Feature kinds and nullability from the columns, the problem type from the label, and draft
metrics, gate and training window for that problem type, checked with the same strict schema the
DAGs use. Every refusal is a :class:`ScaffoldError` naming the column or option at fault.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from modelops.config import NAME_PATTERN, ModelConfig
from modelops.scaffold.drafts import draft_floor

log = logging.getLogger(__name__)

#: A numeric label with more distinct values than this is a regression target.
MAX_CLASSES = 50
REGRESSION_MIN_DISTINCT = 20
#: A categorical feature with at most this many values may be the gate's slice column.
MAX_SLICE_VALUES = 20
#: A text column with more distinct values than this, and more than half its rows distinct, is
#: free text or an identifier, not a category (one-hot columns per row, every new value "drift").
MAX_TEXT_CATEGORIES = 50

METRICS = {
    "binary_classification": {"primary": "roc_auc", "secondary": ["f1", "accuracy", "log_loss"]},
    "multiclass_classification": {"primary": "f1_macro", "secondary": ["accuracy", "log_loss"]},
    "regression": {"primary": "rmse", "secondary": ["mae", "r2"]},
}


class ScaffoldError(ValueError):
    """The sample cannot describe a model; the message names the column or option at fault."""


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def infer_problem_type(label: pd.Series) -> str:
    values = label.dropna()
    distinct = values.nunique()
    if distinct < 2:
        raise ScaffoldError(f"target '{label.name}': needs at least two distinct values, found {distinct}")
    if distinct == 2:
        return "binary_classification"
    if _is_numeric(values):
        whole = bool((values.astype(float) % 1 == 0).all())
        if distinct > REGRESSION_MIN_DISTINCT or not whole:
            return "regression"
    if distinct > MAX_CLASSES:
        raise ScaffoldError(
            f"target '{label.name}': {distinct} distinct non-numeric values is too many classes "
            f"(at most {MAX_CLASSES}); pass --problem-type if this is intended"
        )
    return "multiclass_classification"


def _check_inputs(
    frame: pd.DataFrame,
    name: str,
    target: str,
    named: dict[str, str | None],
    listed: dict[str, tuple[str, ...]],
) -> None:
    """Refuse a bad name, a column option naming no column, or a missing label."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"name {name!r}: must be lower-case letters, digits and underscores, starting with a letter"
        )
    for option, column in named.items():
        if column and column not in frame.columns:
            raise ScaffoldError(f"{option}: no column '{column}' in the sample; columns: {list(frame.columns)}")
    for option, columns in listed.items():
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise ScaffoldError(f"{option}: no column(s) {unknown} in the sample")
    if frame[target].isna().any():
        raise ScaffoldError(f"target '{target}': {int(frame[target].isna().sum())} row(s) have no label")


def _infer_feature(frame: pd.DataFrame, column: str, categorical: tuple[str, ...]) -> dict[str, Any]:
    """One feature's declaration: numeric or categorical, nullable when the sample has gaps."""
    series = frame[column]
    if series.isna().all():
        raise ScaffoldError(f"column '{column}' is empty in the sample: pass --drop {column} or a fuller sample")
    kind = "categorical" if column in categorical or not _is_numeric(series) else "numeric"
    distinct, present = series.nunique(), int(series.notna().sum())
    if (
        kind == "categorical"
        and column not in categorical
        and distinct > MAX_TEXT_CATEGORIES
        and distinct > present / 2
    ):
        raise ScaffoldError(
            f"column '{column}' has {distinct} distinct values in {present} rows: free text or an identifier is "
            f"not a categorical feature; pass --drop {column} (or --id-column {column}), or --categorical "
            f"{column} if it really is a category"
        )  # fmt: skip
    feature: dict[str, Any] = {"name": str(column), "type": kind}
    if series.isna().any():
        feature["nullable"] = True
    return feature


def _draft_gate(
    frame: pd.DataFrame, target: str, problem_type: str, features: list[dict[str, Any]]
) -> tuple[dict[str, Any], float]:
    """The promotion gate's draft (tolerance, floor, slice column) and the label's spread."""
    slice_column = next(
        (f["name"] for f in features if f["type"] == "categorical" and frame[f["name"]].nunique() <= MAX_SLICE_VALUES),
        None,
    )
    spread = 0.0
    if problem_type == "regression":
        spread = float(frame[target].std(ddof=0) or 0.0)
        tolerance = round(0.01 * spread, 6)
    else:
        tolerance = 0.005
    gate: dict[str, Any] = {"tolerance": tolerance}
    floor, _ = draft_floor(frame[target], problem_type, METRICS[problem_type]["primary"])
    if floor is not None:  # without one, any first model is promoted (it has no champion to beat)
        gate["min_primary"] = floor
    if slice_column:
        gate["slice_column"] = slice_column
    return gate, spread


def _window_days(frame: pd.DataFrame, timestamp_column: str | None) -> int:
    """The sample's span in days (30 without a timestamp), so a first run trains on all of it."""
    if not timestamp_column:
        return 30
    times = parse_timestamps(frame[timestamp_column], timestamp_column)
    return max(1, min(3650, (times.max().date() - times.min().date()).days + 1))


def infer_declaration(
    frame: pd.DataFrame,
    name: str,
    target: str,
    *,
    problem_type: str | None = None,
    timestamp_column: str | None = None,
    id_column: str | None = None,
    categorical: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    file_format: str = "csv",
    description: str = "",
    owner: str = "modelops",
) -> dict[str, Any]:
    """The model declaration for ``frame`` as a plain dict (what the YAML file holds)."""
    named = {"--target": target, "--timestamp-column": timestamp_column, "--id-column": id_column}
    _check_inputs(frame, name, target, named, {"--categorical": categorical, "--drop": drop})
    problem_type = problem_type or infer_problem_type(frame[target])
    if problem_type == "regression" and not _is_numeric(frame[target]):
        raise ScaffoldError(f"target '{target}': regression needs a numeric label, got {frame[target].dtype}")

    skip = {target, timestamp_column, id_column, *drop}
    features = [_infer_feature(frame, column, categorical) for column in frame.columns if column not in skip]
    if not features:
        raise ScaffoldError("no feature columns left besides the target, timestamp and id")
    gate, spread = _draft_gate(frame, target, problem_type, features)

    declaration: dict[str, Any] = {
        "name": name,
        "description": description or f"Declared from a sample of {len(frame)} rows by modelops.scaffold.cli.",
        "owner": owner,
        "problem_type": problem_type,
        "target": target,
        "features": features,
        "data": {"file_format": file_format},
        "training": {"window_days": _window_days(frame, timestamp_column)},
        "metrics": METRICS[problem_type],
        "gate": gate,
        "schedule": {"retrain": "@weekly", "monitor": "@daily"},
    }
    if timestamp_column:
        declaration["data"]["timestamp_column"] = timestamp_column
    if id_column:
        declaration["data"]["id_column"] = id_column
    try:
        config = ModelConfig.model_validate(declaration)
    except Exception as exc:  # pydantic's message names the field
        raise ScaffoldError(f"the inferred declaration is invalid: {exc}") from exc
    if problem_type == "regression" and "slice_column" in gate:
        # The slice limit is in the primary metric's units: the 0.05 default suits scores in [0, 1],
        # not an rmse in the label's units, where it would refuse every slightly worse slice.
        gate["max_slice_regression"] = _slice_limit(frame, config, fallback=0.05 * spread)
    return declaration


def _slice_limit(frame: pd.DataFrame, config: ModelConfig, fallback: float) -> float:
    """5% of a plain linear model's in-sample error on the sample: how much worse a slice may get."""
    import numpy as np

    from modelops.training.pipelines import build_pipeline

    try:
        label = frame[config.target].astype(float).to_numpy()
        fitted = build_pipeline(config, "linear").fit(frame[config.feature_names], label)
        errors = np.asarray(fitted.predict(frame[config.feature_names]), dtype=float) - label
        error = float(np.sqrt(np.mean(errors**2)) if config.metrics.primary == "rmse" else np.mean(np.abs(errors)))
    except Exception:  # noqa: BLE001 - a draft value; the label's spread stands in
        error = 0.0
    limit = 0.05 * error if math.isfinite(error) and error > 0 else fallback
    return float(f"{limit:.3g}") if limit > 0 else 0.0


def parse_timestamps(series: pd.Series, column: str) -> pd.Series:
    from modelops.training.time_split import parse_times

    times = parse_times(series)
    if times.isna().any():
        examples = series[times.isna()].head(3).tolist()
        raise ScaffoldError(
            f"--timestamp-column '{column}': {int(times.isna().sum())} row(s) have no readable time, e.g. {examples}"
        )
    return times
