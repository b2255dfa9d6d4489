"""HistGradientBoosting{Classifier,Regressor} lowered: every iteration's trees walked at once.

The raw prediction is the baseline plus each tree's leaf value, added in sklearn's order
(numpy's reduction over the first axis is sequential); the link (sigmoid, softmax, identity...)
is the fitted model's own loss object, so the last step is literally sklearn's.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower
from modelops.serving.compiled.tree_walk import TreeWalker

log = logging.getLogger(__name__)


class LoweredHistBoosting:
    def __init__(self, model: Any, classifier: bool):
        if getattr(model, "_preprocessor", None) is not None:
            raise CannotLower("HistGradientBoosting with native categorical features")
        loss = getattr(model, "_loss", None)
        if loss is None:
            raise CannotLower("HistGradientBoosting without its fitted loss (a different scikit-learn version)")
        predictors = [p for iteration in model._predictors for p in iteration]
        nodes = [p.nodes for p in predictors]
        if any(n["is_categorical"].any() for n in nodes):
            raise CannotLower("HistGradientBoosting tree with a categorical split")
        self.walker = TreeWalker(
            features=[n["feature_idx"] for n in nodes],
            thresholds=[n["num_threshold"] for n in nodes],
            lefts=[n["left"] for n in nodes],
            rights=[n["right"] for n in nodes],
            is_leaf=[n["is_leaf"] for n in nodes],
            missing_left=[n["missing_go_to_left"] for n in nodes],
            depths=[int(n["depth"].max()) for n in nodes],
        )
        self.leaf_values = np.concatenate([n["value"] for n in nodes]).astype(np.float64) if nodes else np.zeros(0)
        self.per_iteration = int(model.n_trees_per_iteration_)
        self.iterations = len(model._predictors)
        self.baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, -1)
        self.loss = loss
        self.classes = np.asarray(model.classes_) if classifier else None
        self.description = f"histogram gradient boosting, {self.iterations} iterations (numpy)"

    def _raw(self, X: np.ndarray) -> np.ndarray:
        rows, k = X.shape[0], self.per_iteration
        stacked = np.empty((self.iterations + 1, rows, k), dtype=np.float64)
        stacked[0] = self.baseline
        if self.iterations:
            leaves = self.walker.leaves(np.asarray(X, dtype=np.float64))  # (rows, iterations * k)
            stacked[1:] = self.leaf_values[leaves].reshape(rows, self.iterations, k).transpose(1, 0, 2)
        return np.add.reduce(stacked, axis=0)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise AttributeError("a regression has no probabilities")
        return self.loss.predict_proba(self._raw(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        if self.classes is None:
            return self.loss.link.inverse(raw.ravel())
        if raw.shape[1] == 1:
            return self.classes[(raw.ravel() > 0).astype(np.intp)]
        return self.classes[raw.argmax(axis=1)]
