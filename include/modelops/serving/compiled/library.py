"""XGBoost and LightGBM: preprocessing lowered, then the booster's own predict on the array.

The pipeline hands these estimators the ColumnTransformer's float64 array; the lowered
preprocessing makes the same array, so calling the same estimator on it gives the same answer,
without the ColumnTransformer's and pandas' fixed cost. (Their trees are not re-implemented:
their own predict is native code already.)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Module prefixes of the estimators run as they are on the lowered array.
LIBRARY_MODULES = ("xgboost.", "lightgbm.")
LIBRARY_CLASSES = frozenset({"XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor"})


def is_library_booster(model: Any) -> bool:
    cls = type(model)
    return cls.__name__ in LIBRARY_CLASSES and cls.__module__.startswith(LIBRARY_MODULES)


class LibraryBooster:
    """The fitted booster itself, fed the lowered array."""

    def __init__(self, model: Any, classifier: bool):
        self.model = model
        self.classes = np.asarray(model.classes_) if classifier else None
        self.description = f"{type(model).__module__.split('.')[0]}'s own predict on the lowered array"

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(X))
