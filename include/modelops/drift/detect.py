"""Drift of one day of serving traffic against the training baseline, in bounded memory.

A day of traffic can be millions of rows, so live data is folded chunk by chunk into a
:class:`StreamingProfile` whose size depends on features x bins, never on rows: histogram counts
over the baseline's own bin edges (binned with :func:`modelops.data.baseline.histogram`, so reference
and live bins line up), running moments, a bounded reservoir sample per numeric feature and
bounded category counts. :func:`compare` then judges every feature against the baseline.

Two regimes, chosen by the size of the reference (``DriftSpec.large_sample_rows``):

* small reference ("test"): a hypothesis test per feature (two-sample KS for numeric, chi-square
  for categorical), p-values corrected with Benjamini-Hochberg across features, AND an effect-size
  floor (normalised Wasserstein, Jensen-Shannon distance), so a significant but tiny change is
  not called drift;
* large reference ("distance"): distances only, against fixed thresholds. With a million rows
  every p-value is tiny and would flag noise; a distance does not grow with the sample size.

PSI is reported for every feature (it is what dashboards and risk teams know), with its own flag,
but it does not decide: one rule per regime keeps a verdict explainable.

Everything returned is JSON-safe (``None`` instead of NaN) with a fixed ``schema_version``.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from modelops.config import DriftSpec
from modelops.data.baseline import OTHER, histogram

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Live values kept per numeric feature for the KS test (bottom-k reservoir, uniform over the day).
RESERVOIR_SIZE = 2000
RESERVOIR_SEED = 0
#: Floor on bin proportions in PSI, so an empty bin gives a large but finite term (a category
#: unseen in training at 20% of traffic adds (0.2 - 1e-4) * ln(0.2 / 1e-4) ~ 1.5 to PSI).
PSI_EPSILON = 1e-4
#: Categories never seen in training are tracked by name up to this many per feature;
#: the rest are counted together under :data:`UNSEEN_OTHER` (memory must not follow cardinality).
MAX_UNSEEN_CATEGORIES = 50
UNSEEN_OTHER = "__unseen_other__"
#: Categories listed in a result's details (largest changes, unseen names).
DETAIL_CATEGORIES = 5

Regime = Literal["test", "distance"]
Method = Literal["auto", "test", "distance"]

#: Keys of every per-feature result, in order: the schema does not depend on kind or status.
#: ``statistic`` is the method's own number (KS D, chi-square, or the distance); ``threshold`` is
#: what it is judged against (the p-value level for tests, the distance threshold otherwise);
#: ``effect_size``/``effect_threshold`` is the floor every verdict must also clear, and
#: ``severity`` = effect_size / effect_threshold orders features across methods.
RESULT_KEYS = (
    "feature",
    "kind",
    "status",
    "method",
    "statistic",
    "p_value",
    "p_value_adjusted",
    "threshold",
    "effect_measure",
    "effect_size",
    "effect_threshold",
    "severity",
    "drifted",
    "psi",
    "psi_threshold",
    "psi_drifted",
    "reference_count",
    "current_count",
    "reference_null_fraction",
    "current_null_fraction",
    "current_invalid_count",
    "message",
    "details",
)


def _float(value: Any) -> float | None:
    """A plain float, or None for missing/NaN/inf: results must serialise with allow_nan=False."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Streaming accumulation
# --------------------------------------------------------------------------------------------


