"""The compiled scoring path: a fitted pipeline lowered to plain numpy array code.

One small module per lowered step (:mod:`.impute`, :mod:`.scale`, :mod:`.one_hot`,
:mod:`.column_transformer`, :mod:`.linear`, :mod:`.forest`, :mod:`.hist_boosting`, :mod:`.library`),
assembled by :mod:`.scorer`; :mod:`.parity` judges compiled against pipeline answers and holds
the registry tags that carry the verdict from the deploy to serving. Pure: no MLflow, no HTTP,
so the deploy imports it without serving's app. float64 throughout (float32 where sklearn casts).
"""

from __future__ import annotations

from modelops.serving.compiled.base import CannotLower, Columns
from modelops.serving.compiled.parity import (
    COMPILED,
    PIPELINE,
    SCORING_PATH_TAG,
    ParityVerdict,
    check_parity,
    path_of_tags,
)
from modelops.serving.compiled.scorer import CompiledScorer, lower, lower_or_reason

__all__ = [
    "COMPILED",
    "PIPELINE",
    "SCORING_PATH_TAG",
    "CannotLower",
    "Columns",
    "CompiledScorer",
    "ParityVerdict",
    "check_parity",
    "lower",
    "lower_or_reason",
    "path_of_tags",
]
