"""RandomForest{Classifier,Regressor} lowered: all trees walked at once, averaged in sklearn's order.

sklearn casts X to float32 before comparing it with the (float64) thresholds; so does this.
Per-tree class fractions are normalised per leaf as ``DecisionTreeClassifier.predict_proba``
does, summed tree after tree (numpy's reduction over the first axis is sequential) and divided by
the number of trees: the same operations, so the same floats.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower
from modelops.serving.compiled.tree_walk import TreeWalker

log = logging.getLogger(__name__)


def _walker(model: Any) -> TreeWalker:
    trees = [e.tree_ for e in model.estimators_]
    if any(t.n_outputs != 1 for t in trees):
        raise CannotLower("random forest with several outputs")
    return TreeWalker(
        features=[t.feature for t in trees],
        thresholds=[t.threshold for t in trees],
        lefts=[t.children_left for t in trees],
        rights=[t.children_right for t in trees],
        is_leaf=[t.children_left == -1 for t in trees],
        missing_left=[getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=bool)) for t in trees],
        depths=[t.max_depth for t in trees],
    )


class LoweredForest:
    """Class fractions (classifier) or leaf means (regressor) per leaf, averaged over the trees."""

    def __init__(self, model: Any, classifier: bool):
        self.walker = _walker(model)
        self.n_trees = len(model.estimators_)
        self.classes = np.asarray(model.classes_) if classifier else None
        self.description = f"random forest of {self.n_trees} trees (numpy)"
        if classifier:
            n_classes = len(self.classes)
            per_tree = []
            for e in model.estimators_:
                value = np.asarray(e.tree_.value, dtype=np.float64)[:, 0, :n_classes].copy()
                normalizer = value.sum(axis=1)[:, np.newaxis]
                normalizer[normalizer == 0.0] = 1.0
                value /= normalizer
                per_tree.append(value)
            self.leaf_values = np.concatenate(per_tree)  # (all nodes, classes)
        else:
            self.leaf_values = np.concatenate(
                [np.asarray(e.tree_.value, dtype=np.float64)[:, 0, 0] for e in model.estimators_]
            )

    def _average(self, X: np.ndarray) -> np.ndarray:
        leaves = self.walker.leaves(np.asarray(X, dtype=np.float32))  # (rows, trees)
        values = self.leaf_values[leaves.T]  # (trees, rows[, classes])
        total = np.add.reduce(values, axis=0)
        total /= self.n_trees
        return total

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise AttributeError("a regression has no probabilities")
        return self._average(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        averaged = self._average(X)
        return averaged if self.classes is None else self.classes[averaged.argmax(axis=1)]
