"""The ``preprocess`` ColumnTransformer lowered: each branch on its columns, outputs side by side.

A branch is a Pipeline (or a single step) of the steps lowered here: SimpleImputer and
StandardScaler on numeric columns, OneHotEncoder on categorical ones. Anything else (a
passthrough remainder, a function transformer, a user's own step) cannot be lowered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower, Columns, exact_type, numeric_matrix, type_name
from modelops.serving.compiled.impute import LoweredImputer
from modelops.serving.compiled.one_hot import LoweredOneHot
from modelops.serving.compiled.scale import LoweredScaler

log = logging.getLogger(__name__)


def _steps_of(transformer: Any) -> list[tuple[str, Any]]:
    from sklearn.pipeline import Pipeline

    if exact_type(transformer, Pipeline):
        return list(transformer.steps)
    return [("step", transformer)]


def _array_step(name: str, step: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if exact_type(step, SimpleImputer):
        return LoweredImputer(step)
    if exact_type(step, StandardScaler):
        return LoweredScaler(step)
    raise CannotLower(f"preprocessing step '{name}' ({type_name(step)}) is not one this package lowers")


class Branch:
    """One ColumnTransformer branch: its input columns and its lowered steps."""

    def __init__(self, label: str, transformer: Any, names: Sequence[str]):
        from sklearn.preprocessing import OneHotEncoder

        steps = _steps_of(transformer)
        self.names = list(names)
        self.encoder: LoweredOneHot | None = None
        first_name, first = steps[0]
        if exact_type(first, OneHotEncoder):
            if getattr(first, "sparse_output", False):
                raise CannotLower(f"branch '{label}': OneHotEncoder(sparse_output=True)")
            self.encoder = LoweredOneHot(first, self.names)
            steps = steps[1:]
        self.steps = [_array_step(f"{label}.{name}", step) for name, step in steps]

    def transform(self, columns: Columns, rows: int) -> np.ndarray:
        if self.encoder is not None:
            X = self.encoder.transform_columns(columns, rows)
        else:
            X = numeric_matrix(columns, self.names, rows)
        for step in self.steps:
            X = step.transform(X)
        return X


class LoweredColumnTransformer:
    """``ColumnTransformer(..., remainder="drop")`` whose branches this package lowers."""

    def __init__(self, transformer: Any):
        if getattr(transformer, "sparse_output_", False):
            raise CannotLower("ColumnTransformer with sparse output")
        self.branches: list[Branch] = []
        for label, fitted, selection in transformer.transformers_:
            if isinstance(fitted, str):
                if fitted == "drop" or len(selection) == 0:
                    continue
                raise CannotLower(
                    f"ColumnTransformer branch '{label}' is '{fitted}' (only dropped columns are lowered)"
                )
            names = list(selection)
            if not all(isinstance(n, str) for n in names):
                raise CannotLower(f"ColumnTransformer branch '{label}' selects columns by position or mask")
            self.branches.append(Branch(label, fitted, names))
        if not self.branches:
            raise CannotLower("ColumnTransformer with no branch")
        self.features = sorted({n for b in self.branches for n in b.names})

    def transform(self, columns: Columns, rows: int) -> np.ndarray:
        parts = [branch.transform(columns, rows) for branch in self.branches]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
