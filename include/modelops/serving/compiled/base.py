"""What every lowered step shares: the refusal that sends a pipeline to the fallback, and input columns.

A lowered step is plain numpy on arrays. Lowering either reproduces the fitted step exactly
(the parity check proves it on held-out rows) or raises :class:`CannotLower` naming the step and
why, and the caller serves the scikit-learn pipeline instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

#: Input of a compiled scorer: feature name -> a float64 array (numeric) or a sequence of values
#: (categorical; ``None`` and NaN mean missing). Every column has the same length.
Columns = Mapping[str, Any]


class CannotLower(ValueError):
    """The fitted pipeline holds something this package does not reproduce; the reason names it."""


class ArrayStep(Protocol):
    """A lowered transformer on a float64 matrix (imputer, scaler)."""

    def transform(self, X: np.ndarray) -> np.ndarray: ...


class ModelStep(Protocol):
    """A lowered final estimator on the preprocessed float64 matrix."""

    classes: np.ndarray | None
    description: str

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def exact_type(obj: Any, *classes: type) -> bool:
    """True only for these classes themselves: a subclass may override what is being lowered."""
    return type(obj) in classes


def numeric_matrix(columns: Columns, names: Sequence[str], rows: int) -> np.ndarray:
    """The named numeric columns side by side as float64 (a missing value is NaN)."""
    X = np.empty((rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        X[:, j] = np.asarray(columns[name], dtype=np.float64)
    return X


def column_length(columns: Columns) -> int:
    for values in columns.values():
        return len(values)
    raise ValueError("no input columns")
