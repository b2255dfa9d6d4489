"""Baseline profile of known data, its constraints, and the GX suite built from them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelops.config import ModelConfig
from modelops.data.baseline import (
    OTHER,
    SCHEMA_VERSION,
    TOP_CATEGORIES,
    constraints_to_gx_suite,
    histogram,
    profile_baseline,
)


def make_config(problem: str = "binary_classification") -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "toy",
            "problem_type": problem,
            "target": "y",
            "features": [
                {"name": "amount", "type": "numeric", "nullable": True},
                {"name": "calls", "type": "numeric"},
                {"name": "region", "type": "categorical"},
                {"name": "plan", "type": "categorical", "nullable": True},
            ],
            "metrics": {"primary": "roc_auc" if problem != "regression" else "rmse"},
        }
    )


def known_frame() -> pd.DataFrame:
    """125 rows: amount = 0..99 then 25 NaN; calls cycles 0..4; 60 regions; plan with 10% missing."""
    n = 125
    amount = np.r_[np.arange(100.0), np.full(25, np.nan)]
    return pd.DataFrame(
        {
            "amount": amount,
            "calls": np.arange(n) % 5,
            "region": [f"r{i % 60:02d}" for i in range(n)],
            "plan": [None if i % 10 == 0 else ("basic" if i % 3 else "premium") for i in range(n)],
            "y": (np.arange(n) % 4 == 0).astype(int),
            "not_a_feature": "ignored",
        }
    )


@pytest.fixture(scope="module")
def profile() -> dict:
    return profile_baseline(known_frame(), make_config())


def test_profile_is_json_safe_with_a_stable_schema(profile):
    json.dumps(profile, allow_nan=False)
    assert profile["schema_version"] == SCHEMA_VERSION
    assert set(profile) == {"schema_version", "model", "row_count", "features", "target", "predictions", "constraints"}
    assert profile["row_count"] == 125 and profile["model"] == "toy"
    assert list(profile["features"]) == ["amount", "calls", "region", "plan"]  # config order, features only
    assert set(profile["features"]["amount"]) == {
        "kind",
        "dtype",
        "count",
        "null_fraction",
        "min",
        "max",
        "mean",
        "std",
        "quantiles",
        "bins",
        "fine_bins",
        "sample",
    }
    assert set(profile["features"]["region"]) == {
        "kind",
        "dtype",
        "count",
        "null_fraction",
        "cardinality",
        "counts",
        "frequencies",
    }
    assert profile["predictions"] is None


def test_numeric_statistics_of_known_data(profile):
    amount = profile["features"]["amount"]
    assert amount["kind"] == "numeric" and amount["dtype"] == "float64"
    assert amount["count"] == 100 and amount["null_fraction"] == pytest.approx(0.2)
    assert amount["min"] == 0.0 and amount["max"] == 99.0 and amount["mean"] == pytest.approx(49.5)
    assert amount["std"] == pytest.approx(np.std(np.arange(100.0), ddof=1))
    assert amount["quantiles"] == pytest.approx(
        {"p1": 0.99, "p5": 4.95, "p25": 24.75, "p50": 49.5, "p75": 74.25, "p95": 94.05, "p99": 98.01}
    )
    edges, counts = amount["bins"]["edges"], amount["bins"]["counts"]
    assert len(edges) == 11 and len(counts) == 12 and sum(counts) == 100
    assert edges == sorted(edges) and edges[0] == pytest.approx(4.95) and edges[-1] == pytest.approx(94.05)
    assert amount["sample"] == list(np.arange(100.0))  # under 1,000 values: all of them


def test_discrete_numeric_feature_gets_one_bin_per_value(profile):
    calls = profile["features"]["calls"]
    assert calls["bins"]["edges"] == [0.5, 1.5, 2.5, 3.5]
    assert calls["bins"]["counts"] == [25, 25, 25, 25, 25]
    # One value per bin already: the fine bins are the same, with each value's total.
    assert calls["fine_bins"] == {
        "edges": [0.5, 1.5, 2.5, 3.5],
        "counts": [25] * 5,
        "sums": [0.0, 25.0, 50.0, 75.0, 100.0],
    }


def test_fine_bins_refine_the_bins_and_sum_each_bin(profile):
    """Every coarse edge is a fine edge (live data is binned once), and each bin keeps its values' sum."""
    amount = profile["features"]["amount"]
    fine, edges = amount["fine_bins"], amount["bins"]["edges"]
    assert set(edges) <= set(fine["edges"]) and fine["edges"] == sorted(fine["edges"])
    assert len(fine["edges"]) == 39 and len(fine["counts"]) == len(fine["sums"]) == 40
    values = np.arange(100.0)  # amount's non-null values
    assert fine["counts"] == histogram(values, fine["edges"])
    index = np.searchsorted(fine["edges"], values, side="right")
    assert fine["sums"] == pytest.approx([values[index == i].sum() for i in range(40)])
    assert sum(fine["sums"]) == pytest.approx(values.sum())


def test_histogram_has_open_ends():
    assert histogram([-100.0, 0.0, 0.5, 1.0, 1.5, 2.0, 999.0, np.nan], [0.0, 1.0, 2.0]) == [1, 2, 2, 2]


