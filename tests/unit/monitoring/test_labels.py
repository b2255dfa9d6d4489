"""The compact label join: key hashes instead of strings, probabilities as matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.monitoring.labels import LabelledRows, LabelLookup, key_hashes, probability_matrix


def _served(ids, indexes, **extra):
    return pd.DataFrame({"request_id": ids, "record_index": np.asarray(indexes, dtype="int32"), **extra})


def _labels(ids, indexes, values):
    k1, k2 = key_hashes(pd.DataFrame({"request_id": ids, "record_index": indexes}))
    return pd.DataFrame({"_k1": k1, "_k2": k2, "label": values})


def test_the_join_matches_on_both_keys_and_keeps_the_served_order():
    lookup = LabelLookup(_labels(["a", "a", "b"], [0, 1, 0], ["1", "0", "1"]))
    served = _served(["b", "a", "a", "c", "a"], [0, 1, 0, 0, 2], prediction=["1", "1", "0", "0", "1"])
    joined = lookup.join(served)
    assert list(zip(joined["request_id"], joined["record_index"], joined["label"], strict=True)) == [
        ("b", 0, "1"),
        ("a", 1, "0"),
        ("a", 0, "1"),
    ]


def test_record_index_types_do_not_change_the_key():
    int64 = key_hashes(pd.DataFrame({"request_id": ["r"], "record_index": np.array([3], dtype="int64")}))
    int32 = key_hashes(pd.DataFrame({"request_id": ["r"], "record_index": np.array([3], dtype="int32")}))
    assert int64[0][0] == int32[0][0] and int64[1][0] == int32[1][0]
    assert int64[0][0] != int64[1][0]  # two independent hashes


def test_a_first_hash_collision_is_resolved_by_the_second():
    labels = _labels(["a", "b"], [0, 0], ["yes", "no"])
    labels["_k1"] = labels["_k1"].iloc[0]  # force both keys onto one first hash
    lookup = LabelLookup(labels)
    served = _served(["a", "b"], [0, 0])
    served_k1 = key_hashes(served)[0]
    assert served_k1[0] == labels["_k1"].iloc[0]  # "a" really has that first hash
    joined = lookup.join(served.iloc[:1])
    assert joined["label"].tolist() == ["yes"]


def test_a_second_hash_mismatch_is_not_a_match():
    labels = _labels(["a"], [0], ["yes"])
    labels["_k2"] = labels["_k2"] + np.uint64(1)
    assert len(LabelLookup(labels).join(_served(["a"], [0]))) == 0


def test_labelled_rows_hold_probabilities_as_one_matrix_and_give_the_frame_back():
    rows = LabelledRows()
    rows.add(
        _served(["a", "b"], [0, 1], prediction=["1", "0"], label=["1", "1"], probabilities=[[0.2, 0.8], [0.9, 0.1]])
    )
    rows.add(_served(["c"], [0], prediction=["1"], label=["0"], probabilities=[[0.4, 0.6]]))
    rows.add(_served([], [], prediction=[], label=[], probabilities=[]))
    assert len(rows) == 3
    predictions, labels, probabilities = rows.arrays()
    assert predictions.tolist() == ["1", "0", "1"] and labels.tolist() == ["1", "1", "0"]
    np.testing.assert_array_equal(probabilities, [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]])
    frame = rows.frame()
    assert frame["request_id"].tolist() == ["a", "b", "c"] and frame["record_index"].tolist() == [0, 1, 0]
    assert [list(p) for p in frame["probabilities"]] == [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]


@pytest.mark.parametrize(
    "second",
    [[None], [[0.1, 0.2, 0.7]], [[float("nan"), 1.0]]],
    ids=["a row without probabilities", "another width", "not finite"],
)
def test_probabilities_are_dropped_whole_when_any_row_cannot_be_used(second):
    rows = LabelledRows()
    rows.add(_served(["a"], [0], prediction=["1"], label=["1"], probabilities=[[0.3, 0.7]]))
    rows.add(_served(["b"], [0], prediction=["1"], label=["1"], probabilities=second))
    assert rows.arrays()[2] is None


def test_probability_matrix_checks_the_width_it_is_asked_for():
    column = pd.Series([[0.3, 0.7], [0.5, 0.5]])
    assert probability_matrix(column).shape == (2, 2)
    assert probability_matrix(column, 3) is None
    assert probability_matrix(pd.Series([[1.0], [1.0]])) is None  # one class is not a probability row
