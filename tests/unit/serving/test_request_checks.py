"""Request checks on plain values: the fast column path agrees with the row-by-row path that words the 422.

No app, no registry: the config and records are the endpoint tests' own (``serving_helpers``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.unit.serving.serving_helpers import CONFIGS, record

from modelops.config import ModelConfig


def test_fast_path_reads_records_exactly_as_the_checked_path():
    """The fast path (columns straight from the parsed JSON) and validate_records + build_frame
    agree on every kind of valid value: ints for floats, nulls, omitted nullable features,
    numeric category codes, pass-through columns."""
    from modelops.serving.columns import InputSpec, columns_of_rows, fast_columns, frame_of_columns, kind_problems
    from modelops.serving.problems import RequestInvalid
    from modelops.serving.validation import build_frame, validate_records

    config = CONFIGS["toy"]
    spec = InputSpec.of(config)
    records = [
        record(0),
        {"x0": 3, "x1": None, "segment": "low", "region": None},
        {"x0": -1.5, "segment": 7},  # nullable features omitted, a numeric category code
        record(2, region=2, row_id=17, event_time="2026-11-25T10:00:00Z"),
        record(3, segment=True, row_id="r-3"),
    ]
    fast = fast_columns(spec, records)
    assert fast is not None
    slow = columns_of_rows(spec, validate_records(config, records))
    for name in fast.numeric:
        np.testing.assert_array_equal(fast.numeric[name], slow.numeric[name])
    assert fast.categorical == slow.categorical and fast.passthrough == slow.passthrough
    rows = validate_records(config, records)
    with pytest.raises(RequestInvalid) as refused:  # strings for a category learned as numbers
        build_frame(config, rows, {"region": "number"})
    assert len(refused.value.problems) == 2
    assert kind_problems(config, fast, {"region": "number"}, ("body", "records")) == refused.value.problems
    for kinds in ({"segment": "string", "region": "string"}, {"segment": "string"}, {}):
        frame, captured = frame_of_columns(config, kinds, [fast])
        pd.testing.assert_frame_equal(frame, build_frame(config, rows, kinds))
        assert captured["segment"] == ["low", "low", "7", "low", "True"]
        assert captured["region"] == ["2", None, None, "2", "2"]
        assert captured["row_id"] == [None, None, None, "17", "r-3"]
    # Split into two requests, the frame is the same.
    parts = [fast_columns(spec, records[:2]), fast_columns(spec, records[2:])]
    pd.testing.assert_frame_equal(frame_of_columns(config, {}, parts)[0], build_frame(config, rows, {}))
    # Anything unusual goes to the checked path, which names the problem.
    for bad in ({"x0": float("inf"), "segment": "a"}, {"x0": 1.0, "segment": float("nan")}, {"segment": "a"}):
        assert fast_columns(spec, [record(0), bad]) is None


def test_categories_learned_as_true_false_refuse_text_with_a_message_that_says_so():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    from modelops.serving.champion import categorical_kinds
    from modelops.serving.problems import RequestInvalid
    from modelops.serving.validation import build_frame

    frame = pd.DataFrame({"b": [True, False, True], "n": [1, 2, 3], "s": ["a", "b", "a"]})
    encoder = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["b", "n", "s"])]).fit(frame)
    kinds = categorical_kinds(encoder)
    assert kinds == {"b": "boolean", "n": "number", "s": "string"}
    config = ModelConfig.model_validate(
        {"name": "flags", "problem_type": "binary_classification", "target": "y", "metrics": {"primary": "roc_auc"},
         "features": [{"name": c, "type": "categorical"} for c in ("b", "n", "s")]}
    )  # fmt: skip
    built = build_frame(config, [{"b": True, "n": 2, "s": 1}], kinds, ("body", "records"))
    assert built["b"].tolist() == [True] and built["s"].tolist() == ["1"]
    with pytest.raises(RequestInvalid) as refused:
        build_frame(config, [{"b": "True", "n": "2", "s": "a"}], kinds, ("body", "records"))
    messages = [p["msg"] for p in refused.value.problems]
    assert messages == [
        "'b' was learned from true/false values: send true or false, got str 'True'",
        "'n' was learned from numeric categories: send a number, got str '2'",
    ]