class _NumericAccumulator:
    """One numeric column: bin counts, moments (Chan's merge), min/max, bottom-k reservoir."""

    kind = "numeric"

    def __init__(self, name: str, edges: Sequence[float], reservoir_size: int, seed: int) -> None:
        import numpy as np

        self.name = name
        self.edges = [float(e) for e in edges]
        self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.rows = 0
        self.nulls = 0
        self.invalid = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.reservoir_size = reservoir_size
        # One stream per feature, seeded by name: the sample does not depend on column order, and
        # (numpy draws doubles one after another) not on how the day was cut into chunks either.
        self._rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        self._values = np.empty(0, dtype=float)
        self._keys = np.empty(0, dtype=float)

    def update(self, series: pd.Series) -> None:
        import numpy as np
        import pandas as pd

        self.rows += len(series)
        missing = series.isna().to_numpy()
        self.nulls += int(missing.sum())
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        bad = int((~finite & ~missing).sum())
        if bad:
            log.warning("%s: %d non-numeric or infinite value(s) in a chunk, left out of the tests", self.name, bad)
        self.invalid += bad
        values = values[finite]
        if not len(values):
            return
        self.counts += np.asarray(histogram(values, self.edges), dtype=np.int64)
        # Chan et al.'s pairwise merge of (count, mean, M2): stable where sum-of-squares cancels.
        n_b = len(values)
        mean_b = float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * self.n * n_b / total
        self.n = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        self._sample(values)

    def _sample(self, values: np.ndarray) -> None:
        """Keep the values with the k smallest random keys seen so far: a uniform sample of the day."""
        import numpy as np

        keys = self._rng.random(len(values))
        k = self.reservoir_size
        if len(self._keys) >= k:
            keep = keys < self._keys.max()
            keys, values = keys[keep], values[keep]
            if not len(keys):
                return
        keys = np.concatenate([self._keys, keys])
        values = np.concatenate([self._values, values])
        if len(keys) > k:
            chosen = np.argpartition(keys, k - 1)[:k]
            keys, values = keys[chosen], values[chosen]
        self._keys, self._values = keys, values

    @property
    def sample(self) -> np.ndarray:
        import numpy as np

        return np.sort(self._values)

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else (0.0 if self.n == 1 else None)

    def state_size(self) -> int:
        return int(self.counts.size + self._values.size + self._keys.size) + 9


