"""Drift statistics on known answers: scipy agrees, known shifts are flagged, noise is not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, false_discovery_control, ks_2samp, wasserstein_distance

from modelops.config import DriftSpec, ModelConfig
from modelops.data.baseline import profile_baseline
from modelops.drift.chi_square import chi_square_drift
from modelops.drift.detect import SCHEMA_VERSION, compare, drift_dataframe
from modelops.drift.jensen_shannon import jensen_shannon_distance, jensen_shannon_drift
from modelops.drift.multiple_testing import benjamini_hochberg
from modelops.drift.psi import psi
from modelops.drift.stattest import RESULT_KEYS
from modelops.drift.streaming import RESERVOIR_SIZE, UNSEEN_OTHER, StreamingProfile
from modelops.drift.wasserstein import bin_points, binned_wasserstein

SPEC = DriftSpec()
SMALL, LARGE = 600, 50_000  # reference rows either side of large_sample_rows (1,000)
FEATURES = ["amount", "wait", "calls", "plan", "region"]
PLANS, PLAN_P = ["basic", "plus", "premium"], [0.5, 0.3, 0.2]
REGIONS = [f"r{i}" for i in range(8)]


def make_config(problem: str = "regression") -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "toy",
            "problem_type": problem,
            "target": "y",
            "features": [
                {"name": "amount", "type": "numeric", "nullable": True},
                {"name": "wait", "type": "numeric"},
                {"name": "calls", "type": "numeric"},
                {"name": "plan", "type": "categorical"},
                {"name": "region", "type": "categorical"},
            ],
            "metrics": {"primary": "rmse" if problem == "regression" else "roc_auc"},
        }
    )


def make_frame(n: int, seed: int, *, shift: float = 0.0, plan_p: list[float] = PLAN_P) -> pd.DataFrame:
    """amount ~ N(100 + 15 * shift, 15), wait ~ Exp(2), calls in 0..4, plan 50/30/20, 8 regions."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(100 + 15 * shift, 15, n),
            "wait": rng.exponential(2.0, n),
            "calls": rng.integers(0, 5, n),
            "plan": rng.choice(PLANS, n, p=plan_p),
            "region": rng.choice(REGIONS, n),
            "y": rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return make_config()


@pytest.fixture(scope="module")
def frames() -> dict[int, pd.DataFrame]:
    return {SMALL: make_frame(SMALL, 0), LARGE: make_frame(LARGE, 0)}


@pytest.fixture(scope="module")
def baselines(frames, config) -> dict[int, dict]:
    return {n: profile_baseline(df, config) for n, df in frames.items()}


def without_fine_bins(baseline: dict) -> dict:
    """The baseline as written before fine bins existed (no ``fine_bins`` on numeric profiles)."""
    old = json.loads(json.dumps(baseline))
    for profile in [*old["features"].values(), old.get("predictions") or {}]:
        profile.pop("fine_bins", None)
    return old


def by_feature(report: dict) -> dict[str, dict]:
    return {r["feature"]: r for r in report["features"]}


