"""The train/test split: latest rows held out, cut timestamps kept together, seeded random fallback."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.unit.training.training_helpers import make_config, make_frame

from modelops.training.time_split import time_split

# -- split ---------------------------------------------------------------------------------------


def test_time_split_holds_out_the_latest_rows_deterministically(cls_data):
    config, df = cls_data
    train, test = time_split(df, config)
    assert len(train) + len(test) == len(df)
    assert len(test) == pytest.approx(0.2 * len(df), abs=2)
    assert train["ts"].max() < test["ts"].min()
    assert train["ts"].is_monotonic_increasing and test["ts"].is_monotonic_increasing
    again_train, again_test = time_split(df.sample(frac=1.0, random_state=1), config)
    pd.testing.assert_frame_equal(train, again_train)
    pd.testing.assert_frame_equal(test, again_test)


def test_time_split_keeps_rows_of_the_cut_timestamp_together():
    config = make_config()
    df = pd.DataFrame({"ts": ["2026-01-01"] * 6 + ["2026-01-02"] * 4, "y": [0, 1] * 5})
    train, test = time_split(df, config)  # the 80% cut falls inside the last day: it all goes to test
    assert set(train["ts"]) == {"2026-01-01"} and set(test["ts"]) == {"2026-01-02"}
    df = pd.DataFrame({"ts": ["2026-01-01"] * 4 + ["2026-01-02"] * 4 + ["2026-01-03"] * 2, "y": [0, 1] * 5})
    train, test = time_split(df, config)  # the cut falls inside the middle day: it stays in train
    assert set(train["ts"]) == {"2026-01-01", "2026-01-02"} and set(test["ts"]) == {"2026-01-03"}


def test_random_split_without_time_column_is_seeded_and_stratified():
    config = make_config(data={})
    df = make_frame(n=500).drop(columns="ts")
    train, test = time_split(df, config)
    again_train, _ = time_split(df, config)
    pd.testing.assert_frame_equal(train, again_train)
    assert len(test) == 100
    assert test["y"].mean() == pytest.approx(df["y"].mean(), abs=0.01)
    other_train, _ = time_split(df, make_config(data={}, training={"random_seed": 8}))
    assert not train.equals(other_train)


def test_time_split_refuses_unparseable_timestamps(cls_data):
    config, df = cls_data
    bad = df.astype({"ts": object})
    bad.loc[3, "ts"] = "not a date"
    with pytest.raises(ValueError, match="'ts'"):
        time_split(bad, config)
