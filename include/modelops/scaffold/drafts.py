"""The scaffold's judgement calls on a sample: the gate's floor, label balance, range signs, type hints.

Kept apart from :mod:`modelops.scaffold.cli` (which reads options and writes files) and
:mod:`modelops.scaffold.declaration` (which infers the model's YAML) so each rule is
small and testable on its own.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

#: How far above chance (as a share of the way from chance to a perfect score) a score must be.
FLOOR_ABOVE_CHANCE = 0.2
#: How much better than predicting a constant an error metric must be (0.9 = 10% lower error).
CEILING_VS_CONSTANT = 0.9
#: No class may take more than this share of a batch (or more than halfway from the sample's
#: largest share to 100%, if the sample is already more lopsided).
MAX_CLASS_SHARE = 0.95
#: Label balance is drafted only if a typical batch holds this many rows of the rarest class:
#: fewer, and a healthy batch holds no row of it too often (5 expected: about 0.7% of batches).
MIN_EXPECTED_RARE_ROWS = 5
#: A numeric feature with at most this many distinct whole values is probably a code.
MAX_CODE_VALUES = 3


def draft_floor(label: pd.Series, problem_type: str, metric: str) -> tuple[float | None, str]:
    """``gate.min_primary`` for a first model, and the sentence that explains it.

    Without a floor the first candidate has no champion to beat and is promoted whatever its
    quality. For a score (higher is better) the floor is a bit above what chance scores; for an
    error (lower is better) it is a ceiling a bit below the error of predicting a constant.
    """
    values = label.dropna()
    if metric == "roc_auc":
        return _above(0.5, "a random ranking scores roc_auc 0.5")
    if metric == "accuracy":
        share = float(values.value_counts(normalize=True).max())
        return _above(share, f"always predicting the most common class scores accuracy {share:.3g}")
    if metric in {"f1_macro", "f1", "precision", "recall"}:
        classes = max(2, int(values.nunique()))
        chance = 1.0 / classes
        return _above(chance, f"guessing with the sample's class shares scores {metric} about 1/{classes}")
    if metric in {"rmse", "mae"}:
        numbers = values.astype(float)
        if metric == "rmse":
            constant, what = float(numbers.std(ddof=0)), "the mean"
        else:
            constant, what = float((numbers - numbers.median()).abs().mean()), "the median"
        if not math.isfinite(constant) or constant <= 0:
            return None, f"no {metric} ceiling drafted: the label is constant in the sample"
        ceiling = float(f"{CEILING_VS_CONSTANT * constant:.3g}")
        return ceiling, (
            f"a ceiling: {CEILING_VS_CONSTANT:g} x the {metric} of always predicting {what} on the sample "
            f"({constant:.3g}); a model no better than a constant is not promoted"
        )
    return None, f"no floor drafted for {metric}: set gate.min_primary by hand"


def _above(chance: float, why: str) -> tuple[float, str]:
    floor = float(f"{chance + FLOOR_ABOVE_CHANCE * (1.0 - chance):.3g}")
    return floor, f"a floor a bit above chance: {why}; a first model below {floor:g} is not promoted"


def label_balance(label: pd.Series, batch_rows: float) -> tuple[list[tuple[str, dict[str, Any], str]], str]:
    """Expectations (type, kwargs, notes) that refuse a batch with one class, or one class almost
    only, and a sentence saying what was drafted. ``batch_rows``: the rows of a typical batch."""
    column = str(label.name)
    shares = label.dropna().value_counts(normalize=True)
    rare = float(shares.min()) * batch_rows
    if rare < MIN_EXPECTED_RARE_ROWS:
        return [], (
            f"not drafted: a typical batch of {batch_rows:g} rows holds {rare:.2g} rows of the rarest class, so a "
            "healthy batch often misses a class; add expect_column_unique_value_count_to_be_between (min 2) on the "
            "label if batches are larger"
        )
    largest = float(shares.max())
    max_share = max(MAX_CLASS_SHARE, largest + (1.0 - largest) / 2)
    mostly = math.floor((1.0 - max_share) * 10_000) / 10_000
    items: list[tuple[str, dict[str, Any], str]] = [
        (
            "expect_column_unique_value_count_to_be_between",
            {"column": column, "min_value": 2},
            "Label balance: every batch holds at least two classes; one class only is a mis-join or a filter. "
            "A very small batch can miss by chance.",
        )
    ]
    summary = f"at least 2 classes per batch, none above {max_share:.1%} of it"
    if mostly <= 0:
        return items, summary
    for value in sorted(shares.index.tolist(), key=str):
        plain = value.item() if hasattr(value, "item") else value
        items.append(
            (
                "expect_column_values_to_not_be_in_set",
                {"column": column, "value_set": [plain], "mostly": mostly},
                f"Label balance: class {plain!r} is {shares[value]:.1%} of the sample; above {max_share:.1%} of "
                "a batch the label is probably broken.",
            )
        )
    return items, summary


def keep_range_signs(suite: dict[str, Any], frame: pd.DataFrame) -> None:
    """Widened ranges keep the sample's sign: never below 0 if the sample has no negative value
    (nor above 0 if no positive one), and fractions (values in [0, 1], not only whole) stay in [0, 1]."""
    for item in suite["expectations"]:
        kwargs = item["kwargs"]
        column = kwargs.get("column")
        if item["type"] != "expect_column_values_to_be_between" or column not in frame:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        if values.empty:
            continue
        low, high = float(values.min()), float(values.max())
        fraction = low >= 0 and high <= 1 and not bool((values % 1 == 0).all())
        if low >= 0 and kwargs.get("min_value") is not None and kwargs["min_value"] < 0:
            kwargs["min_value"] = 0.0
        if high <= 0 and kwargs.get("max_value") is not None and kwargs["max_value"] > 0:
            kwargs["max_value"] = 0.0
        if fraction and kwargs.get("max_value") is not None and kwargs["max_value"] > 1:
            kwargs["max_value"] = 1.0


def categorical_hints(frame: pd.DataFrame, features: list[dict[str, Any]]) -> list[str]:
    """One line per numeric feature that looks like a code (two values, or a few whole numbers)."""
    hints = []
    for feature in features:
        if feature["type"] != "numeric":
            continue
        values = frame[feature["name"]].dropna()
        distinct = int(values.nunique())
        whole = bool((values.astype(float) % 1 == 0).all())
        if distinct == 2 or (whole and distinct <= MAX_CODE_VALUES):
            shown = sorted(values.unique().tolist())
            hints.append(
                f"hint: numeric column '{feature['name']}' has only {distinct} distinct values {shown}: if it is a "
                f"code or a category, re-run with --categorical {feature['name']}"
            )
    return hints
