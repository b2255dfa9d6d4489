"""Benjamini-Hochberg correction of the per-feature p-values of one comparison.

Dozens of features are tested every day; at 5% each, uncorrected, a 40-feature model would show
a "drifted" feature most days by chance alone. Kept apart from the tests: it judges a family
of results, not one feature.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (step-up, monotone, capped at 1): controls the false discovery rate.

    Dozens of features are tested every day; at 5% each, uncorrected, a 40-feature model would
    show a "drifted" feature most days by chance alone.
    """
    import numpy as np

    p = np.asarray(list(p_values), dtype=float)
    if p.ndim != 1:
        raise ValueError("benjamini_hochberg expects a flat sequence of p-values")
    if p.size == 0:
        return []
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(scaled, 1.0)
    return [float(x) for x in adjusted]
