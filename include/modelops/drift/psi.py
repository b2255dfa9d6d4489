"""Population stability index: reported for every feature, flagged on its own, never deciding.

PSI is what dashboards and risk teams know, so every result carries it; but one rule per regime
keeps a verdict explainable, so it is registered without a regime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from modelops.drift.stattest import proportions, register

log = logging.getLogger(__name__)

#: Floor on bin proportions in PSI, so an empty bin gives a large but finite term (a category
#: unseen in training at 20% of traffic adds (0.2 - 1e-4) * ln(0.2 / 1e-4) ~ 1.5 to PSI).
PSI_EPSILON = 1e-4


@register("psi", kinds=("numeric", "categorical"), regime=None, threshold_setting="psi_threshold")
def psi(reference_counts: Sequence[float], current_counts: Sequence[float], *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index over aligned bins: sum((q - p) * ln(q / p)).

    Proportions are floored at ``epsilon`` (not renormalised), the usual convention: an empty
    bin on either side gives a large finite term instead of infinity.
    """
    import numpy as np

    p = np.maximum(proportions(reference_counts), epsilon)
    q = np.maximum(proportions(current_counts), epsilon)
    if p.shape != q.shape:
        raise ValueError(f"PSI needs aligned bins: {p.size} reference vs {q.size} current")
    return float(np.sum((q - p) * np.log(q / p)))
