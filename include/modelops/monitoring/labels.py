"""Ground-truth labels for a day's served records, read from ``feedback/`` and joined by record key.

Labels arrive late: the day's feedback partition and the next ``label_lag_days`` are read (a
fixed set of partitions, so a re-run reads the same ones), and the last label received for a
record wins.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import TYPE_CHECKING, Any

from modelops.monitoring.capture_format import (
    KEYS,
    LABEL,
    RECEIVED_AT,
    RECORD_INDEX,
    REQUEST_ID,
    feedback_partition,
    parquet_keys,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from modelops.store import Store

log = logging.getLogger(__name__)

#: Feedback partitions read after the day's own (labels arrive late).
LABEL_LAG_DAYS = 1


def read_labels(
    store: Store, model: str, day: dt.date, *, label_lag_days: int = LABEL_LAG_DAYS
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Labels of ``feedback/<model>/`` for ``day`` and the next ``label_lag_days`` days.

    Only ``request_id, record_index, label`` are kept; of several labels for one record the last
    received wins.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    if label_lag_days < 0:
        raise ValueError(f"label_lag_days must not be negative, got {label_lag_days}")
    prefixes = [feedback_partition(model, day + dt.timedelta(days=d)) for d in range(label_lag_days + 1)]
    frames, files = [], 0
    for prefix in prefixes:
        for key in parquet_keys(store, prefix):
            handle = pq.ParquetFile(io.BytesIO(store.get_bytes(key)), pre_buffer=False)  # read row groups as needed
            names = set(handle.schema_arrow.names)
            missing = [c for c in (*KEYS, LABEL) if c not in names]
            if missing:
                log.warning("%s: feedback file lacks column(s) %s; skipped", key, missing)
                continue
            columns = [*KEYS, LABEL] + ([RECEIVED_AT] if RECEIVED_AT in names else [])
            frames.append(handle.read(columns=columns).to_pandas())
            files += 1
    if frames:
        labels = pd.concat(frames, ignore_index=True)
    else:
        labels = pd.DataFrame({REQUEST_ID: pd.Series(dtype=object), RECORD_INDEX: pd.Series(dtype="int64"), LABEL: []})
    received = len(labels)
    labels = labels.dropna(subset=[*KEYS, LABEL])
    labels[RECORD_INDEX] = labels[RECORD_INDEX].astype("int64")
    if RECEIVED_AT in labels.columns:
        labels = labels.sort_values(RECEIVED_AT, kind="stable", na_position="first")
    deduplicated = labels.drop_duplicates(subset=KEYS, keep="last")[[*KEYS, LABEL]].reset_index(drop=True)
    info = {
        "partitions": prefixes,
        "files": files,
        "received": received,
        "duplicates": int(len(labels) - len(deduplicated)),
    }
    return deduplicated, info


class LabelLookup:
    """Labels indexed once by ``(request_id, record_index)``: each chunk's join costs its own rows."""

    def __init__(self, labels: pd.DataFrame) -> None:
        import pandas as pd

        self.index = pd.MultiIndex.from_frame(labels[KEYS])
        self.values = labels[LABEL].to_numpy()

    def __len__(self) -> int:
        return len(self.values)

    def join(self, served: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``served`` that have a label, with a ``label`` column."""
        import pandas as pd

        positions = self.index.get_indexer(pd.MultiIndex.from_frame(served[KEYS]))
        matched = positions >= 0
        return served[matched].assign(**{LABEL: self.values[positions[matched]]})
