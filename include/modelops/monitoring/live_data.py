"""One day of served traffic folded into bounded per-version state: profiles, samples, labels.

A day can be served by several model versions (a promotion at noon); each is profiled against
its own training baseline. Capture files are read one at a time in record batches, so memory is
bounded by features x bins, not by rows (see docs/ARCHITECTURE.md and benchmarks/drift.py).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops.drift import detect as _drift
from modelops.jsonsafe import json_safe
from modelops.monitoring.capture_format import (
    CAPTURED_AT,
    CLASSES,
    KEYS,
    MODEL_VERSION,
    PREDICTION,
    PROBABILITIES,
    RECORD_INDEX,
    UNKNOWN_VERSION,
    capture_partition,
    parquet_keys,
)
from modelops.monitoring.dates import as_date
from modelops.monitoring.estimation import ScoreSample
from modelops.monitoring.labels import LABEL_LAG_DAYS, LabelledRows, LabelLookup, read_labels
from modelops.monitoring.sample import QUALITY_SAMPLE_ROWS, QualitySample

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from modelops.store import Store

log = logging.getLogger(__name__)

#: Rows per Parquet record batch folded into the profile at once. Batches are decoded on the
#: calling thread: with pyarrow's decode threads (or bigger batches) RSS creeps up with the rows
#: read (allocator arenas), while this keeps it flat (benchmarks/drift.py, docs/BENCHMARKS.md).
CHUNK_ROWS = 25_000

BaselineSource = Mapping[str, Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None]


def _baseline_getter(baselines: BaselineSource) -> Callable[[str], Mapping[str, Any] | None]:
    """One lookup per version, cached. A loader returns None for "no baseline"; errors propagate."""
    if callable(baselines):
        cache: dict[str, Mapping[str, Any] | None] = {}

        def load(version: str) -> Mapping[str, Any] | None:
            if version not in cache:
                cache[version] = baselines(version)  # type: ignore[operator]
            return cache[version]

        return load
    by_version = {str(k): v for k, v in baselines.items()}
    return by_version.get


@dataclass
class VersionData:
    """What one model version served on the day, folded into bounded state."""

    version: str
    baseline: Mapping[str, Any] | None
    profile: _drift.StreamingProfile | None
    sample: QualitySample | None
    rows: int = 0
    first_captured_at: str | None = None
    last_captured_at: str | None = None
    #: Class labels as serving spelled them (probability column order), for classifiers.
    classes: list[str] | None = None
    #: Feature columns absent from some capture files (profiled as missing values).
    missing_columns: set[str] = field(default_factory=set)
    #: Labelled rows only: request_id, record_index, prediction, label (+ probabilities), compact.
    labelled: LabelledRows = field(default_factory=LabelledRows, repr=False)
    #: Served probabilities and predictions (bounded), for label-free estimation; None without a
    #: calibrated baseline.
    scores: ScoreSample | None = None

    @property
    def labels(self) -> pd.DataFrame:
        """The labelled rows as a DataFrame (a copy: for readers and tests, not a large day)."""
        return self.labelled.frame()

    @property
    def quality_sample(self) -> pd.DataFrame:
        import pandas as pd

        return self.sample.frame if self.sample is not None else pd.DataFrame()


@dataclass
class DayData:
    """One model's traffic of one day; ``no_data`` when nothing was captured (not an error)."""

    model: str
    day: dt.date
    files: list[str] = field(default_factory=list)
    rows: int = 0
    versions: dict[str, VersionData] = field(default_factory=dict)
    label_partitions: list[str] = field(default_factory=list)
    #: The day's labels, indexed once (None before they are read): the shadow comparison joins them too.
    label_lookup: LabelLookup | None = field(default=None, repr=False)
    label_files: int = 0
    labels_received: int = 0
    duplicate_labels: int = 0

    @property
    def no_data(self) -> bool:
        return self.rows == 0

    @property
    def versions_without_baseline(self) -> list[str]:
        return sorted(v for v, data in self.versions.items() if data.profile is None)

    @property
    def main_version(self) -> str | None:
        """The version that served the most rows (ties: the one that served last), with a baseline."""
        candidates = [d for d in self.versions.values() if d.profile is not None and d.rows > 0]
        if not candidates:
            return None
        best = max(candidates, key=lambda d: (d.rows, d.last_captured_at or "", d.version))
        return best.version

    @property
    def message(self) -> str:
        if self.no_data:
            return f"no captured traffic under {capture_partition(self.model, self.day)}"
        return f"{self.rows} rows in {len(self.files)} file(s) from version(s) {sorted(self.versions)}"


