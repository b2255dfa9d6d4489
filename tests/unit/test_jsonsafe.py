"""jsonsafe: the one rule for turning numpy/pandas/GX values into plain JSON."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from modelops.jsonsafe import finite, json_safe


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (2.5, 2.5),
        ("3", 3.0),
        (np.float32(0.5), 0.5),
        (np.int64(4), 4.0),
        (float("nan"), None),
        (float("inf"), None),
        (-math.inf, None),
        (None, None),
        (True, None),
        ("abc", None),
        (object(), None),
    ],
)
def test_finite(value, expected):
    assert finite(value) == expected


def test_json_safe_gives_plain_json_that_serialises_strictly():
    value = {
        1: np.float64("nan"),
        "ints": np.array([1, 2], dtype=np.int32),
        "scalar": np.int64(3),
        "flag": np.bool_(True),
        "nested": ({"x": float("inf")}, {4}),
        "when": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "ts": pd.Timestamp("2026-01-02T03:04:05Z"),
        "missing": [pd.NA, pd.NaT, None],
        "other": Exception("boom"),
    }
    safe = json_safe(value)
    json.dumps(safe, allow_nan=False)  # raises if anything is left over
    assert safe["1"] is None
    assert safe["ints"] == [1, 2] and safe["scalar"] == 3 and safe["flag"] is True
    assert safe["nested"] == [{"x": None}, [4]]
    assert safe["when"] == "2026-01-02T03:04:00+00:00" and safe["day"] == "2026-01-02"
    assert safe["ts"].startswith("2026-01-02T03:04:05")
    assert safe["missing"] == [None, None, None]
    assert safe["other"] == "boom"


def test_json_safe_keeps_plain_values_as_they_are():
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": False}}
    assert json_safe(value) == value