def _canonical(value: str) -> str | None:
    """One spelling per number, so a live "1.0" (a float column with a NaN) matches a trained "1"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


class _CategoricalAccumulator:
    """One categorical column, counted into the baseline's buckets plus a bounded set of new values.

    The baseline lists the top categories (plus ``__other__``); its constraints keep every value
    seen in training when there were at most 1,000. With that list a value outside the top is
    told apart: seen in training (counted as ``__other__``) or new (counted by name, as drift
    evidence). Without it (very high cardinality) non-top values can only go to ``__other__``.
    """

    kind = "categorical"

    def __init__(
        self,
        name: str,
        reference_keys: Iterable[str],
        allowed: Iterable[str] | None,
        max_unseen: int = MAX_UNSEEN_CATEGORIES,
    ) -> None:
        keys = list(reference_keys)
        self.name = name
        self.reference_keys = keys
        self.top = {k for k in keys if k != OTHER}
        self.has_other = OTHER in keys
        self.tail = None if allowed is None else {str(v) for v in allowed} - self.top
        known = self.top | (self.tail or set())
        self.alias = {c: k for k in known if (c := _canonical(k)) is not None}
        self.max_unseen = max_unseen
        self.counts: dict[str, int] = {}
        self.unseen: dict[str, int] = {}
        self.rows = 0
        self.nulls = 0
        self.invalid = 0

    def _bucket(self, value: str) -> str | None:
        if value in self.top:
            return value
        if self.tail is not None and value in self.tail:
            return OTHER
        if self.alias:
            match = self.alias.get(_canonical(value))  # type: ignore[arg-type]
            if match is not None:
                return match if match in self.top else OTHER
        if self.tail is None and self.has_other:
            return OTHER
        return None

    def update(self, series: pd.Series) -> None:
        self.rows += len(series)
        missing = series.isna()
        self.nulls += int(missing.sum())
        counts = series[~missing].astype(str).value_counts()
        for value, count in counts.items():
            value, count = str(value), int(count)
            bucket = self._bucket(value)
            if bucket is not None:
                self.counts[bucket] = self.counts.get(bucket, 0) + count
            elif value in self.unseen or len(self.unseen) < self.max_unseen:
                self.unseen[value] = self.unseen.get(value, 0) + count
            else:
                self.counts[UNSEEN_OTHER] = self.counts.get(UNSEEN_OTHER, 0) + count

    @property
    def n(self) -> int:
        return sum(self.counts.values()) + sum(self.unseen.values())

    def state_size(self) -> int:
        return len(self.counts) + len(self.unseen) + 3


_Accumulator = _NumericAccumulator | _CategoricalAccumulator


def _accumulator(
    name: str, profile: Mapping[str, Any], allowed: Iterable[str] | None, reservoir_size: int, seed: int
) -> _Accumulator:
    if profile["kind"] == "numeric":
        return _NumericAccumulator(name, profile["bins"]["edges"], reservoir_size, seed)
    return _CategoricalAccumulator(name, profile["counts"], allowed)


class StreamingProfile:
    """Live data folded chunk by chunk; its size is fixed by the baseline, not by the rows fed.

    Build it with :meth:`from_baseline` (the baseline fixes the features, bin edges and
    categories) and call :meth:`update` once per chunk, e.g. per parquet row group.
    """

    def __init__(
        self,
        features: Mapping[str, _Accumulator],
        prediction: _Accumulator | None = None,
        prediction_column: str = "prediction",
    ) -> None:
        self.features = dict(features)
        self.prediction = prediction
        self.prediction_column = prediction_column
        self.rows = 0

    @classmethod
    def from_baseline(
        cls,
        baseline: Mapping[str, Any],
        *,
        prediction_column: str = "prediction",
        reservoir_size: int = RESERVOIR_SIZE,
        seed: int = RESERVOIR_SEED,
    ) -> StreamingProfile:
        if reservoir_size < 1:
            raise ValueError(f"reservoir_size must be at least 1, got {reservoir_size}")
        constraints = (baseline.get("constraints") or {}).get("features") or {}
        features = {
            name: _accumulator(name, profile, (constraints.get(name) or {}).get("allowed_values"), reservoir_size, seed)
            for name, profile in baseline["features"].items()
        }
        prediction = None
        if baseline.get("predictions"):
            prediction = _accumulator(prediction_column, baseline["predictions"], None, reservoir_size, seed)
        return cls(features, prediction, prediction_column)

    def update(self, chunk: pd.DataFrame) -> StreamingProfile:
        """Fold one chunk in. A chunk without a feature column is refused: drift cannot be judged."""
        if len(chunk) == 0:
            return self
        missing = [name for name in self.features if name not in chunk.columns]
        if missing:
            raise ValueError(
                f"live data lacks feature column(s) {missing} (it has {list(chunk.columns)[:30]}); "
                "capture every model input with the prediction"
            )
        for name, accumulator in self.features.items():
            accumulator.update(chunk[name])
        if self.prediction is not None and self.prediction_column in chunk.columns:
            self.prediction.update(chunk[self.prediction_column])
        self.rows += len(chunk)
        return self

    def state_size(self) -> int:
        """Numbers held (array elements and dict entries): bounded by features x bins."""
        parts = list(self.features.values()) + ([self.prediction] if self.prediction else [])
        return sum(part.state_size() for part in parts) + 1


# --------------------------------------------------------------------------------------------
# Statistics: pure functions on plain values
# --------------------------------------------------------------------------------------------


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


def _proportions(counts: Sequence[float]) -> np.ndarray:
    import numpy as np

    array = np.asarray(counts, dtype=float)
    total = array.sum()
    if array.ndim != 1 or total <= 0 or (array < 0).any():
        raise ValueError(f"counts must be non-negative with a positive total, got {array.tolist()}")
    return array / total


def psi(reference_counts: Sequence[float], current_counts: Sequence[float], *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index over aligned bins: sum((q - p) * ln(q / p)).

    Proportions are floored at ``epsilon`` (not renormalised), the usual convention: an empty
    bin on either side gives a large finite term instead of infinity.
    """
    import numpy as np

    p = np.maximum(_proportions(reference_counts), epsilon)
    q = np.maximum(_proportions(current_counts), epsilon)
    if p.shape != q.shape:
        raise ValueError(f"PSI needs aligned bins: {p.size} reference vs {q.size} current")
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon_distance(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]); zeros need no smoothing, unlike KL or PSI."""
    import numpy as np
    from scipy.special import rel_entr

    p, q = _proportions(reference_counts), _proportions(current_counts)
    if p.shape != q.shape:
        raise ValueError(f"Jensen-Shannon needs aligned categories: {p.size} vs {q.size}")
    m = (p + q) / 2
    divergence = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / (2 * np.log(2))
    return float(min(1.0, math.sqrt(max(0.0, divergence))))


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

    p, q = _proportions(reference_counts), _proportions(current_counts)
    points = bin_points(edges, reference_min, reference_max)
    if p.size != points.size or q.size != points.size:
        raise ValueError(f"{len(edges)} edges need {points.size} counts, got {p.size} and {q.size}")
    return float(np.sum(np.abs(np.cumsum(p - q))[:-1] * np.diff(points)))


def reference_scale(reference: Mapping[str, Any]) -> tuple[float, str]:
    """The spread distances are divided by, so one threshold fits every feature's units."""
    std = _float(reference.get("std"))
    if std:
        return std, "std"
    quantiles = reference.get("quantiles") or {}
    p25, p75 = _float(quantiles.get("p25")), _float(quantiles.get("p75"))
    if p25 is not None and p75 is not None and p75 > p25:
        return p75 - p25, "iqr"
    return 1.0, "unit"  # a constant reference has no spread: distances stay in its own units