def collect(
    store: Store,
    model: str,
    day: dt.date | str,
    baselines: BaselineSource,
    *,
    chunk_rows: int = CHUNK_ROWS,
    label_lag_days: int = LABEL_LAG_DAYS,
    quality_sample_rows: int = QUALITY_SAMPLE_ROWS,
) -> DayData:
    """Fold one day of ``capture/<model>/dt=<day>/`` into bounded per-version state, labels joined.

    ``baselines`` maps a model version to its training baseline profile, or is a callable
    ``version -> profile | None`` (e.g. reading the registry's baseline artifact). Files are read
    in key order, one at a time, in record batches of ``chunk_rows``.
    """
    import pyarrow.parquet as pq

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    day = as_date(day)
    get_baseline = _baseline_getter(baselines)
    data = DayData(model=model, day=day)
    data.files = parquet_keys(store, capture_partition(model, day))
    if not data.files:
        log.info("%s: %s", model, data.message)
        return data

    labels, label_info = read_labels(store, model, day, label_lag_days=label_lag_days)
    data.label_partitions = label_info["partitions"]
    data.label_files = label_info["files"]
    data.labels_received = label_info["received"]
    data.duplicate_labels = label_info["duplicates"]
    lookup = data.label_lookup = LabelLookup(labels)

    for key in data.files:
        handle = pq.ParquetFile(io.BytesIO(store.get_bytes(key)), pre_buffer=False)  # read row groups as needed
        columns = list(handle.schema_arrow.names)  # probabilities too: scoring and estimation read them
        for batch in handle.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=False):
            _fold_chunk(data, batch.to_pandas(), get_baseline, lookup, quality_sample_rows)

    log.info(
        "%s %s: %s; %d of %d label(s) joined",
        model,
        day,
        data.message,
        sum(len(v.labelled) for v in data.versions.values()),
        len(labels),
    )
    return data


def _new_version(version: str, get_baseline: Callable[[str], Any], sample_rows: int) -> VersionData:
    baseline = get_baseline(version)
    if baseline is None:
        log.warning("model version %s has no baseline: its rows are counted but not judged", version)
        return VersionData(version=version, baseline=None, profile=None, sample=None)
    profile = _drift.StreamingProfile.from_baseline(baseline, prediction_column=PREDICTION)
    sample = QualitySample(sample_rows, columns=[*KEYS, *baseline["features"]])
    calibrated = (baseline.get("calibration") or {}).get("status") == "ok"
    scores = ScoreSample() if calibrated else None
    return VersionData(version=version, baseline=baseline, profile=profile, sample=sample, scores=scores)


def _fold_chunk(
    data: DayData,
    chunk: pd.DataFrame,
    get_baseline: Callable[[str], Any],
    labels: LabelLookup,
    sample_rows: int,
) -> None:
    import pandas as pd

    if len(chunk) == 0:
        return
    data.rows += len(chunk)
    if MODEL_VERSION in chunk.columns:
        versions = chunk[MODEL_VERSION].astype(object).where(chunk[MODEL_VERSION].notna(), UNKNOWN_VERSION)
        versions = versions.astype(str).to_numpy()
    else:
        versions = [UNKNOWN_VERSION] * len(chunk)
    for version, part in chunk.groupby(versions, sort=True):
        version = str(version)
        vd = data.versions.get(version)
        if vd is None:
            vd = data.versions[version] = _new_version(version, get_baseline, sample_rows)
        vd.rows += len(part)
        if CAPTURED_AT in part.columns and part[CAPTURED_AT].notna().any():
            first, last = json_safe(part[CAPTURED_AT].min()), json_safe(part[CAPTURED_AT].max())
            vd.first_captured_at = min(filter(None, [vd.first_captured_at, first]))
            vd.last_captured_at = max(filter(None, [vd.last_captured_at, last]))
        if CLASSES in part.columns and vd.classes is None:
            present = part[CLASSES].dropna()
            if len(present):
                vd.classes = [str(c) for c in present.iloc[0]]
        if vd.profile is not None:
            missing = [f for f in vd.profile.features if f not in part.columns]
            if missing:
                vd.missing_columns.update(missing)
                log.warning("version %s: capture lacks feature column(s) %s; counted as missing", version, missing)
                profiled = part.assign(**{name: pd.Series(None, index=part.index, dtype=object) for name in missing})
            else:
                profiled = part
            vd.profile.update(profiled)
            vd.sample.add(part)  # as captured: a column absent everywhere stays absent for GX
        if vd.scores is not None and PROBABILITIES in part.columns and PREDICTION in part.columns:
            vd.scores.add(part[PROBABILITIES], part[PREDICTION])
        if len(labels) and all(c in part.columns for c in (*KEYS, PREDICTION)):
            wanted = [*KEYS, PREDICTION] + ([PROBABILITIES] if PROBABILITIES in part.columns else [])
            joined = labels.join(part[wanted].astype({RECORD_INDEX: "int64"}))
            vd.labelled.add(joined)
