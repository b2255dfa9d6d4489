"""SimpleImputer lowered: fill NaN with the fitted statistics, then its missing-indicator columns."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower

log = logging.getLogger(__name__)


class LoweredImputer:
    """``SimpleImputer(missing_values=nan, add_indicator=...)`` on a float64 matrix."""

    def __init__(self, imputer: Any):
        missing = imputer.missing_values
        if not (isinstance(missing, float) and np.isnan(missing)):
            raise CannotLower(f"SimpleImputer with missing_values={missing!r} (only NaN is lowered)")
        statistics = np.asarray(imputer.statistics_, dtype=np.float64)
        empty = np.isnan(statistics)
        if empty.any() and getattr(imputer, "keep_empty_features", False):
            raise CannotLower("SimpleImputer(keep_empty_features=True) with an all-missing feature")
        #: Features without a statistic (all missing in training) are dropped, as sklearn does.
        self.kept = np.flatnonzero(~empty)
        self.statistics = statistics[self.kept]
        indicator = getattr(imputer, "indicator_", None)
        self.indicator_features = None if indicator is None else np.asarray(indicator.features_, dtype=np.intp)
        if indicator is not None and not (
            isinstance(indicator.missing_values, float) and np.isnan(indicator.missing_values)
        ):
            raise CannotLower("MissingIndicator on a value other than NaN")

    def transform(self, X: np.ndarray) -> np.ndarray:
        kept = X[:, self.kept] if len(self.kept) != X.shape[1] else X
        imputed = np.where(np.isnan(kept), self.statistics, kept)
        if self.indicator_features is None:
            return imputed
        flags = np.isnan(X[:, self.indicator_features]).astype(np.float64)
        return np.concatenate([imputed, flags], axis=1)
