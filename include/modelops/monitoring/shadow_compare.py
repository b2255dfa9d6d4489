"""Champion vs shadow on the same requests of one day: agreement, prediction drift, live metrics.

Serving writes the shadow's predictions to ``shadow/<model>/dt=<day>/`` with the request id and
record index of the served row (:mod:`modelops.serving.shadow`); this module joins the two streams
on those keys, so every number compares the two versions on exactly the same records:

* ``agreement_rate`` (classifiers: share of records both label alike) or ``mean_abs_difference``
  and ``mean_relative_difference`` (regression);
* ``prediction_drift``: the drift method the platform uses for a prediction column (Jensen-Shannon
  over classes, KS with a normalised-Wasserstein floor for numbers; :mod:`modelops.drift`) with the
  champion's predictions as the reference;
* ``live_metrics``: both versions' metrics on the labelled records (the training scorers, as
  :mod:`.performance` replays them), and ``regression``: how much worse the shadow is on the primary
  metric (positive = worse, :func:`modelops.metrics.worse_by`).

The result (``None`` when the day has no shadow rows) is the report's ``shadow`` section, and
one day of the gate's shadow evidence.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.jsonsafe import finite, json_safe
from modelops.layout import SHADOW, partition
from modelops.metrics import worse_by
from modelops.monitoring.capture_format import (
    CLASSES,
    KEYS,
    MODEL_VERSION,
    PREDICTION,
    PROBABILITIES,
    capture_partition,
    parquet_keys,
)
from modelops.monitoring.labels import LabelLookup, read_labels
from modelops.monitoring.performance import MIN_LABELS, live_metrics

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from modelops.store import Store

log = logging.getLogger(__name__)

_COLUMNS = [*KEYS, MODEL_VERSION, PREDICTION]


def _read(store: Store, prefix: str, classifier: bool) -> pd.DataFrame:
    """The key, version and prediction columns (and probabilities of classifiers) under ``prefix``."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for key in parquet_keys(store, prefix):
        handle = pq.ParquetFile(io.BytesIO(store.get_bytes(key)), pre_buffer=False)
        names = set(handle.schema_arrow.names)
        wanted = _COLUMNS + [c for c in (PROBABILITIES, CLASSES) if classifier and c in names]
        if not set(_COLUMNS) <= names:
            log.warning("%s lacks column(s) %s; skipped", key, sorted(set(_COLUMNS) - names))
            continue
        frames.append(handle.read(columns=wanted).to_pandas())
    if not frames:
        return pd.DataFrame(columns=_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    rows["record_index"] = rows["record_index"].astype("int64")
    return rows.drop_duplicates(subset=KEYS, keep="last")


def _prediction_drift(config: ModelConfig, champion: pd.Series, shadow: pd.Series) -> dict[str, Any]:
    """The drift of the shadow's predictions from the champion's, by the platform's own methods."""
    import numpy as np

    if config.is_classifier:
        from modelops.drift.jensen_shannon import jensen_shannon_drift

        return jensen_shannon_drift(
            champion.astype(str).value_counts().to_dict(),
            shadow.astype(str).value_counts().to_dict(),
            spec=config.drift,
        )
    from scipy.stats import wasserstein_distance

    from modelops.drift.ks import ks_drift

    a, b = champion.astype(float).to_numpy(), shadow.astype(float).to_numpy()
    scale = float(np.std(a)) or 1.0
    return ks_drift(a, b, effect_size=float(wasserstein_distance(a, b)) / scale, spec=config.drift)


def _agreement(config: ModelConfig, joined: pd.DataFrame) -> dict[str, Any]:
    import numpy as np

    if config.is_classifier:
        same = joined[PREDICTION].astype(str).to_numpy() == joined[f"{PREDICTION}_shadow"].astype(str).to_numpy()
        return {"agreement_rate": float(same.mean()), "disagreement_rate": float(1 - same.mean())}
    a = joined[PREDICTION].astype(float).to_numpy()
    b = joined[f"{PREDICTION}_shadow"].astype(float).to_numpy()
    difference = np.abs(b - a)
    relative = difference / np.maximum(np.abs(a), 1e-12)
    return {"mean_abs_difference": float(difference.mean()), "mean_relative_difference": float(relative.mean())}


def _classes(frame: pd.DataFrame, column: str) -> list[str] | None:
    """The class labels serving wrote with the rows (probability column order), or None."""
    if column not in frame.columns or frame.empty or frame[column].iloc[0] is None:
        return None
    return [str(c) for c in frame[column].iloc[0]]


def _live(
    config: ModelConfig, joined: pd.DataFrame, store: Store, day: dt.date, min_labels: int, labels: LabelLookup | None
) -> dict[str, Any]:
    """Both versions' metrics on the labelled records, and how much worse the shadow is.
    ``labels``: the day's lookup when the caller already read it (monitoring's collect), else read here."""
    if labels is None:
        labels = LabelLookup(read_labels(store, config.name, day)[0])
    labelled = labels.join(joined) if len(labels) else joined.iloc[0:0]
    primary = config.metrics.primary
    out: dict[str, Any] = {"labelled_rows": len(labelled), "primary_metric": primary, "min_labels": min_labels}
    if len(labelled) < min_labels:
        out.update(status="insufficient_labels", champion=None, shadow=None, regression=None)
        return out
    champion = live_metrics(config, labelled, _classes(labelled, CLASSES))
    shadow_frame = labelled.drop(columns=[PREDICTION, PROBABILITIES, CLASSES], errors="ignore").rename(
        columns={f"{c}_shadow": c for c in (PREDICTION, PROBABILITIES, CLASSES)}
    )
    shadow = live_metrics(config, shadow_frame, _classes(shadow_frame, CLASSES))
    out.update(
        status="ok",
        champion=champion,
        shadow=shadow,
        regression=worse_by(primary, finite(champion.get(primary)), finite(shadow.get(primary))),
    )
    return out


def compare_shadow(
    store: Store, config: ModelConfig, day: dt.date, *, min_labels: int = MIN_LABELS, labels: LabelLookup | None = None
) -> dict[str, Any] | None:
    """The day's champion-vs-shadow comparison (JSON-safe), or None when no shadow scored that day."""
    classifier = config.is_classifier
    shadow = _read(store, partition(SHADOW, config.name, day), classifier)
    if shadow.empty:
        return None
    served = _read(store, capture_partition(config.name, day), classifier)
    joined = served.merge(shadow, on=KEYS, suffixes=("", "_shadow"))
    result: dict[str, Any] = {
        "day": day.isoformat(),
        "champion_versions": sorted(set(joined[MODEL_VERSION].astype(str))),
        "shadow_versions": sorted(set(shadow[MODEL_VERSION].astype(str))),
        "rows_served": len(served),
        "rows_shadow": len(shadow),
        "rows_compared": len(joined),
    }
    if joined.empty:
        result["status"] = "no_overlap"
        return json_safe(result)
    result.update(_agreement(config, joined))
    result["prediction_drift"] = _prediction_drift(config, joined[PREDICTION], joined[f"{PREDICTION}_shadow"])
    result["live"] = _live(config, joined, store, day, min_labels, labels)
    result["status"] = "ok"
    return json_safe(result)