# ---------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_identical_data_never_drifts(n, frames, baselines):
    report = drift_dataframe(baselines[n], frames[n], SPEC, chunk_rows=7_000)
    assert report["status"] == "ok" and report["regime"] == ("test" if n == SMALL else "distance")
    assert report["drifted_features"] == [] and report["dataset_drift"]["drifted"] is False
    for result in report["features"]:
        assert result["status"] == "ok" and not result["drifted"] and not result["psi_drifted"]
        assert result["effect_size"] == pytest.approx(0.0, abs=1e-12)
        assert result["psi"] == pytest.approx(0.0, abs=1e-12)
        if n == SMALL:
            assert result["p_value"] == pytest.approx(1.0)  # KS D = 0, chi-square = 0


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_a_fresh_sample_of_the_same_population_does_not_drift(n, baselines):
    report = drift_dataframe(baselines[n], make_frame(20_000, seed=1), SPEC)
    assert report["drifted_features"] == []
    assert report["dataset_drift"] == {
        "share": 0.0,
        "threshold": SPEC.dataset_drift_share,
        "drifted": False,
        "drifted_count": 0,
        "evaluated_count": 5,
    }


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_a_one_std_shift_is_flagged_on_that_feature_only(n, baselines):
    report = drift_dataframe(baselines[n], make_frame(20_000, seed=2, shift=1.0), SPEC)
    assert report["drifted_features"] == ["amount"]
    amount = report["features"][0]  # most severe first
    assert amount["feature"] == "amount" and amount["method"] == ("ks" if n == SMALL else "wasserstein")
    # Binned over ~12 bins with capped open ends: close to the true distance of 1 std, a bit under.
    assert 0.8 < amount["effect_size"] < 1.05
    assert amount["details"]["mean_shift_scaled"] == pytest.approx(1.0, abs=0.08)
    assert amount["psi_drifted"] is True
    if n == SMALL:
        assert amount["p_value_adjusted"] < 1e-10


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_a_new_category_at_twenty_percent_is_flagged(n, baselines):
    live = make_frame(20_000, seed=3)
    live.loc[live.sample(frac=0.2, random_state=0).index, "plan"] = "enterprise"
    report = drift_dataframe(baselines[n], live, SPEC)
    assert report["drifted_features"] == ["plan"]
    plan = by_feature(report)["plan"]
    assert plan["method"] == ("chi_square" if n == SMALL else "jensen_shannon")
    assert plan["details"]["unseen_share"] == pytest.approx(0.2)
    assert list(plan["details"]["unseen_categories"]) == ["enterprise"]
    assert plan["effect_size"] > 0.3 and plan["psi"] > 1.0  # the empty reference bin weighs heavily


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_a_category_frequency_swap_is_flagged(n, baselines):
    live = make_frame(20_000, seed=4, plan_p=[0.2, 0.3, 0.5])
    report = drift_dataframe(baselines[n], live, SPEC)
    assert report["drifted_features"] == ["plan"]
    plan = by_feature(report)["plan"]
    assert plan["details"]["unseen_share"] == 0.0
    reference, counts = baselines[n]["features"]["plan"]["counts"], live["plan"].value_counts()
    expected = jensenshannon([reference[k] for k in PLANS], [counts[k] for k in PLANS], base=2)
    assert plan["effect_size"] == pytest.approx(expected)
    assert expected == pytest.approx(0.31, abs=0.06)  # JS distance of 50/30/20 vs 20/30/50, up to noise
    assert {c["category"] for c in plan["details"]["largest_changes"][:2]} == {"basic", "premium"}


def test_a_trivial_shift_at_a_million_rows_is_not_drifted(config):
    """1% of a std at 1M live rows: any test would be significant; the distance stays small."""
    baseline = profile_baseline(make_frame(100_000, 5), config)
    report = drift_dataframe(baseline, make_frame(1_000_000, 6, shift=0.01), SPEC)
    assert report["regime"] == "distance" and report["drifted_features"] == []
    amount = by_feature(report)["amount"]
    assert amount["effect_size"] < 0.03 and amount["details"]["mean_shift_scaled"] == pytest.approx(0.01, abs=0.01)


def test_forced_tests_keep_the_effect_floor_at_large_samples(baselines):
    """A 2-point frequency change is significant at 200k rows, yet too small to call drift."""
    live = make_frame(200_000, seed=7, plan_p=[0.48, 0.32, 0.2])
    report = drift_dataframe(baselines[LARGE], live, SPEC, method="test")
    plan = by_feature(report)["plan"]
    assert plan["method"] == "chi_square" and plan["p_value_adjusted"] < 1e-6
    assert plan["effect_size"] < SPEC.jensen_shannon_threshold and not plan["drifted"]


# ---------------------------------------------------------------------------- agreement with scipy


