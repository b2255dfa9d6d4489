"""The columns of captured traffic and feedback as serving writes them, and where those files sit.

Monitoring reads what ``modelops.serving`` wrote; naming the columns once here keeps the reader
(live data, labels, quality sample, performance) in step with the writer's schema.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from modelops.layout import CAPTURE, FEEDBACK, partition

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modelops.store import Store

log = logging.getLogger(__name__)


REQUEST_ID = "request_id"
RECORD_INDEX = "record_index"
CAPTURED_AT = "captured_at"
MODEL_VERSION = "model_version"
PREDICTION = "prediction"
PROBABILITIES = "probabilities"
CLASSES = "classes"
LABEL = "label"
RECEIVED_AT = "received_at"
#: A served record's identity: the request and the record's position in it.
KEYS = [REQUEST_ID, RECORD_INDEX]
#: Rows whose capture has no model version are grouped under this name.
UNKNOWN_VERSION = "unknown"


def capture_partition(model: str, day: dt.date) -> str:
    """``capture/<model>/dt=<day>/``: the day's served traffic."""
    return partition(CAPTURE, model, day)


def feedback_partition(model: str, day: dt.date) -> str:
    """``feedback/<model>/dt=<day>/``: ground-truth labels received that day."""
    return partition(FEEDBACK, model, day)


def parquet_keys(store: Store, prefix: str) -> list[str]:
    """The Parquet files under ``prefix``, in key order (a re-run reads them in the same order)."""
    return sorted(o.key for o in store.list(prefix) if o.key.endswith(".parquet"))
