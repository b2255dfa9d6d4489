"""Plain JSON values from whatever numpy, pandas, GX and sklearn hand back.

Reports, decision records and XCom payloads are written with ``allow_nan=False`` semantics: a
NaN or an infinity is not a number a reader can use, so it becomes ``null``. One rule, used by
every stage, so a value means the same in every record.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any


def finite(value: Any) -> float | None:
    """A plain float, or None for missing, NaN, infinite, boolean or non-numeric values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """Plain JSON types only: mapping keys as text, numpy scalars and arrays unwrapped, NaN and
    infinities as None, pandas' missing markers as None, dates and timestamps as ISO 8601 text;
    anything else as its ``str``."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return finite(value)
    if type(value).__name__ in {"NAType", "NaTType"}:  # pandas' missing markers
        return None
    if isinstance(value, dt.datetime | dt.date) or hasattr(value, "isoformat"):  # incl. pandas Timestamp
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy array or scalar
        return json_safe(value.tolist())
    return str(value)
