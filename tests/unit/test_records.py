"""records: a task-boundary record and its JSON form survive the trip through XCom."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from modelops.records import Record, RecordError


@dataclass(frozen=True)
class Example(Record):
    uri: str
    rows: int = 0
    metrics: dict = field(default_factory=dict)


def test_round_trip_through_json():
    record = Example("s3://b/k", 3, {"auc": np.float64(0.5), "bad": float("nan")})
    wire = json.loads(json.dumps(record.to_json(), allow_nan=False))
    assert wire == {"uri": "s3://b/k", "rows": 3, "metrics": {"auc": 0.5, "bad": None}}
    assert Example.from_json(wire) == Example("s3://b/k", 3, {"auc": 0.5, "bad": None})


def test_from_json_accepts_the_record_itself_and_ignores_unknown_keys():
    record = Example("u")
    assert Example.from_json(record) is record
    assert Example.from_json({"uri": "u", "added_later": 1}) == Example("u")


def test_a_missing_field_or_a_non_mapping_is_named():
    with pytest.raises(RecordError, match="Example: missing uri"):
        Example.from_json({"rows": 1})
    with pytest.raises(RecordError, match="expected a mapping, got list"):
        Example.from_json([1, 2])
