"""LogisticRegression and Ridge lowered: one matrix product, then sklearn's own link functions."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class LoweredLogistic:
    """Binary: the sigmoid of the decision, as ``[1 - p, p]``; multiclass: the softmax (as sklearn 1.9)."""

    description = "logistic regression (numpy)"

    def __init__(self, model: Any):
        self.coef_t = np.ascontiguousarray(np.asarray(model.coef_, dtype=np.float64).T)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)
        self.classes = np.asarray(model.classes_)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        scores = X @ self.coef_t + self.intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import expit
        from sklearn.utils.extmath import softmax

        decision = self._decision(X)
        if len(self.classes) <= 2:
            p = expit(decision)
            return np.stack([1 - p, p], axis=1)
        return softmax(decision, copy=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        decision = self._decision(X)
        if decision.ndim == 1:
            return self.classes[(decision > 0).astype(np.intp)]
        return self.classes[decision.argmax(axis=1)]


class LoweredRidge:
    """``X @ coef + intercept``."""

    description = "ridge regression (numpy)"
    classes = None

    def __init__(self, model: Any):
        coef = np.asarray(model.coef_, dtype=np.float64)
        if coef.ndim != 1:
            from modelops.serving.compiled.base import CannotLower

            raise CannotLower(f"Ridge with {coef.shape[0]} targets (one target is lowered)")
        self.coef = coef
        self.intercept = float(model.intercept_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef + self.intercept

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise AttributeError("a regression has no probabilities")
