"""Live traffic folded chunk by chunk into a profile whose size depends on features x bins, never
on rows: histogram counts (and per-bin sums) over the baseline's own bin edges (the same bins as
:func:`modelops.data.baseline.histogram`, so reference and live bins line up), running moments, a
bounded reservoir sample per numeric feature and bounded category counts. Chunks can be pandas
frames or Arrow record batches; Arrow is read column by column without pandas' object columns.

Accumulation only: judging the profile against the baseline is :func:`modelops.drift.detect.compare`.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelops.data.baseline import OTHER
from modelops.drift.binning import Binner

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

#: Live values kept per numeric feature for the KS test (bottom-k reservoir, uniform over the day).
RESERVOIR_SIZE = 2000
RESERVOIR_SEED = 0
#: Categories never seen in training are tracked by name up to this many per feature;
#: the rest are counted together under :data:`UNSEEN_OTHER` (memory must not follow cardinality).
MAX_UNSEEN_CATEGORIES = 50
UNSEEN_OTHER = "__unseen_other__"


def _is_arrow(column: Any) -> bool:
    return hasattr(column, "type") and hasattr(column, "null_count")


def _numeric_values(column: Any) -> tuple[np.ndarray, int, int]:
    """A column as float64 values (NaN where missing), its missing count and its invalid count.

    Missing is what pandas calls NA (a null, or NaN in a float column); invalid is a value that is
    there but not a finite number (text in a numeric column, infinity). Numeric Arrow arrays and
    numeric pandas columns are read without a per-value Python step.
    """
    import numpy as np
    import pandas as pd

    if _is_arrow(column):
        import pyarrow as pa

        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
            if not pa.types.is_float64(column.type):
                column = column.cast(pa.float64())  # nulls stay nulls, then NaN below
            values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)
            return values, *_missing_and_invalid(values)
        column = column.to_pandas()
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        return values, *_missing_and_invalid(values)
    missing = column.isna().to_numpy()
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values, int(missing.sum()), int((~np.isfinite(values) & ~missing).sum())


def _missing_and_invalid(values: np.ndarray) -> tuple[int, int]:
    import numpy as np

    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if not bad:
        return 0, 0
    missing = int(np.count_nonzero(np.isnan(values)))
    return missing, bad - missing


def _bins_to_coarse(edges: Sequence[float], fine_edges: Sequence[float]) -> np.ndarray | None:
    """For each fine bin, the coarse bin holding it; None unless every coarse edge is a fine edge."""
    import numpy as np

    coarse, fine = np.asarray(edges, dtype=float), np.asarray(fine_edges, dtype=float)
    if not np.isin(coarse, fine).all():
        return None
    return np.concatenate([[0], np.searchsorted(coarse, fine, side="right")]).astype(np.intp)


class NumericAccumulator:
    """One numeric column: bin counts and sums, moments (Chan's merge), min/max, bottom-k reservoir.

    Values are binned once, on the baseline's fine bins when it has them (``fine_bins``: the
    Wasserstein effect size places each bin's mass at its mean, so each bin's sum is kept too),
    else on its coarse bins. The coarse counts (PSI, the report's histograms) are sums of fine
    bins, since every coarse edge is a fine edge.
    """

    kind = "numeric"

    def __init__(
        self,
        name: str,
        edges: Sequence[float],
        reservoir_size: int,
        seed: int,
        fine_edges: Sequence[float] | None = None,
    ) -> None:
        import numpy as np

        self.name = name
        self.edges = [float(e) for e in edges]
        self.fine_edges: list[float] | None = None
        self._to_coarse = None
        if fine_edges is not None:
            self._to_coarse = _bins_to_coarse(self.edges, fine_edges)
            if self._to_coarse is None:
                log.warning("%s: the baseline's fine bins do not contain its bins; using the bins only", name)
            else:
                self.fine_edges = [float(e) for e in fine_edges]
        self._binner = Binner(self.fine_edges if self.fine_edges is not None else self.edges)
        self.bin_counts = np.zeros(self._binner.bins, dtype=np.int64)
        self.bin_sums = np.zeros(self._binner.bins, dtype=float)
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

    @property
    def counts(self) -> np.ndarray:
        """Counts over the baseline's (coarse) bins, as :func:`modelops.data.baseline.histogram` gives."""
        import numpy as np

        if self._to_coarse is None or self.fine_edges is None:
            return self.bin_counts
        return np.bincount(self._to_coarse, weights=self.bin_counts, minlength=len(self.edges) + 1).astype(np.int64)

    def update(self, column: Any) -> None:
        """Fold one chunk of the column in (a pandas Series or a pyarrow array)."""
        import numpy as np

        values, missing, bad = _numeric_values(column)
        self.rows += values.size
        self.nulls += missing
        if bad:
            log.warning("%s: %d non-numeric or infinite value(s) in a chunk, left out of the tests", self.name, bad)
        self.invalid += bad
        if missing or bad:
            values = values[np.isfinite(values)]
        if values.size:
            self._fold(values)

    def _fold(self, values: np.ndarray) -> None:
        import numpy as np

        index = self._binner.index(values)
        self.bin_counts += np.bincount(index, minlength=self._binner.bins)
        sums = np.bincount(index, weights=values, minlength=self._binner.bins)
        self.bin_sums += sums
        # Chan et al.'s pairwise merge of (count, mean, M2): stable where sum-of-squares cancels.
        n_b = values.size
        mean_b = float(sums.sum()) / n_b
        centred = values - mean_b
        centred *= centred  # not np.dot: BLAS may spin up threads for it, costing more than the sum
        m2_b = float(centred.sum())
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
        return int(2 * self.bin_counts.size + self._values.size + self._keys.size) + 9


def _is_arrow_strings(column: Any) -> bool:
    import pyarrow as pa

    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _category_counts(column: Any) -> tuple[list[tuple[str, int]], int, int]:
    """(value as text, count) per distinct present value, the rows and the missing count.

    Strings in Arrow (pyarrow arrays, and pandas' default ``str`` columns, which Arrow backs) are
    counted by Arrow without a Python object per value; anything else as pandas spells it as text.
    """
    import pandas as pd

    if not _is_arrow(column) and isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        import pyarrow as pa

        column = pa.array(column.array)
    if _is_arrow(column):
        if _is_arrow_strings(column):
            import pyarrow.compute as pc

            counted = pc.value_counts(column)
            values, counts = counted.field("values").to_pylist(), counted.field("counts").to_pylist()
            present = [(str(v), int(c)) for v, c in zip(values, counts, strict=True) if v is not None]
            return present, len(column), column.null_count
        column = column.to_pandas()
    missing = column.isna()
    counts = column[~missing].astype(str).value_counts()
    return [(str(v), int(c)) for v, c in counts.items()], len(column), int(missing.sum())


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

    def update(self, column: Any) -> None:
        """Fold one chunk of the column in (a pandas Series or a pyarrow array)."""
        counts, rows, missing = _category_counts(column)
        self.rows += rows
        self.nulls += missing
        for value, count in counts:
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
        fine = profile.get("fine_bins")  # absent from baselines written before the fine bins
        fine_edges = fine["edges"] if fine else None
        return NumericAccumulator(name, profile["bins"]["edges"], reservoir_size, seed, fine_edges)
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

    def update(self, chunk: pd.DataFrame | pa.RecordBatch | pa.Table) -> StreamingProfile:
        """Fold one chunk in: a DataFrame, or an Arrow record batch or table (read without pandas).

        A chunk without a feature column is refused: drift cannot be judged.
        """
        if len(chunk) == 0:
            return self
        arrow = not hasattr(chunk, "iloc")
        columns = list(chunk.schema.names) if arrow else list(chunk.columns)
        missing = [name for name in self.features if name not in columns]
        if missing:
            raise ValueError(
                f"live data lacks feature column(s) {missing} (it has {columns[:30]}); "
                "capture every model input with the prediction"
            )
        column = chunk.column if arrow else chunk.__getitem__
        for name, accumulator in self.features.items():
            accumulator.update(column(name))
        if self.prediction is not None and self.prediction_column in columns:
            self.prediction.update(column(self.prediction_column))
        self.rows += len(chunk)
        return self

    def state_size(self) -> int:
        """Numbers held (array elements and dict entries): bounded by features x bins."""
        parts = list(self.features.values()) + ([self.prediction] if self.prediction else [])
        return sum(part.state_size() for part in parts) + 1
