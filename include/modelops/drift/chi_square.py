"""Chi-square test of homogeneity: the categorical test regime's method, with a Jensen-Shannon
effect-size floor so a significant but tiny change is not called drift.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from modelops.config import DriftSpec
from modelops.drift.jensen_shannon import jensen_shannon_distance
from modelops.drift.stattest import aligned, feature_result, register, severity

log = logging.getLogger(__name__)


@register("chi_square", kinds=("categorical",), regime="test", threshold_setting="p_value")
def chi_square_drift(
    reference_counts: Mapping[str, float], current_counts: Mapping[str, float], *, spec: DriftSpec
) -> dict[str, Any]:
    """Chi-square test of homogeneity (2 x k table, no Yates correction) with a JS-distance floor.

    A two-sample test rather than goodness of fit against reference frequencies: a small
    reference's frequencies are estimates, and treating them as exact would call their noise
    drift. A category absent from training has a zero reference cell but a positive expected
    count, so it adds to the statistic (drift evidence) without any smoothing.
    """
    import numpy as np
    from scipy.stats import chi2_contingency

    _, ref, cur = aligned(reference_counts, current_counts)
    table = np.array([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    effect = jensen_shannon_distance(ref, cur)
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0  # one category on both sides: nothing can differ
    else:
        test = chi2_contingency(table, correction=False)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    return feature_result(
        method="chi_square",
        statistic=statistic,
        p_value=p_value,
        threshold=spec.p_value,
        effect_measure="jensen_shannon",
        effect_size=effect,
        effect_threshold=spec.jensen_shannon_threshold,
        severity=severity(effect, spec.jensen_shannon_threshold),
        drifted=bool(p_value < spec.p_value and effect >= spec.jensen_shannon_threshold),
    )