def test_sample_is_bounded_and_deterministic():
    config = make_config("regression")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "amount": rng.normal(size=5000),
            "calls": rng.integers(0, 50, 5000),
            "region": "north",
            "plan": "basic",
            "y": rng.normal(size=5000),
        }
    )
    first = profile_baseline(df, config)["features"]["amount"]["sample"]
    again = profile_baseline(df, config)["features"]["amount"]["sample"]
    assert len(first) == 1000 and first == again and first == sorted(first)
    assert set(first) <= set(df["amount"])
    target = profile_baseline(df, config)["target"]
    assert target["kind"] == "numeric" and target["count"] == 5000


def test_categorical_statistics_of_known_data(profile):
    region = profile["features"]["region"]
    assert region["kind"] == "categorical" and region["cardinality"] == 60 and region["null_fraction"] == 0.0
    assert len(region["counts"]) == TOP_CATEGORIES + 1 and OTHER in region["counts"]
    assert sum(region["counts"].values()) == 125
    assert sum(region["frequencies"].values()) == pytest.approx(1.0)
    assert list(region["counts"])[:5] == ["r00", "r01", "r02", "r03", "r04"]  # 3 rows each, ties by value
    plan = profile["features"]["plan"]
    assert plan["null_fraction"] == pytest.approx(13 / 125)
    assert set(plan["counts"]) == {"basic", "premium"}


def test_target_and_prediction_distributions():
    config, df = make_config(), known_frame()
    labels = profile_baseline(df, config, predictions=df["y"].to_numpy()[::-1])
    assert labels["target"]["kind"] == "categorical"
    assert labels["target"]["frequencies"] == pytest.approx({"0": 93 / 125, "1": 32 / 125})
    assert labels["predictions"]["kind"] == "categorical"
    scores = profile_baseline(df, config, predictions=np.linspace(0.01, 0.99, len(df)))
    assert scores["predictions"]["kind"] == "numeric" and scores["predictions"]["max"] == pytest.approx(0.99)
    with pytest.raises(ValueError, match="predictions"):
        profile_baseline(df, config, predictions=[0, 1])


def test_constraints_from_the_profile(profile):
    constraints = profile["constraints"]
    assert constraints["columns"] == ["amount", "calls", "region", "plan"]
    amount, calls = constraints["features"]["amount"], constraints["features"]["calls"]
    assert amount["max_null_fraction"] == pytest.approx(0.25)  # observed 0.2 + margin 0.05
    assert calls["max_null_fraction"] == 0.0  # declared non-nullable and never null
    iqr = 74.25 - 24.75
    assert amount["min"] == pytest.approx(0 - 0.5 * iqr) and amount["max"] == pytest.approx(99 + 0.5 * iqr)
    region = constraints["features"]["region"]
    assert region["allowed_values"] == sorted(f"r{i:02d}" for i in range(60))  # all, not only the top 50
    assert constraints["features"]["plan"]["allowed_values"] == ["basic", "premium"]
    assert constraints["features"]["plan"]["max_null_fraction"] == pytest.approx(13 / 125 + 0.05)


def test_missing_feature_columns_are_named():
    with pytest.raises(ValueError, match="region"):
        profile_baseline(known_frame().drop(columns="region"), make_config())


def test_gx_suite_dict_from_constraints(profile):
    suite = constraints_to_gx_suite(profile["constraints"], "toy_monitoring")
    json.dumps(suite, allow_nan=False)
    assert suite["name"] == "toy_monitoring"
    by_type: dict[str, list[dict]] = {}
    for expectation in suite["expectations"]:
        assert set(expectation) == {"type", "kwargs", "meta"}
        by_type.setdefault(expectation["type"], []).append(expectation["kwargs"])
    assert by_type["expect_table_columns_to_match_set"] == [
        {"column_set": ["amount", "calls", "region", "plan"], "exact_match": False}
    ]
    not_null = {k["column"]: k["mostly"] for k in by_type["expect_column_values_to_not_be_null"]}
    assert not_null == pytest.approx({"amount": 0.75, "calls": 1.0, "region": 1.0, "plan": 1 - (13 / 125 + 0.05)})
    between = {k["column"]: k for k in by_type["expect_column_values_to_be_between"]}
    assert set(between) == {"amount", "calls"} and between["amount"]["mostly"] == 0.99
    in_set = {k["column"]: k for k in by_type["expect_column_values_to_be_in_set"]}
    assert in_set["plan"]["value_set"] == ["basic", "premium"] and in_set["plan"]["mostly"] == 0.99


def test_gx_loads_the_suite_and_it_catches_drifted_data(profile):
    """The dict is a real GX 1.x suite: it loads whole and fails data outside the constraints."""
    gx = pytest.importorskip("great_expectations")
    suite_dict = constraints_to_gx_suite(profile["constraints"], "toy_monitoring")
    suite = gx.ExpectationSuite(**suite_dict)
    assert len(suite.expectations) == len(suite_dict["expectations"])  # GX drops invalid ones silently

    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_pandas("pandas")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all")
    )
    baseline_rows = known_frame()
    assert batch_definition.get_batch(batch_parameters={"dataframe": baseline_rows}).validate(suite).success

    drifted = baseline_rows.copy()
    drifted["amount"] = 1_000.0
    drifted["region"] = "mars"
    result = batch_definition.get_batch(batch_parameters={"dataframe": drifted}).validate(suite)
    failed = {
        (r.expectation_config.type, r.expectation_config.kwargs.get("column")) for r in result.results if not r.success
    }
    assert failed == {("expect_column_values_to_be_between", "amount"), ("expect_column_values_to_be_in_set", "region")}
