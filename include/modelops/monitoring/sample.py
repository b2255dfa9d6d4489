"""A bounded, order-independent sample of a day's traffic for the data-quality suite.

GX validates rows in memory, so a day of any size is reduced to at most ``max_rows`` rows; the
sample is chosen by a hash of each record's key, so a re-run (or a different cut of the capture
files) validates exactly the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelops.monitoring.capture_format import KEYS, RECORD_INDEX

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)

#: Rows per version in the data-quality sample (bottom-k by hash of the record key).
QUALITY_SAMPLE_ROWS = 50_000


class QualitySample:
    """At most ``max_rows`` rows: those with the smallest hash of their record key.

    The key is a hash of ``(request_id, record_index)`` (of the whole row when those columns are
    absent), so the sample is uniform over the day and does not depend on the order or the cut
    of the files: a re-run validates the same rows.
    """

    method = "bottom-k by hash of (request_id, record_index)"

    def __init__(self, max_rows: int = QUALITY_SAMPLE_ROWS, columns: Iterable[str] | None = None) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.max_rows = max_rows
        self.columns = list(columns) if columns is not None else None
        self.seen = 0
        self._frame: pd.DataFrame | None = None
        self._keys: Any = None

    def add(self, chunk: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd

        if len(chunk) == 0:
            return
        self.seen += len(chunk)
        columns = [c for c in self.columns if c in chunk.columns] if self.columns is not None else list(chunk.columns)
        frame = chunk[columns]
        if all(c in chunk.columns for c in KEYS):
            keyed = chunk[KEYS].astype({RECORD_INDEX: "int64"})
        else:
            keyed = frame.astype(str)
        keys = pd.util.hash_pandas_object(keyed, index=False).to_numpy(dtype=np.uint64)
        if self._keys is not None and len(self._keys) >= self.max_rows:
            keep = keys < self._keys.max()
            frame, keys = frame[keep], keys[keep]
            if not len(keys):
                return
        if self._frame is not None:
            frame = pd.concat([self._frame, frame], ignore_index=True)
            keys = np.concatenate([self._keys, keys])
        if len(keys) > self.max_rows:
            chosen = np.sort(np.argpartition(keys, self.max_rows - 1)[: self.max_rows])
            frame, keys = frame.iloc[chosen], keys[chosen]
        self._frame, self._keys = frame.reset_index(drop=True), keys

    @property
    def frame(self) -> pd.DataFrame:
        """The sample in key order (deterministic whatever order the rows came in)."""
        import numpy as np
        import pandas as pd

        if self._frame is None:
            return pd.DataFrame(columns=self.columns or [])
        return self._frame.iloc[np.argsort(self._keys, kind="stable")].reset_index(drop=True)

    def __len__(self) -> int:
        return 0 if self._frame is None else len(self._frame)
