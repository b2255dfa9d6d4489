"""Champion vs shadow on the same requests of one day: agreement, prediction drift, live metrics.

Serving writes the shadow's predictions to ``shadow/<model>/dt=<day>/`` with the request id and
record index of the served row (:mod:`modelops.serving.shadow`); this module joins the two streams
on those keys, so every number compares the two versions on exactly the same records:

* ``agreement_rate`` (classifiers: share of records both label alike) or ``mean_abs_difference``
  and ``mean_relative_difference`` (regression; a shadow that is the champion's own model can still
  differ in the last bits, ~1e-15 relative, since it scores requests merged into other batches);
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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.jsonsafe import finite, json_safe
from modelops.layout import SHADOW, partition
from modelops.metrics import worse_by
from modelops.monitoring.capture_format import (
    CLASSES,
    KEYS,
    LABEL,
    MODEL_VERSION,
    PREDICTION,
    PROBABILITIES,
    capture_partition,
    parquet_keys,
)
from modelops.monitoring.labels import KeyIndex, LabelledRows, LabelLookup, key_hashes, probability_matrix, read_labels
from modelops.monitoring.performance import MIN_LABELS, live_metrics

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from modelops.store import Store

log = logging.getLogger(__name__)

_COLUMNS = [*KEYS, MODEL_VERSION, PREDICTION]


def _chunks(store: Store, prefix: str, classifier: bool) -> Iterator[pd.DataFrame]:
    """The key, version and prediction columns (and probabilities of classifiers) under
    ``prefix``, one file at a time: memory holds one file's rows, not the day's."""
    import pyarrow.parquet as pq

    for key in parquet_keys(store, prefix):
        handle = pq.ParquetFile(io.BytesIO(store.get_bytes(key)), pre_buffer=False)
        names = set(handle.schema_arrow.names)
        if not set(_COLUMNS) <= names:
            log.warning("%s lacks column(s) %s; skipped", key, sorted(set(_COLUMNS) - names))
            continue
        wanted = _COLUMNS + [c for c in (PROBABILITIES, CLASSES) if classifier and c in names]
        chunk = handle.read(columns=wanted).to_pandas()
        if len(chunk):
            chunk["record_index"] = chunk["record_index"].astype("int64")
            yield chunk


class _Codes:
    """Class labels as small integer codes shared by both versions (a day of millions of predicted
    classes stays one int32 per row, not one Python string)."""

    def __init__(self) -> None:
        self.table: dict[str, int] = {}

    def encode(self, values: pd.Series) -> Any:
        import numpy as np
        import pandas as pd

        codes, uniques = pd.factorize(values.astype(str))
        mapping = np.array([self.table.setdefault(u, len(self.table)) for u in uniques], dtype=np.int32)
        return mapping[codes] if len(mapping) else np.zeros(len(codes), np.int32)

    def decode(self, codes: Any) -> Any:
        import numpy as np

        names = np.array(list(self.table), dtype=object)
        return names[codes]

    def counts(self, codes: Any) -> dict[str, int]:
        import numpy as np

        counted = np.bincount(codes, minlength=len(self.table))
        return {name: int(counted[code]) for name, code in self.table.items() if counted[code]}


class _ShadowRows:
    """The day's shadow rows, compactly: key hashes indexed once, predictions (codes for classes),
    and probabilities kept only for the rows that have a label (all live metrics need)."""

    def __init__(self, store: Store, prefix: str, config: ModelConfig, codes: _Codes, labels: LabelLookup) -> None:
        import numpy as np
        import pandas as pd

        classifier = config.is_classifier
        k1s, k2s, predictions, probability_rows, matrices = [], [], [], [], []
        self.versions: set[str] = set()
        self.classes: list[str] | None = None
        held = 0
        for chunk in _chunks(store, prefix, classifier):
            k1, k2 = key_hashes(chunk)
            k1s.append(k1)
            k2s.append(k2)
            self.versions.update(chunk[MODEL_VERSION].astype(str).unique())
            predictions.append(codes.encode(chunk[PREDICTION]) if classifier else chunk[PREDICTION].to_numpy(float))
            self.classes = self.classes or _classes(chunk, CLASSES)
            pointer = np.full(len(chunk), -1, np.int64)
            labelled = labels.positions(k1, k2) >= 0 if len(labels) and PROBABILITIES in chunk.columns else None
            if labelled is not None and labelled.any():
                matrix = probability_matrix(chunk[PROBABILITIES][labelled])
                if matrix is not None:
                    pointer[labelled] = np.arange(held, held + len(matrix))
                    held += len(matrix)
                    matrices.append(matrix)
            probability_rows.append(pointer)
        self.rows = sum(len(k) for k in k1s)
        if not self.rows:
            return
        k1, k2 = np.concatenate(k1s), np.concatenate(k2s)
        # A record scored twice (a retried request): its last row counts, as the capture's readers do.
        last = ~pd.DataFrame({"a": k1, "b": k2}).duplicated(keep="last").to_numpy()
        self.keys = KeyIndex(k1[last], k2[last])
        self.predictions = np.concatenate(predictions)[last]
        self.probability_rows = np.concatenate(probability_rows)[last]
        self.probabilities = np.vstack(matrices) if matrices and len({m.shape[1] for m in matrices}) == 1 else None


def _classes(frame: pd.DataFrame, column: str) -> list[str] | None:
    """The class labels serving wrote with the rows (probability column order), or None."""
    if column not in frame.columns or frame.empty or frame[column].iloc[0] is None:
        return None
    return [str(c) for c in frame[column].iloc[0]]


class _Comparison:
    """What the served stream adds up, file by file, against the shadow rows it matches."""

    def __init__(self, config: ModelConfig, shadow: _ShadowRows, codes: _Codes, labels: LabelLookup) -> None:
        import numpy as np

        self.config, self.shadow, self.codes, self.labels = config, shadow, codes, labels
        self.used = np.zeros(len(shadow.keys), dtype=bool)
        self.rows_served = 0
        self.champion_versions: set[str] = set()
        self.champion_codes: list[Any] = []
        self.shadow_codes: list[Any] = []
        self.classes: list[str] | None = None
        self.labelled_champion, self.labelled_shadow = LabelledRows(), LabelledRows()

    def add(self, chunk: pd.DataFrame) -> None:

        self.rows_served += len(chunk)
        k1, k2 = key_hashes(chunk)
        positions = self.shadow.keys.positions(k1, k2)
        matched = positions >= 0
        matched[matched] = ~self.used[positions[matched]]  # each shadow row answers one served row
        if not matched.any():
            return
        rows, positions = chunk[matched], positions[matched]
        self.used[positions] = True
        self.champion_versions.update(rows[MODEL_VERSION].astype(str).unique())
        self.classes = self.classes or _classes(rows, CLASSES)
        classifier = self.config.is_classifier
        self.champion_codes.append(
            self.codes.encode(rows[PREDICTION]) if classifier else rows[PREDICTION].to_numpy(float)
        )
        self.shadow_codes.append(self.shadow.predictions[positions])
        if len(self.labels):
            self._add_labelled(rows, positions, k1[matched], k2[matched])

    def _add_labelled(self, rows: pd.DataFrame, positions: Any, k1: Any, k2: Any) -> None:
        """Both versions' answers on the matched rows that have a label, kept compactly."""
        label_at = self.labels.positions(k1, k2)
        labelled = label_at >= 0
        if not labelled.any():
            return
        champion = rows[labelled].assign(**{LABEL: self.labels.values[label_at[labelled]]})
        self.labelled_champion.add(champion)
        shadow_at = positions[labelled]
        predictions = self.shadow.predictions[shadow_at]
        shadow = champion[[*KEYS, LABEL]].assign(
            **{PREDICTION: self.codes.decode(predictions) if self.config.is_classifier else predictions}
        )
        pointers = self.shadow.probability_rows[shadow_at]
        if self.shadow.probabilities is not None and (pointers >= 0).all():
            shadow[PROBABILITIES] = list(self.shadow.probabilities[pointers])
        self.labelled_shadow.add(shadow)

    def result(self, day: dt.date, min_labels: int) -> dict[str, Any]:
        import numpy as np

        result: dict[str, Any] = {
            "day": day.isoformat(),
            "champion_versions": sorted(self.champion_versions),
            "shadow_versions": sorted(self.shadow.versions),
            "rows_served": self.rows_served,
            "rows_shadow": self.shadow.rows,
            "rows_compared": int(self.used.sum()),
        }
        if not self.champion_codes:
            return result | {"status": "no_overlap"}
        champion, shadow = np.concatenate(self.champion_codes), np.concatenate(self.shadow_codes)
        result.update(self._agreement(champion, shadow))
        result["prediction_drift"] = self._prediction_drift(champion, shadow)
        result["live"] = self._live(min_labels)
        result["status"] = "ok"
        return result

    def _agreement(self, champion: Any, shadow: Any) -> dict[str, Any]:
        import numpy as np

        if self.config.is_classifier:
            same = float((champion == shadow).mean())
            return {"agreement_rate": same, "disagreement_rate": 1 - same}
        difference = np.abs(shadow - champion)
        relative = difference / np.maximum(np.abs(champion), 1e-12)
        return {"mean_abs_difference": float(difference.mean()), "mean_relative_difference": float(relative.mean())}

    def _prediction_drift(self, champion: Any, shadow: Any) -> dict[str, Any]:
        """The drift of the shadow's predictions from the champion's, by the platform's own methods."""
        import numpy as np

        spec = self.config.drift
        if self.config.is_classifier:
            from modelops.drift.jensen_shannon import jensen_shannon_drift

            return jensen_shannon_drift(self.codes.counts(champion), self.codes.counts(shadow), spec=spec)
        from scipy.stats import wasserstein_distance

        from modelops.drift.ks import ks_drift

        scale = float(np.std(champion)) or 1.0
        return ks_drift(champion, shadow, effect_size=float(wasserstein_distance(champion, shadow)) / scale, spec=spec)

    def _live(self, min_labels: int) -> dict[str, Any]:
        """Both versions' metrics on the labelled records, and how much worse the shadow is."""
        primary = self.config.metrics.primary
        labelled = len(self.labelled_champion)
        out: dict[str, Any] = {"labelled_rows": labelled, "primary_metric": primary, "min_labels": min_labels}
        if labelled < min_labels:
            return out | {"status": "insufficient_labels", "champion": None, "shadow": None, "regression": None}
        champion = live_metrics(self.config, self.labelled_champion, self.classes)
        shadow = live_metrics(self.config, self.labelled_shadow, self.shadow.classes or self.classes)
        regression = worse_by(primary, finite(champion.get(primary)), finite(shadow.get(primary)))
        return out | {"status": "ok", "champion": champion, "shadow": shadow, "regression": regression}


def compare_shadow(
    store: Store, config: ModelConfig, day: dt.date, *, min_labels: int = MIN_LABELS, labels: LabelLookup | None = None
) -> dict[str, Any] | None:
    """The day's champion-vs-shadow comparison (JSON-safe), or None when no shadow scored that day.
    ``labels``: the day's lookup when the caller already read it (monitoring's collect), else read here.

    Both partitions are read a file at a time: the shadow's into compact arrays, then the served
    rows streamed against them, so memory grows by tens of bytes per shadow row, not by the day's
    frames."""
    if labels is None:
        labels = LabelLookup(read_labels(store, config.name, day)[0])
    codes = _Codes()
    shadow = _ShadowRows(store, partition(SHADOW, config.name, day), config, codes, labels)
    if not shadow.rows:
        return None
    comparison = _Comparison(config, shadow, codes, labels)
    for chunk in _chunks(store, capture_partition(config.name, day), config.is_classifier):
        comparison.add(chunk)
    return json_safe(comparison.result(day, min_labels))
