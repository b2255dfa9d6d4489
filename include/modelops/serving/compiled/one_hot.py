"""OneHotEncoder lowered: one dict look-up per value, then ones set in a zero matrix.

Which output column a category lights is learned from the fitted encoder itself: at lowering
time every known category (NaN included, infrequent ones included) is transformed once, and the
column it lights is kept in a table. So grouping of infrequent categories (``max_categories``,
``min_frequency``), ``drop`` and NaN as its own category come out exactly as sklearn does them;
a value not in the table (unseen in training) lights nothing, as ``handle_unknown="ignore"`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower, Columns

log = logging.getLogger(__name__)

_UNKNOWN = -1
_LOOKUP_MISS = -2


def _is_missing(value: Any) -> bool:
    return value is None or value != value  # NaN is the one value unequal to itself


def _probe_frame(encoder: Any, names: Sequence[str], j: int) -> Any:
    """Rows holding each known category of feature ``j``; the other features at their first category."""
    import pandas as pd

    categories = encoder.categories_
    n = len(categories[j])
    data = {}
    for i, name in enumerate(names):
        values = np.empty(n, dtype=object)
        values[:] = list(categories[j]) if i == j else [categories[i][0]] * n
        data[name] = values
    return pd.DataFrame(data, columns=list(names))


class LoweredOneHot:
    """``OneHotEncoder(handle_unknown="ignore")`` (dense output) on raw category columns."""

    def __init__(self, encoder: Any, names: Sequence[str]):
        if encoder.handle_unknown != "ignore":
            raise CannotLower(f"OneHotEncoder(handle_unknown={encoder.handle_unknown!r}) (only 'ignore' is lowered)")
        widths = getattr(encoder, "_n_features_outs", None)
        if widths is None or len(widths) != len(names):
            raise CannotLower("OneHotEncoder without per-feature output widths (a different scikit-learn version)")
        self.names = list(names)
        self.width = int(sum(widths))
        self.tables: list[dict] = []
        self.missing_columns: list[int] = []
        starts = np.concatenate([[0], np.cumsum(widths)]).astype(int)
        for j, name in enumerate(self.names):
            probe = encoder.transform(_probe_frame(encoder, self.names, j))
            probe = np.asarray(probe.toarray() if hasattr(probe, "toarray") else probe, dtype=np.float64)
            block = probe[:, starts[j] : starts[j + 1]]
            if ((block != 0) & (block != 1)).any() or (block.sum(axis=1) > 1).any():
                raise CannotLower(f"OneHotEncoder output for '{name}' is not one column per category")
            table: dict = {}
            missing_column = _UNKNOWN
            for category, row in zip(encoder.categories_[j].tolist(), block, strict=True):
                hot = np.flatnonzero(row)
                column = int(starts[j] + hot[0]) if len(hot) else _UNKNOWN
                if _is_missing(category):
                    missing_column = column
                else:
                    table[category] = column
            self.tables.append(table)
            self.missing_columns.append(missing_column)

    def _columns_of(self, values: Sequence[Any], j: int) -> np.ndarray:
        get, missing = self.tables[j].get, self.missing_columns[j]
        codes = [get(v, _LOOKUP_MISS) if v is not None else missing for v in values]
        if _LOOKUP_MISS in codes:  # NaN (never equal to a key), or a category unseen in training
            codes = [
                (missing if _is_missing(v) else _UNKNOWN) if c == _LOOKUP_MISS else c
                for c, v in zip(codes, values, strict=True)
            ]
        return np.asarray(codes, dtype=np.intp)

    def transform_columns(self, columns: Columns, rows: int) -> np.ndarray:
        out = np.zeros((rows, self.width), dtype=np.float64)
        index = np.arange(rows)
        for j, name in enumerate(self.names):
            codes = self._columns_of(columns[name], j)
            lit = codes >= 0
            if lit.all():
                out[index, codes] = 1.0
            else:
                out[index[lit], codes[lit]] = 1.0
        return out
