"""Jensen-Shannon distance between category distributions: the categorical distance regime's
method, and the effect-size floor of the chi-square test.

Bounded in [0, 1] and needing no smoothing of empty categories (unlike KL or PSI), it does not
grow with the sample size, so one threshold holds for a thousand rows or a million.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from modelops.config import DriftSpec
from modelops.drift.stattest import aligned, feature_result, proportions, register, severity

log = logging.getLogger(__name__)


def jensen_shannon_distance(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]); zeros need no smoothing, unlike KL or PSI."""
    import numpy as np
    from scipy.special import rel_entr

    p, q = proportions(reference_counts), proportions(current_counts)
    if p.shape != q.shape:
        raise ValueError(f"Jensen-Shannon needs aligned categories: {p.size} vs {q.size}")
    m = (p + q) / 2
    divergence = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / (2 * np.log(2))
    return float(min(1.0, math.sqrt(max(0.0, divergence))))


@register("jensen_shannon", kinds=("categorical",), regime="distance", threshold_setting="jensen_shannon_threshold")
def jensen_shannon_drift(
    reference_counts: Mapping[str, float], current_counts: Mapping[str, float], *, spec: DriftSpec
) -> dict[str, Any]:
    """Jensen-Shannon distance (base 2) over the union of categories, against a fixed threshold."""
    _, ref, cur = aligned(reference_counts, current_counts)
    distance = jensen_shannon_distance(ref, cur)
    return feature_result(
        method="jensen_shannon",
        statistic=distance,
        threshold=spec.jensen_shannon_threshold,
        effect_measure="jensen_shannon",
        effect_size=distance,
        effect_threshold=spec.jensen_shannon_threshold,
        severity=severity(distance, spec.jensen_shannon_threshold),
        drifted=bool(distance >= spec.jensen_shannon_threshold),
    )
