"""Two-sample Kolmogorov-Smirnov test: the numeric test regime's method, on the live reservoir
sample against the baseline's sample, with a normalised-Wasserstein effect-size floor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from modelops.config import DriftSpec
from modelops.drift.stattest import feature_result, register, severity

log = logging.getLogger(__name__)


@register("ks", kinds=("numeric",), regime="test", threshold_setting="p_value")
def ks_drift(
    reference_sample: Sequence[float], current_sample: Sequence[float], *, effect_size: float, spec: DriftSpec
) -> dict[str, Any]:
    """Two-sample KS test (scipy's ``ks_2samp``, two-sided) with a normalised-Wasserstein floor.

    ``drifted`` here uses the raw p-value; :func:`modelops.drift.detect.compare` re-judges with
    BH-adjusted ones.
    """
    from scipy.stats import ks_2samp

    test = ks_2samp(reference_sample, current_sample)
    p_value = float(test.pvalue)
    return feature_result(
        method="ks",
        statistic=float(test.statistic),
        p_value=p_value,
        threshold=spec.p_value,
        effect_measure="wasserstein_normalised",
        effect_size=effect_size,
        effect_threshold=spec.wasserstein_threshold,
        severity=severity(effect_size, spec.wasserstein_threshold),
        drifted=bool(p_value < spec.p_value and effect_size >= spec.wasserstein_threshold),
    )