def test_ks_statistic_and_p_value_match_scipy(baselines):
    live = make_frame(1_500, seed=8, shift=0.3)  # under the reservoir size: the sample is every value
    report = drift_dataframe(baselines[SMALL], live, SPEC, chunk_rows=400)
    expected = ks_2samp(baselines[SMALL]["features"]["amount"]["sample"], live["amount"].to_numpy())
    amount = by_feature(report)["amount"]
    assert amount["method"] == "ks"
    assert amount["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert amount["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_matches_scipy_and_handles_unseen_categories():
    reference = {"a": 120, "b": 60, "c": 20}
    current = {"a": 100, "b": 70, "c": 0, "new": 30}
    table = np.array([[120, 60, 20, 0], [100, 70, 0, 30]])
    expected = chi2_contingency(table, correction=False)
    result = chi_square_drift(reference, current, spec=SPEC)
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["effect_size"] == pytest.approx(jensenshannon([120, 60, 20, 0], [100, 70, 0, 30], base=2))
    assert result["drifted"] is True
    single = chi_square_drift({"a": 10}, {"a": 99}, spec=SPEC)
    assert single["p_value"] == 1.0 and single["drifted"] is False


def test_chi_square_in_compare_matches_scipy(baselines):
    live = make_frame(3_000, seed=9, plan_p=[0.4, 0.35, 0.25])
    plan = by_feature(drift_dataframe(baselines[SMALL], live, SPEC))["plan"]
    reference = baselines[SMALL]["features"]["plan"]["counts"]
    counts = live["plan"].value_counts()
    table = np.array([[reference[k] for k in reference], [counts[k] for k in reference]])
    assert plan["statistic"] == pytest.approx(chi2_contingency(table, correction=False).statistic)


@pytest.mark.parametrize(
    ("p", "q"),
    [([1, 2, 3], [3, 2, 1]), ([5, 0, 5], [0, 10, 0]), ([0.5, 0.5], [0.5, 0.5]), ([10, 3, 0, 1], [9, 4, 2, 0])],
)
def test_jensen_shannon_matches_scipy(p, q):
    assert jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


def test_jensen_shannon_in_compare_matches_scipy(baselines):
    live = make_frame(30_000, seed=10, plan_p=[0.3, 0.3, 0.4])
    plan = by_feature(drift_dataframe(baselines[LARGE], live, SPEC))["plan"]
    reference = baselines[LARGE]["features"]["plan"]["counts"]
    counts = live["plan"].value_counts()
    expected = jensenshannon([reference[k] for k in PLANS], [counts[k] for k in PLANS], base=2)
    assert plan["method"] == "jensen_shannon" and plan["statistic"] == pytest.approx(expected, abs=1e-12)
    direct = jensen_shannon_drift(reference, counts.to_dict(), spec=SPEC)
    assert direct["statistic"] == pytest.approx(expected, abs=1e-12)


def test_psi_matches_a_hand_computation():
    # (0.3-0.5)ln(0.3/0.5) + 0 + (0.4-0.2)ln(0.4/0.2)
    assert psi([50, 30, 20], [30, 30, 40]) == pytest.approx(0.2 * np.log(5 / 3) + 0.2 * np.log(2))
    assert psi([50, 30, 20], [30, 30, 40]) == pytest.approx(0.24079456, abs=1e-8)
    # An empty reference bin is floored at 1e-4: (0.2 - 1e-4) ln(0.2 / 1e-4) for the new bin.
    value = psi([50, 50, 0], [40, 40, 20])
    hand = 2 * (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.2 - 1e-4) * np.log(0.2 / 1e-4)
    assert value == pytest.approx(hand)
    assert psi([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(11)
    for p in [
        rng.uniform(size=40),
        np.r_[rng.uniform(0, 0.01, 5), rng.uniform(size=15)],
        np.array([0.01, 0.01, 0.04, 0.04, 0.5, 1.0]),  # ties
        np.array([0.0, 1.0]),
        np.array([0.03]),
    ]:
        assert benjamini_hochberg(p) == pytest.approx(false_discovery_control(p, method="bh").tolist(), abs=1e-15)
    assert benjamini_hochberg([]) == []
    with pytest.raises(ValueError, match="p-values"):
        benjamini_hochberg([0.1, float("nan")])


def test_binned_wasserstein_matches_scipy_on_bin_points():
    edges = [0.0, 1.0, 3.0, 4.0]
    ref, cur = [5, 10, 20, 10, 5], [1, 4, 20, 15, 10]
    points = bin_points(edges)
    assert points.tolist() == [-1.0, 0.5, 2.0, 3.5, 5.0]  # open ends: one neighbouring width out
    assert binned_wasserstein(edges, ref, cur) == pytest.approx(wasserstein_distance(points, points, ref, cur))
    # A discrete feature (edges halfway between values) gets its values back, thanks to min/max.
    assert bin_points([0.5, 1.5, 2.5, 3.5], 0.0, 4.0).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert bin_points([5.0], 2.0, 8.0).tolist() == [2.0, 8.0]


def test_a_one_unit_shift_of_a_discrete_feature_is_exact(frames, baselines):
    """calls 0..4 -> 1..5: the top bin's sum carries the values past the top edge, so W1 is exact."""
    live = make_frame(20_000, seed=12)
    live["calls"] = live["calls"] + 1
    calls = by_feature(drift_dataframe(baselines[LARGE], live, SPEC))["calls"]
    std = baselines[LARGE]["features"]["calls"]["std"]
    exact = wasserstein_distance(frames[LARGE]["calls"], live["calls"])
    assert exact == pytest.approx(1.0, abs=0.02)
    assert calls["drifted"] and calls["details"]["wasserstein"] == pytest.approx(exact, rel=1e-9)
    assert calls["effect_size"] == pytest.approx(exact / std, rel=1e-9)
    # A baseline written before the fine bins keeps its number: the top bin capped at the max (4).
    old = by_feature(drift_dataframe(without_fine_bins(baselines[LARGE]), live, SPEC))["calls"]
    assert old["drifted"] and old["details"]["wasserstein"] == pytest.approx(0.8, abs=0.02)
    assert old["details"]["wasserstein_bins"] == "bin_points"


# ---------------------------------------------------------------------------- streaming and edge cases


def test_state_does_not_grow_with_rows(baselines):
    small = StreamingProfile.from_baseline(baselines[LARGE])
    large = StreamingProfile.from_baseline(baselines[LARGE])
    small.update(make_frame(10_000, seed=13))
    chunk = make_frame(100_000, seed=14)
    for _ in range(10):
        large.update(chunk)
    assert large.rows == 1_000_000 and small.rows == 10_000
    assert large.state_size() == small.state_size()
    assert large.features["amount"].sample.size == small.features["amount"].sample.size == RESERVOIR_SIZE


def test_the_reservoir_is_deterministic_and_independent_of_chunking(baselines):
    live = make_frame(12_345, seed=15)
    samples = []
    for chunk_rows in (1_000, 4_321, 12_345):
        profile = StreamingProfile.from_baseline(baselines[LARGE])
        for start in range(0, len(live), chunk_rows):
            profile.update(live.iloc[start : start + chunk_rows])
        samples.append(profile.features["amount"].sample)
    assert all(np.array_equal(samples[0], s) for s in samples[1:])
    assert set(samples[0]) <= set(live["amount"])


def test_nulls_are_reported_and_left_out_of_the_tests(frames, baselines):
    live = frames[SMALL].copy()
    padded = pd.concat([live, pd.DataFrame({"amount": [np.nan] * 400, "plan": [None] * 400})], ignore_index=True)
    padded = padded.fillna({c: live[c].iloc[0] for c in ["wait", "calls", "region"]})
    report = drift_dataframe(baselines[SMALL], padded, SPEC)
    amount, plan = by_feature(report)["amount"], by_feature(report)["plan"]
    assert amount["current_null_fraction"] == pytest.approx(0.4) and plan["current_null_fraction"] == pytest.approx(0.4)
    assert amount["current_count"] == SMALL and amount["statistic"] == 0.0 and not amount["drifted"]
    assert plan["statistic"] == pytest.approx(0.0) and not plan["drifted"]


def test_non_numeric_values_are_counted_as_invalid(baselines):
    live = make_frame(1_000, seed=16)
    live["amount"] = live["amount"].astype(object)
    live.loc[:9, "amount"] = "oops"
    live.loc[10:14, "amount"] = np.inf
    amount = by_feature(drift_dataframe(baselines[LARGE], live, SPEC))["amount"]
    assert amount["current_invalid_count"] == 15 and amount["current_count"] == 985
    assert amount["current_null_fraction"] == 0.0


@pytest.mark.parametrize("empty", [pd.DataFrame(), make_frame(0, seed=0)])
def test_empty_live_data_gives_a_no_data_result(empty, baselines):
    report = drift_dataframe(baselines[LARGE], empty, SPEC)
    json.dumps(report, allow_nan=False)
    assert report["status"] == "no_data" and "no live rows" in report["message"]
    assert report["current_rows"] == 0 and report["drifted_features"] == []
    assert report["dataset_drift"]["share"] is None and report["dataset_drift"]["drifted"] is False
    assert {r["status"] for r in report["features"]} == {"no_data"}
    never_fed = compare(baselines[LARGE], StreamingProfile.from_baseline(baselines[LARGE]), SPEC)
    assert never_fed["status"] == "no_data"


def test_an_all_null_feature_is_no_data_not_drift(baselines):
    live = make_frame(2_000, seed=17)
    live["amount"] = np.nan
    report = drift_dataframe(baselines[LARGE], live, SPEC)
    amount = by_feature(report)["amount"]
    assert amount["status"] == "no_data" and amount["current_null_fraction"] == 1.0 and not amount["drifted"]
    assert report["status"] == "ok" and report["dataset_drift"]["evaluated_count"] == 4


def test_report_is_json_safe_with_a_stable_schema_sorted_by_severity(baselines):
    report = drift_dataframe(baselines[SMALL], make_frame(5_000, seed=18, shift=0.5), SPEC)
    json.dumps(report, allow_nan=False)
    assert report["schema_version"] == SCHEMA_VERSION and report["model"] == "toy"
    assert set(report) == {
        "schema_version",
        "status",
        "message",
        "model",
        "baseline_schema_version",
        "regime",
        "reference_rows",
        "current_rows",
        "settings",
        "dataset_drift",
        "drifted_features",
        "features",
        "prediction_drift",
    }
    assert report["reference_rows"] == SMALL and report["current_rows"] == 5_000
    assert all(tuple(r) == RESULT_KEYS for r in report["features"])
    assert sorted(r["feature"] for r in report["features"]) == sorted(FEATURES)
    severities = [r["severity"] for r in report["features"] if not r["drifted"]]
    assert severities == sorted(severities, reverse=True)
    assert report["features"][0]["feature"] == "amount" and report["prediction_drift"] is None


def test_prediction_drift_is_judged_when_predictions_are_profiled(config, frames):
    train = frames[LARGE]
    baseline = profile_baseline(train, config, predictions=train["amount"].to_numpy() / 100)
    same = make_frame(20_000, seed=19).assign(prediction=lambda d: d["amount"] / 100)
    shifted = same.assign(prediction=lambda d: d["prediction"] * 1.3)
    assert drift_dataframe(baseline, same, SPEC)["prediction_drift"]["drifted"] is False
    report = drift_dataframe(baseline, shifted, SPEC)
    assert report["drifted_features"] == []
    assert report["prediction_drift"]["feature"] == "prediction" and report["prediction_drift"]["drifted"] is True
    without = drift_dataframe(baseline, same.drop(columns="prediction"), SPEC)
    assert without["prediction_drift"]["status"] == "no_data"


def test_class_label_predictions_match_across_int_and_float_spellings(frames):
    """A label column that became float (one NaN in a chunk) must not look like new classes."""
    train = frames[SMALL]
    baseline = profile_baseline(train, make_config("binary_classification"), predictions=train["calls"].to_numpy() % 2)
    live = make_frame(3_000, seed=20)
    live["prediction"] = (live["calls"] % 2).astype(float)
    live.loc[0, "prediction"] = np.nan
    prediction = drift_dataframe(baseline, live, SPEC)["prediction_drift"]
    assert prediction["kind"] == "categorical" and prediction["details"]["unseen_share"] == 0.0
    assert not prediction["drifted"]


def test_unseen_categories_are_bounded(config, frames):
    baseline = profile_baseline(frames[SMALL], config)
    live = make_frame(5_000, seed=21)
    live["region"] = [f"id{i}" for i in range(len(live))]
    profile = StreamingProfile.from_baseline(baseline).update(live)
    region = profile.features["region"]
    assert len(region.unseen) == 50 and region.counts[UNSEEN_OTHER] == 4_950
    result = by_feature(compare(baseline, profile, SPEC))["region"]
    assert result["drifted"] and result["details"]["unseen_share"] == 1.0


def test_tail_categories_seen_in_training_are_not_new(config):
    """60 regions: the baseline lists the top 50; the other 10 must map to __other__, not 'unseen'."""
    rng = np.random.default_rng(22)
    df = make_frame(6_000, seed=22).assign(region=lambda d: [f"z{i:02d}" for i in rng.integers(0, 60, len(d))])
    baseline = profile_baseline(df, config)
    region = by_feature(drift_dataframe(baseline, df, SPEC))["region"]
    assert region["details"]["unseen_share"] == 0.0 and region["effect_size"] == pytest.approx(0.0, abs=1e-12)


def test_missing_feature_columns_are_named(baselines):
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['plan'\]"):
        drift_dataframe(baselines[SMALL], make_frame(10, seed=0).drop(columns="plan"), SPEC)