def _result(**values: Any) -> dict[str, Any]:
    result = dict.fromkeys(RESULT_KEYS)
    result.update(values)
    return result


def _severity(effect: float | None, threshold: float) -> float | None:
    return None if effect is None else effect / threshold


def ks_drift(
    reference_sample: Sequence[float], current_sample: Sequence[float], *, effect_size: float, spec: DriftSpec
) -> dict[str, Any]:
    """Two-sample KS test (scipy's ``ks_2samp``, two-sided) with a normalised-Wasserstein floor.

    ``drifted`` here uses the raw p-value; :func:`compare` re-judges with BH-adjusted ones.
    """
    from scipy.stats import ks_2samp

    test = ks_2samp(reference_sample, current_sample)
    p_value = float(test.pvalue)
    return _result(
        method="ks",
        statistic=float(test.statistic),
        p_value=p_value,
        threshold=spec.p_value,
        effect_measure="wasserstein_normalised",
        effect_size=effect_size,
        effect_threshold=spec.wasserstein_threshold,
        severity=_severity(effect_size, spec.wasserstein_threshold),
        drifted=bool(p_value < spec.p_value and effect_size >= spec.wasserstein_threshold),
    )


def wasserstein_drift(
    edges: Sequence[float],
    reference_counts: Sequence[float],
    current_counts: Sequence[float],
    *,
    scale: float,
    spec: DriftSpec,
    reference_min: float | None = None,
    reference_max: float | None = None,
) -> dict[str, Any]:
    """Wasserstein distance over the baseline bins, in units of the reference spread."""
    distance = binned_wasserstein(
        edges, reference_counts, current_counts, reference_min=reference_min, reference_max=reference_max
    )
    statistic = distance / scale
    return _result(
        method="wasserstein",
        statistic=statistic,
        threshold=spec.wasserstein_threshold,
        effect_measure="wasserstein_normalised",
        effect_size=statistic,
        effect_threshold=spec.wasserstein_threshold,
        severity=_severity(statistic, spec.wasserstein_threshold),
        drifted=bool(statistic >= spec.wasserstein_threshold),
    )


