"""Live traffic folded chunk by chunk into a profile whose size depends on features x bins, never
on rows: histogram counts over the baseline's own bin edges (binned with
:func:`modelops.data.baseline.histogram`, so reference and live bins line up), running moments, a
bounded reservoir sample per numeric feature and bounded category counts.

Accumulation only: judging the profile against the baseline is :func:`modelops.drift.detect.compare`.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelops.data.baseline import OTHER, histogram

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

#: Live values kept per numeric feature for the KS test (bottom-k reservoir, uniform over the day).
RESERVOIR_SIZE = 2000
RESERVOIR_SEED = 0
#: Categories never seen in training are tracked by name up to this many per feature;
#: the rest are counted together under :data:`UNSEEN_OTHER` (memory must not follow cardinality).
MAX_UNSEEN_CATEGORIES = 50
UNSEEN_OTHER = "__unseen_other__"


class NumericAccumulator:
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


class CategoricalAccumulator:
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


Accumulator = NumericAccumulator | CategoricalAccumulator


def _accumulator(
    name: str, profile: Mapping[str, Any], allowed: Iterable[str] | None, reservoir_size: int, seed: int
) -> Accumulator:
    if profile["kind"] == "numeric":
        return NumericAccumulator(name, profile["bins"]["edges"], reservoir_size, seed)
    return CategoricalAccumulator(name, profile["counts"], allowed)


class StreamingProfile:
    """Live data folded chunk by chunk; its size is fixed by the baseline, not by the rows fed.

    Build it with :meth:`from_baseline` (the baseline fixes the features, bin edges and
    categories) and call :meth:`update` once per chunk, e.g. per parquet row group.
    """

    def __init__(
        self,
        features: Mapping[str, Accumulator],
        prediction: Accumulator | None = None,
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
