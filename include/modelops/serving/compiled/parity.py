"""Parity: the compiled scorer must answer like the scikit-learn pipeline, or the pipeline serves.

Both are fed the rows as serving feeds them (categorical values as objects with ``None`` as NaN,
numeric ones as float64). Classes must be equal; probabilities within :data:`PROBA_TOLERANCE`
absolute; regression predictions within :data:`REGRESSION_RTOL` relative (with an absolute floor
of :data:`REGRESSION_ATOL` for values near zero). The verdict is recorded on the registry
version (:data:`SCORING_PATH_TAG` and the tags beside it) by the deploy, and serving reads it when
it loads the version (:func:`path_of_tags`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower
from modelops.serving.compiled.scorer import CompiledScorer, lower_or_reason

log = logging.getLogger(__name__)

#: Registry version tags written by the deploy's parity gate and read by serving at load.
SCORING_PATH_TAG = "scoring_path"
SCORING_PATH_REASON_TAG = "scoring_path_reason"
SCORING_PATH_PARITY_TAG = "scoring_path_parity"
COMPILED = "compiled"
PIPELINE = "pipeline"

PROBA_TOLERANCE = 1e-6
REGRESSION_RTOL = 1e-6
REGRESSION_ATOL = 1e-9
#: Rows compared at most (a seeded sample of the held-out split beyond this).
MAX_PARITY_ROWS = 20_000


@dataclass(frozen=True)
class ParityVerdict:
    """Which path serves the version, and the evidence."""

    path: str
    reason: str
    rows: int = 0
    #: Largest |compiled - pipeline| over probabilities (classifier) or relative difference (regression).
    max_difference: float | None = None
    label_mismatches: int = 0
    scorer: str | None = None

    @property
    def passed(self) -> bool:
        return self.path == COMPILED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        """The registry version tags that carry this verdict to serving and to users."""
        evidence = {"rows": self.rows, "max_difference": self.max_difference, "label_mismatches": self.label_mismatches}
        return {
            SCORING_PATH_TAG: self.path,
            SCORING_PATH_REASON_TAG: self.reason[:4000],
            SCORING_PATH_PARITY_TAG: json.dumps(evidence),
        }


def served_columns(frame: Any, features: Sequence[str], numeric: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The rows as serving builds them: a DataFrame for the pipeline and columns for the compiled scorer."""
    import pandas as pd

    numeric_set = set(numeric)
    columns: dict[str, Any] = {}
    for name in features:
        if name in numeric_set:
            columns[name] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.array(frame[name].to_numpy(dtype=object), dtype=object, copy=True)
            values[pd.isna(values)] = np.nan  # serving sends missing categories as NaN
            columns[name] = values
    return pd.DataFrame(columns, columns=list(features)), columns


def compare(
    pipeline: Any, scorer: CompiledScorer, frame: Any, columns: Mapping[str, Any], is_classifier: bool
) -> ParityVerdict:
    """Score ``frame`` both ways and judge the differences against the stated tolerances."""
    rows = len(frame)
    if is_classifier and hasattr(pipeline, "predict_proba"):
        expected, got = np.asarray(pipeline.predict_proba(frame), dtype=np.float64), scorer.predict_proba(columns)
        if expected.shape != got.shape:
            return ParityVerdict(
                PIPELINE, f"probability shapes differ: compiled {got.shape}, pipeline {expected.shape}", rows
            )
        labels = np.asarray(pipeline.predict(frame))
        mismatches = int((scorer.classes[got.argmax(axis=1)] != labels).sum())
        difference = float(np.max(np.abs(got - expected), initial=0.0))
        ok = difference <= PROBA_TOLERANCE and mismatches == 0
        tolerance = f"probabilities within {PROBA_TOLERANCE:g}, classes equal"
    else:
        expected = np.asarray(pipeline.predict(frame))
        got = scorer.predict(columns)
        if is_classifier:
            mismatches, difference = int((np.asarray(got) != expected).sum()), 0.0
            ok, tolerance = mismatches == 0, "classes equal"
        else:
            expected, got = expected.astype(np.float64), np.asarray(got, dtype=np.float64)
            mismatches = 0
            scale = np.maximum(np.abs(expected), REGRESSION_ATOL / REGRESSION_RTOL)
            difference = float(np.max(np.abs(got - expected) / scale, initial=0.0))
            ok, tolerance = difference <= REGRESSION_RTOL, f"predictions within {REGRESSION_RTOL:g} relative"
    if ok:
        reason = f"parity passed on {rows} held-out rows ({tolerance}; max difference {difference:.3g})"
        return ParityVerdict(COMPILED, reason, rows, difference, mismatches, scorer.description)
    reason = (
        f"parity failed on {rows} held-out rows: max difference {difference:.3g}, {mismatches} differing class(es) "
        f"(needed: {tolerance}); the scikit-learn pipeline serves"
    )
    return ParityVerdict(PIPELINE, reason, rows, difference, mismatches, scorer.description)


def check_parity(
    pipeline: Any, frame: Any, features: Sequence[str], numeric: Sequence[str], is_classifier: bool, lowered: Any = None
) -> ParityVerdict:
    """Lower ``pipeline`` (or take ``lowered``), compare on ``frame``; the verdict says which path serves and why."""
    if frame is None or len(frame) == 0:
        return ParityVerdict(PIPELINE, "no held-out rows to check parity on; the scikit-learn pipeline serves")
    scorer, reason = (lowered, None) if lowered is not None else lower_or_reason(pipeline)
    if scorer is None:
        return ParityVerdict(PIPELINE, f"cannot be compiled: {reason}; the scikit-learn pipeline serves")
    if len(frame) > MAX_PARITY_ROWS:
        frame = frame.sample(n=MAX_PARITY_ROWS, random_state=0)
    served, columns = served_columns(frame, features, numeric)
    try:
        return compare(pipeline, scorer, served, columns, is_classifier)
    except (CannotLower, ValueError, TypeError, IndexError, KeyError) as exc:
        return ParityVerdict(PIPELINE, f"the compiled scorer failed on held-out rows: {type(exc).__name__}: {exc}; the scikit-learn pipeline serves", len(served))  # fmt: skip


def path_of_tags(tags: Mapping[str, str] | None) -> tuple[str, str]:
    """The path a version's tags allow and why: compiled only after a passed parity gate."""
    tags = tags or {}
    path = tags.get(SCORING_PATH_TAG)
    if path == COMPILED:
        return COMPILED, tags.get(SCORING_PATH_REASON_TAG) or "parity passed at deploy"
    if path == PIPELINE:
        return PIPELINE, tags.get(SCORING_PATH_REASON_TAG) or "parity gate chose the pipeline at deploy"
    return (
        PIPELINE,
        "no parity verdict on this version (deployed before compiled scoring): deploy it again to check parity",
    )