def _aligned(
    reference: Mapping[str, float], current: Mapping[str, float]
) -> tuple[list[str], list[float], list[float]]:
    """Both count vectors over the union of categories (reference order first, then new ones)."""
    names = [k for k in reference] + sorted((k for k in current if k not in reference), key=lambda k: (-current[k], k))
    return names, [float(reference.get(k, 0)) for k in names], [float(current.get(k, 0)) for k in names]


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

    _, ref, cur = _aligned(reference_counts, current_counts)
    table = np.array([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    effect = jensen_shannon_distance(ref, cur)
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0  # one category on both sides: nothing can differ
    else:
        test = chi2_contingency(table, correction=False)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    return _result(
        method="chi_square",
        statistic=statistic,
        p_value=p_value,
        threshold=spec.p_value,
        effect_measure="jensen_shannon",
        effect_size=effect,
        effect_threshold=spec.jensen_shannon_threshold,
        severity=_severity(effect, spec.jensen_shannon_threshold),
        drifted=bool(p_value < spec.p_value and effect >= spec.jensen_shannon_threshold),
    )


def jensen_shannon_drift(
    reference_counts: Mapping[str, float], current_counts: Mapping[str, float], *, spec: DriftSpec
) -> dict[str, Any]:
    """Jensen-Shannon distance (base 2) over the union of categories, against a fixed threshold."""
    _, ref, cur = _aligned(reference_counts, current_counts)
    distance = jensen_shannon_distance(ref, cur)
    return _result(
        method="jensen_shannon",
        statistic=distance,
        threshold=spec.jensen_shannon_threshold,
        effect_measure="jensen_shannon",
        effect_size=distance,
        effect_threshold=spec.jensen_shannon_threshold,
        severity=_severity(distance, spec.jensen_shannon_threshold),
        drifted=bool(distance >= spec.jensen_shannon_threshold),
    )


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def _regime(reference_rows: int, spec: DriftSpec, method: Method) -> Regime:
    if method == "auto":
        return "test" if reference_rows < spec.large_sample_rows else "distance"
    if method not in ("test", "distance"):
        raise ValueError(f"method must be 'auto', 'test' or 'distance', got {method!r}")
    return method


def _numeric_result(
    name: str, reference: Mapping[str, Any], live: _NumericAccumulator, regime: Regime, spec: DriftSpec
) -> dict[str, Any]:
    edges = reference["bins"]["edges"]
    ref_counts = reference["bins"]["counts"]
    cur_counts = live.counts.tolist()
    scale, scale_source = reference_scale(reference)
    bounds = {"reference_min": _float(reference.get("min")), "reference_max": _float(reference.get("max"))}
    distance = wasserstein_drift(edges, ref_counts, cur_counts, scale=scale, spec=spec, **bounds)
    if regime == "test":
        result = ks_drift(reference["sample"], live.sample, effect_size=distance["statistic"], spec=spec)
    else:
        result = distance
    ref_mean = _float(reference.get("mean"))
    result["details"] = {
        "reference_mean": ref_mean,
        "current_mean": _float(live.mean),
        "mean_shift_scaled": _float((live.mean - ref_mean) / scale) if ref_mean is not None else None,
        "reference_std": _float(reference.get("std")),
        "current_std": _float(live.std),
        "current_min": _float(live.min),
        "current_max": _float(live.max),
        "wasserstein": _float(distance["statistic"] * scale),
        "scale": scale,
        "scale_source": scale_source,
        "sample_size": int(live.sample.size),
        "reference_bin_counts": [int(c) for c in ref_counts],
        "current_bin_counts": [int(c) for c in cur_counts],
    }
    result["psi"] = psi(ref_counts, cur_counts)
    return result


def _categorical_result(
    name: str, reference: Mapping[str, Any], live: _CategoricalAccumulator, regime: Regime, spec: DriftSpec
) -> dict[str, Any]:
    ref_counts = {str(k): float(v) for k, v in reference["counts"].items()}
    cur_counts = {**{k: float(v) for k, v in live.counts.items()}, **{k: float(v) for k, v in live.unseen.items()}}
    if regime == "test":
        result = chi_square_drift(ref_counts, cur_counts, spec=spec)
    else:
        result = jensen_shannon_drift(ref_counts, cur_counts, spec=spec)
    names, ref, cur = _aligned(ref_counts, cur_counts)
    ref_total, cur_total = sum(ref), sum(cur)
    unseen = {k: v for k, v in cur_counts.items() if k not in ref_counts}
    changes = sorted(
        (
            {"category": k, "reference_share": r / ref_total, "current_share": c / cur_total}
            for k, r, c in zip(names, ref, cur, strict=True)
        ),
        key=lambda d: (-abs(d["current_share"] - d["reference_share"]), d["category"]),
    )
    result["details"] = {
        "categories": len(names),
        "unseen_share": sum(unseen.values()) / cur_total,
        "unseen_categories": {
            k: v / cur_total for k, v in sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:DETAIL_CATEGORIES]
        },
        "largest_changes": changes[:DETAIL_CATEGORIES],
    }
    result["psi"] = psi(ref, cur)
    return result


def _judge_feature(
    name: str, reference: Mapping[str, Any], live: _Accumulator, regime: Regime, spec: DriftSpec
) -> dict[str, Any]:
    ref_count = int(reference.get("count") or 0)
    common = {
        "feature": name,
        "kind": reference["kind"],
        "reference_count": ref_count,
        "current_count": int(live.n),
        "reference_null_fraction": _float(reference.get("null_fraction")),
        "current_null_fraction": live.nulls / live.rows if live.rows else None,
        "current_invalid_count": int(live.invalid),
        "psi_threshold": spec.psi_threshold,
        "drifted": False,
        "psi_drifted": False,
    }
    if reference["kind"] != live.kind:
        raise ValueError(f"{name}: baseline says {reference['kind']} but the live profile holds {live.kind} data")
    if ref_count == 0:
        return _result(**common, status="no_reference", message="no non-null values in the training baseline")
    if live.n == 0:
        message = "no live rows" if live.rows == 0 else f"all {live.rows} live value(s) are missing or invalid"
        return _result(**common, status="no_data", message=message)
    if live.kind == "numeric":
        result = _numeric_result(name, reference, live, regime, spec)  # type: ignore[arg-type]
    else:
        result = _categorical_result(name, reference, live, regime, spec)  # type: ignore[arg-type]
    result.update(common, status="ok", drifted=result["drifted"])
    result["psi_drifted"] = bool(result["psi"] >= spec.psi_threshold)
    return result


def _apply_multiple_testing(results: list[dict[str, Any]], alpha: float) -> None:
    """Re-judge test-based results on BH-adjusted p-values across all tested features."""
    tested = [r for r in results if r["status"] == "ok" and r["p_value"] is not None]
    for result, adjusted in zip(tested, benjamini_hochberg([r["p_value"] for r in tested]), strict=True):
        result["p_value_adjusted"] = adjusted
        result["drifted"] = bool(adjusted < alpha and result["effect_size"] >= result["effect_threshold"])


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item"):  # numpy scalar
        return _json_safe(value.item())
    if isinstance(value, float):
        return _float(value)
    return value


def _severity_order(result: Mapping[str, Any]) -> tuple[Any, ...]:
    severity = result["severity"]
    return (not result["drifted"], severity is None, -(severity or 0.0), result["feature"])


def compare(
    baseline: Mapping[str, Any],
    live: StreamingProfile,
    drift_spec: DriftSpec | None = None,
    *,
    method: Method = "auto",
) -> dict[str, Any]:
    """Judge every feature (and the predictions, when profiled) against the training baseline.

    ``method="auto"`` picks tests for a reference under ``large_sample_rows`` rows and distances
    otherwise; "test" or "distance" forces one. Features come back most severe first
    (drifted, then effect size / effect threshold). The dataset drifts when the share of drifted
    features among those with data reaches ``dataset_drift_share``. Empty live data gives
    ``status: "no_data"``, never an exception.
    """
    spec = drift_spec or DriftSpec()
    reference_rows = int(baseline["row_count"])
    regime = _regime(reference_rows, spec, method)
    unknown = sorted(set(baseline["features"]) ^ set(live.features))
    if unknown:
        raise ValueError(f"the live profile and the baseline disagree on feature(s) {unknown}: build it from_baseline")

    results = [
        _judge_feature(name, reference, live.features[name], regime, spec)
        for name, reference in baseline["features"].items()
    ]
    _apply_multiple_testing(results, spec.p_value)
    results.sort(key=_severity_order)

    evaluated = [r for r in results if r["status"] == "ok"]
    drifted = [r["feature"] for r in evaluated if r["drifted"]]
    share = len(drifted) / len(evaluated) if evaluated else None

    prediction = None
    if live.prediction is not None and baseline.get("predictions"):
        prediction = _judge_feature(live.prediction_column, baseline["predictions"], live.prediction, regime, spec)
        if prediction["p_value"] is not None:
            # One question, one test: not part of the features' family, so no correction.
            prediction["p_value_adjusted"] = prediction["p_value"]

    if live.rows == 0:
        status, message = "no_data", "no live rows were profiled: nothing to compare"
    elif not evaluated:
        status, message = "no_data", "no feature has both reference and live values"
    else:
        status = "ok"
        message = f"{len(drifted)} of {len(evaluated)} feature(s) drifted ({regime} regime)"
    report = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "message": message,
        "model": baseline.get("model"),
        "baseline_schema_version": baseline.get("schema_version"),
        "regime": regime,
        "reference_rows": reference_rows,
        "current_rows": int(live.rows),
        "settings": {
            "p_value": spec.p_value,
            "multiple_testing": "benjamini-hochberg",
            "psi_threshold": spec.psi_threshold,
            "psi_epsilon": PSI_EPSILON,
            "wasserstein_threshold": spec.wasserstein_threshold,
            "jensen_shannon_threshold": spec.jensen_shannon_threshold,
            "dataset_drift_share": spec.dataset_drift_share,
            "large_sample_rows": spec.large_sample_rows,
        },
        "dataset_drift": {
            "share": share,
            "threshold": spec.dataset_drift_share,
            "drifted": bool(share is not None and share >= spec.dataset_drift_share),
            "drifted_count": len(drifted),
            "evaluated_count": len(evaluated),
        },
        "drifted_features": drifted,
        "features": results,
        "prediction_drift": prediction,
    }
    log.info(
        "%s: drift over %d live rows vs %d reference rows: %s",
        baseline.get("model"),
        live.rows,
        reference_rows,
        message,
    )
    return _json_safe(report)


def drift_dataframe(
    baseline: Mapping[str, Any],
    df: pd.DataFrame,
    drift_spec: DriftSpec | None = None,
    *,
    chunk_rows: int = 100_000,
    method: Method = "auto",
    prediction_column: str = "prediction",
) -> dict[str, Any]:
    """Stream an in-memory frame through :class:`StreamingProfile` and :func:`compare` it."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    profile = StreamingProfile.from_baseline(baseline, prediction_column=prediction_column)
    for start in range(0, len(df), chunk_rows):
        profile.update(df.iloc[start : start + chunk_rows])
    return compare(baseline, profile, drift_spec, method=method)
