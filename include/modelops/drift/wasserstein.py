"""Wasserstein (earth mover's) distance between histograms on the baseline's bin edges: the
numeric distance regime's method, and the effect-size floor of the KS test.

Computed from bins, not raw values, so a day of traffic is judged in memory that depends on
bins only. Divided by the reference's spread (:func:`reference_scale`), one threshold fits
every feature's units.

Two estimates, by what the baseline stores:

* with ``fine_bins`` (2.5% quantile bins with each bin's sum of values, on both sides):
  :func:`binned_mean_wasserstein`, exact unless the two CDFs cross inside a bin, and unbounded
  (the open end bins carry their values' sums, so a shift far beyond the training range is read
  in full);
* baselines written before that: :func:`binned_wasserstein` on the 12 coarse bins with a
  representative point per bin, as before, so an old baseline gives the numbers it gave.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelops.config import DriftSpec
from modelops.drift.stattest import feature_result, proportions, register, severity
from modelops.jsonsafe import finite

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

log = logging.getLogger(__name__)


def bin_points(
    edges: Sequence[float], reference_min: float | None = None, reference_max: float | None = None
) -> np.ndarray:
    """A representative value per open-ended bin, for distances computed from histograms.

    Inner bins use their midpoint. The open end bins are taken as one neighbouring-bin width wide
    beyond the outer edge (``edge -/+ width``), clipped to the reference's min/max: for a normal
    that is close to the tail's mean, and for a discrete feature (one bin per value, edges halfway
    between values) the clip lands exactly on the smallest/largest value. With a single edge the
    width is the reference range; with no range at all (constant reference), one unit.
    """
    import numpy as np

    e = np.asarray(edges, dtype=float)
    if e.size == 0:
        return np.zeros(1)
    span = None
    if reference_min is not None and reference_max is not None and reference_max > reference_min:
        span = reference_max - reference_min
    if e.size == 1:
        left_width = right_width = span or 1.0
        inner = np.empty(0)
    else:
        left_width, right_width = e[1] - e[0], e[-1] - e[-2]
        inner = (e[:-1] + e[1:]) / 2
    left, right = e[0] - left_width, e[-1] + right_width
    if span is not None:
        left, right = max(left, reference_min), min(right, reference_max)  # type: ignore[type-var]
    return np.concatenate([[left], inner, [right]])


def binned_wasserstein(
    edges: Sequence[float],
    reference_counts: Sequence[float],
    current_counts: Sequence[float],
    *,
    reference_min: float | None = None,
    reference_max: float | None = None,
) -> float:
    """Earth mover's distance between two histograms on the same edges, in the feature's units.

    Equals ``scipy.stats.wasserstein_distance(points, points, reference_counts, current_counts)``
    with ``points = bin_points(...)``: the CDFs are exact at every edge, so the only error is
    where mass sits inside a bin (at most a bin width; about a tenth of the reference's spread
    in the middle) and shifts beyond the outer edges are capped there.
    """
    import numpy as np

    p, q = proportions(reference_counts), proportions(current_counts)
    points = bin_points(edges, reference_min, reference_max)
    if p.size != points.size or q.size != points.size:
        raise ValueError(f"{len(edges)} edges need {points.size} counts, got {p.size} and {q.size}")
    return float(np.sum(np.abs(np.cumsum(p - q))[:-1] * np.diff(points)))


def binned_mean_wasserstein(
    edges: Sequence[float],
    reference_counts: Sequence[float],
    reference_sums: Sequence[float],
    current_counts: Sequence[float],
    current_sums: Sequence[float],
) -> float:
    """Earth mover's distance from bin counts and per-bin sums of values, in the feature's units.

    W1 is the integral of |F - G| over x. Over one bin [a, b) the integral of F is
    ``b F(b) - a F(a) - (sum of the values in the bin) / n``: counts at the edges and the bin's sum
    give it exactly (for the open end bins the infinite edge drops out). Summing the absolute
    per-bin integrals of F - G therefore gives W1 exactly wherever F - G keeps one sign inside
    each bin (a shift, a change of scale about a bin edge, anything beyond the training range),
    and never more than W1 otherwise: a crossing inside a bin is only partly counted.
    """
    import numpy as np

    p, q = proportions(reference_counts), proportions(current_counts)
    e = np.asarray(edges, dtype=float)
    ref_sums = np.asarray(reference_sums, dtype=float) / float(np.sum(reference_counts))
    cur_sums = np.asarray(current_sums, dtype=float) / float(np.sum(current_counts))
    if not p.size == q.size == ref_sums.size == cur_sums.size == e.size + 1:
        raise ValueError(
            f"{e.size} edges need {e.size + 1} counts and sums per side, got "
            f"{p.size}/{ref_sums.size} and {q.size}/{cur_sums.size}"
        )
    below = np.cumsum(p - q)[:-1]  # F - G at each edge (values equal to an edge sit above it)
    upper = np.concatenate([e * below, [0.0]])  # b (F - G)(b); nothing at +inf
    lower = np.concatenate([[0.0], e * below])  # a (F - G)(a); nothing at -inf
    return float(np.sum(np.abs(upper - lower - (ref_sums - cur_sums))))


def reference_scale(reference: Mapping[str, Any]) -> tuple[float, str]:
    """The spread distances are divided by, so one threshold fits every feature's units."""
    std = finite(reference.get("std"))
    if std:
        return std, "std"
    quantiles = reference.get("quantiles") or {}
    p25, p75 = finite(quantiles.get("p25")), finite(quantiles.get("p75"))
    if p25 is not None and p75 is not None and p75 > p25:
        return p75 - p25, "iqr"
    return 1.0, "unit"  # a constant reference has no spread: distances stay in its own units


@register("wasserstein", kinds=("numeric",), regime="distance", threshold_setting="wasserstein_threshold")
def wasserstein_drift(
    edges: Sequence[float],
    reference_counts: Sequence[float],
    current_counts: Sequence[float],
    *,
    scale: float,
    spec: DriftSpec,
    reference_min: float | None = None,
    reference_max: float | None = None,
    reference_sums: Sequence[float] | None = None,
    current_sums: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Wasserstein distance over the baseline bins, in units of the reference spread.

    With both sides' per-bin sums, :func:`binned_mean_wasserstein`; without (a baseline written
    before the fine bins), :func:`binned_wasserstein` on representative points.
    """
    if reference_sums is not None and current_sums is not None:
        distance = binned_mean_wasserstein(edges, reference_counts, reference_sums, current_counts, current_sums)
    else:
        distance = binned_wasserstein(
            edges, reference_counts, current_counts, reference_min=reference_min, reference_max=reference_max
        )
    statistic = distance / scale
    return feature_result(
        method="wasserstein",
        statistic=statistic,
        threshold=spec.wasserstein_threshold,
        effect_measure="wasserstein_normalised",
        effect_size=statistic,
        effect_threshold=spec.wasserstein_threshold,
        severity=severity(statistic, spec.wasserstein_threshold),
        drifted=bool(statistic >= spec.wasserstein_threshold),
    )
