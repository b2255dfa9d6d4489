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
    PREDICTION,
    PROBABILITIES,
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


#: Two independent 64-bit hashes of ``(request_id, record_index)`` stand for the key: the first
#: indexes, the second confirms a match, so a label joins its record with certainty short of a
#: 128-bit collision while no Python string is kept per label (a day of millions of labels stays
#: within tens of MB; benchmarks/monitoring_growth.py).
_HASH_KEYS = ("0123456789123456", "modelops-label-2")


def key_hashes(frame: pd.DataFrame) -> tuple[Any, Any]:
    """The two uint64 hashes of each row's ``(request_id, record_index)`` (record_index as int64)."""
    import pandas as pd

    keys = pd.DataFrame(
        {REQUEST_ID: frame[REQUEST_ID].astype(object), RECORD_INDEX: frame[RECORD_INDEX].astype("int64")}
    )
    return tuple(pd.util.hash_pandas_object(keys, index=False, hash_key=k).to_numpy() for k in _HASH_KEYS)


def read_labels(
    store: Store, model: str, day: dt.date, *, label_lag_days: int = LABEL_LAG_DAYS
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Labels of ``feedback/<model>/`` for ``day`` and the next ``label_lag_days`` days.

    Returned compactly: the two key hashes (``_k1``, ``_k2``, see :func:`key_hashes`) and
    ``label``; of several labels for one record the last received wins. Files are read one at a
    time, and their keys hashed before the next is read.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    if label_lag_days < 0:
        raise ValueError(f"label_lag_days must not be negative, got {label_lag_days}")
    prefixes = [feedback_partition(model, day + dt.timedelta(days=d)) for d in range(label_lag_days + 1)]
    frames, files, received = [], 0, 0
    for prefix in prefixes:
        for key in parquet_keys(store, prefix):
            handle = pq.ParquetFile(io.BytesIO(store.get_bytes(key)), pre_buffer=False)  # read row groups as needed
            names = set(handle.schema_arrow.names)
            missing = [c for c in (*KEYS, LABEL) if c not in names]
            if missing:
                log.warning("%s: feedback file lacks column(s) %s; skipped", key, missing)
                continue
            columns = [*KEYS, LABEL] + ([RECEIVED_AT] if RECEIVED_AT in names else [])
            frames.append(_compact(handle.read(columns=columns).to_pandas()))
            received += handle.metadata.num_rows
            files += 1
    labels = pd.concat(frames, ignore_index=True) if frames else _compact(pd.DataFrame(columns=[*KEYS, LABEL]))
    labels = labels.sort_values(RECEIVED_AT, kind="stable", na_position="first")
    deduplicated = labels.drop_duplicates(subset=["_k1", "_k2"], keep="last")[["_k1", "_k2", LABEL]].reset_index(
        drop=True
    )
    info = {
        "partitions": prefixes,
        "files": files,
        "received": received,
        "duplicates": int(len(labels) - len(deduplicated)),
    }
    return deduplicated, info


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """One feedback file's usable labels as key hashes, label and receive time (NaT when absent)."""
    import pandas as pd

    frame = frame.dropna(subset=[*KEYS, LABEL])
    k1, k2 = key_hashes(frame)
    received = frame[RECEIVED_AT] if RECEIVED_AT in frame.columns else pd.Series(pd.NaT, index=frame.index)
    return pd.DataFrame(
        {
            "_k1": k1,
            "_k2": k2,
            LABEL: frame[LABEL].to_numpy(),
            RECEIVED_AT: pd.to_datetime(received, utc=True).to_numpy(),
        }
    )


class KeyIndex:
    """Unique record keys, given as their two hashes (:func:`key_hashes`), indexed once: each
    lookup costs its own rows and confirms every match on the second hash."""

    def __init__(self, k1: Any, k2: Any) -> None:
        import pandas as pd

        self.k2 = k2
        first = pd.Index(k1)
        # Two keys sharing the first hash (about one day in 10^7 at millions of keys): index both.
        self.index = first if first.is_unique else pd.MultiIndex.from_arrays([first, k2])

    def __len__(self) -> int:
        return len(self.k2)

    def positions(self, k1: Any, k2: Any) -> Any:
        """Each looked-up key's position in the index, -1 where it is absent."""
        import numpy as np
        import pandas as pd

        both = isinstance(self.index, pd.MultiIndex)
        positions = np.array(self.index.get_indexer(pd.MultiIndex.from_arrays([k1, k2]) if both else k1), np.int64)
        found = np.flatnonzero(positions >= 0)
        positions[found[self.k2[positions[found]] != k2[found]]] = -1
        return positions


class LabelLookup:
    """Labels indexed once by their key hash: each chunk's join costs its own rows."""

    def __init__(self, labels: pd.DataFrame) -> None:
        self.values = labels[LABEL].to_numpy()
        self.keys = KeyIndex(labels["_k1"].to_numpy(), labels["_k2"].to_numpy())

    def __len__(self) -> int:
        return len(self.values)

    def positions(self, k1: Any, k2: Any) -> Any:
        """Each key's position among the labels (-1: unlabelled); see :meth:`KeyIndex.positions`."""
        return self.keys.positions(k1, k2)

    def join(self, served: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``served`` that have a label, with a ``label`` column."""
        positions = self.positions(*key_hashes(served))
        matched = positions >= 0
        return served[matched].assign(**{LABEL: self.values[positions[matched]]})


class LabelledRows:
    """The labelled served rows of one version, held compactly: request ids in an Arrow string
    array, probabilities as one float matrix per chunk (not a Python list per row)."""

    def __init__(self) -> None:
        self._parts: list[dict[str, Any]] = []

    def add(self, joined: pd.DataFrame) -> None:
        import numpy as np
        import pyarrow as pa

        if not len(joined):
            return
        part = {
            REQUEST_ID: pa.array(joined[REQUEST_ID].astype(object), pa.string()),
            RECORD_INDEX: joined[RECORD_INDEX].to_numpy(np.int64),
            PREDICTION: joined[PREDICTION].to_numpy(),
            LABEL: joined[LABEL].to_numpy(),
        }
        if PROBABILITIES in joined.columns:
            part[PROBABILITIES] = probability_matrix(joined[PROBABILITIES])
        self._parts.append(part)

    def __len__(self) -> int:
        return sum(len(p[RECORD_INDEX]) for p in self._parts)

    def arrays(self) -> tuple[Any, Any, Any]:
        """``(predictions, labels, probabilities)``; probabilities is None unless every row has a
        finite row of the same width."""
        import numpy as np

        if not self._parts:
            return np.empty(0, object), np.empty(0, object), None
        predictions = np.concatenate([p[PREDICTION] for p in self._parts])
        labels = np.concatenate([p[LABEL] for p in self._parts])
        matrices = [p.get(PROBABILITIES) for p in self._parts]
        widths = {m.shape[1] for m in matrices if m is not None}
        complete = all(m is not None for m in matrices) and len(widths) == 1
        probabilities = np.vstack(matrices) if complete else None
        return predictions, labels, probabilities

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (probabilities as one array per row): for a reader, not for the
        monitoring of a large day."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        if not self._parts:
            return pd.DataFrame(columns=[*KEYS, PREDICTION, LABEL])
        predictions, labels, probabilities = self.arrays()
        columns = {
            REQUEST_ID: pa.chunked_array([p[REQUEST_ID] for p in self._parts]).to_pandas(),
            RECORD_INDEX: np.concatenate([p[RECORD_INDEX] for p in self._parts]),
            PREDICTION: predictions,
            LABEL: labels,
        }
        if any(PROBABILITIES in p for p in self._parts):
            columns[PROBABILITIES] = list(probabilities) if probabilities is not None else [None] * len(labels)
        return pd.DataFrame(columns)


def probability_matrix(column: pd.Series, n_classes: int | None = None) -> Any:
    """Captured probability lists as an (n, k) float array, or None if any row lacks them, a row
    has another width (or not ``n_classes``), or a value is not finite."""
    import numpy as np

    if column.isna().any() or not len(column):
        return None
    try:
        matrix = np.vstack([np.asarray(p, dtype=float) for p in column])
    except ValueError:
        return None
    width = n_classes if n_classes is not None else matrix.shape[1]
    if width < 2 or matrix.shape != (len(column), width) or not np.isfinite(matrix).all():
        return None
    return matrix
