"""StandardScaler lowered: the same subtraction and division, in the same order, as sklearn."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class LoweredScaler:
    """``StandardScaler`` (with or without mean / std) on a float64 matrix."""

    def __init__(self, scaler: Any):
        self.mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else None
        self.scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else None

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(X, dtype=np.float64, copy=True)
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out
