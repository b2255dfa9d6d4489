"""Candidate pipelines, search, training rules, selection and the split, on tiny in-test data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression

from modelops.config import ModelConfig
from modelops.training.candidate import train_candidate
from modelops.training.pipelines import build_pipeline
from modelops.training.rules import (
    TrainingRules,
    check_convergence,
    check_cv_stability,
    check_degenerate_predictions,
    check_overfitting,
)
from modelops.training.search_spaces import RELATIVE_COST, SEARCH_SPACES, skops_trusted_types
from modelops.training.selection import NoViableCandidate, select_best
from modelops.training.time_split import time_split

FEATURES = [
    {"name": "x0", "type": "numeric"},
    {"name": "x1", "type": "numeric", "nullable": True},
    {"name": "x2", "type": "numeric"},
    {"name": "segment", "type": "categorical", "nullable": True},
]


def make_config(problem: str = "binary_classification", **overrides) -> ModelConfig:
    primary, secondary = (
        ("roc_auc", ["f1", "accuracy", "log_loss"]) if problem != "regression" else ("rmse", ["mae", "r2", "mape"])
    )
    raw = {
        "name": "toy",
        "problem_type": problem,
        "target": "y",
        "features": FEATURES,
        "data": {"timestamp_column": "ts"},
        "training": {"cv_folds": 3, "random_seed": 7},
        "metrics": {"primary": primary, "secondary": secondary},
        "gate": {"slice_column": "segment"},
    }
    raw.update(overrides)
    return ModelConfig.model_validate(raw)


def make_frame(problem: str = "binary_classification", n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three numeric features (one with NaNs), a categorical one (with NaNs) that carries signal."""
    rng = np.random.default_rng(seed)
    if problem == "regression":
        X, y = make_regression(n_samples=n, n_features=3, n_informative=3, noise=10.0, random_state=seed)
        y = y + 200.0  # positive, so mape is defined
    else:
        X, y = make_classification(n_samples=n, n_features=3, n_informative=2, n_redundant=0, random_state=seed)
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    df["segment"] = np.where(df["x0"] > 0.5, "high", np.where(df["x0"] < -0.5, "low", "mid"))
    df.loc[rng.random(n) < 0.05, "x1"] = np.nan
    df.loc[rng.random(n) < 0.05, "segment"] = None
    df["y"] = y
    df["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), unit="h")
    return df


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """HistGradientBoosting's OpenMP threads cost more than they save on a few hundred rows."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def cls_data() -> tuple[ModelConfig, pd.DataFrame]:
    return make_config(), make_frame()


@pytest.fixture(scope="module")
def reg_data() -> tuple[ModelConfig, pd.DataFrame]:
    return make_config("regression"), make_frame("regression")


# -- pipelines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
@pytest.mark.parametrize("candidate", sorted(SEARCH_SPACES))
def test_pipeline_fits_and_survives_unseen_categories_and_nans(problem, candidate):
    config, df = make_config(problem), make_frame(problem, n=120)
    pipeline = build_pipeline(config, candidate, SEARCH_SPACES[candidate][0])
    pipeline.fit(df[config.feature_names], df["y"])
    serving = pd.DataFrame(
        {"x0": [0.1, np.nan], "x1": [np.nan, 2.0], "x2": [1.0, 0.0], "segment": ["never-seen", None]}
    )
    assert len(pipeline.predict(serving)) == 2
    estimator = pipeline.named_steps["model"]
    expected = {
        ("linear", True): "LogisticRegression",
        ("linear", False): "Ridge",
        ("random_forest", True): "RandomForestClassifier",
        ("random_forest", False): "RandomForestRegressor",
        ("hist_gradient_boosting", True): "HistGradientBoostingClassifier",
        ("hist_gradient_boosting", False): "HistGradientBoostingRegressor",
    }[(candidate, config.is_classifier)]
    assert type(estimator).__name__ == expected
    numeric_steps = pipeline.named_steps["preprocess"].named_transformers_["numeric"].named_steps
    assert ("scale" in numeric_steps) == (candidate == "linear")


@pytest.mark.parametrize(
    "codes",
    [
        pd.Series(["a", "b", None, "a"] * 10),
        pd.Series(["a", "b", None, "a"] * 10, dtype=object),
        pd.Series([1, 2, 3, 1] * 10),
        pd.Series([1.0, 2.0, np.nan, 1.0] * 10),
        pd.Series([True, False, True, True] * 10),
    ],
    ids=["str", "object", "int", "float-with-nan", "bool"],
)
def test_categorical_columns_of_any_coding_are_encoded(codes):
    config = make_config()
    df = make_frame(n=40)
    df["segment"] = codes
    pipeline = build_pipeline(config, "linear").fit(df[config.feature_names], df["y"])
    assert len(pipeline.predict(df[config.feature_names])) == 40


def test_pipeline_parameters_are_translated_and_bounded():
    ridge = build_pipeline(make_config("regression"), "linear", {"C": 4.0}).named_steps["model"]
    assert ridge.alpha == pytest.approx(0.25)
    forest = build_pipeline(make_config(), "random_forest").named_steps["model"]
    assert forest.n_jobs == 1 and forest.max_depth is not None
    with pytest.raises(ValueError, match="n_estimators"):
        build_pipeline(make_config(), "random_forest", {"n_estimators": 100_000})
    with pytest.raises(ValueError, match="unknown candidate"):
        build_pipeline(make_config(), "xgboost")
    with pytest.raises(ValueError, match="invalid parameters"):
        build_pipeline(make_config(), "linear", {"not_a_param": 1})


def test_search_spaces_are_small_and_costs_ordered():
    assert set(SEARCH_SPACES) == {"linear", "random_forest", "hist_gradient_boosting"}
    assert all(2 <= len(space) <= 4 for space in SEARCH_SPACES.values())
    assert RELATIVE_COST["linear"] < RELATIVE_COST["hist_gradient_boosting"] < RELATIVE_COST["random_forest"]


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
@pytest.mark.parametrize("candidate", sorted(SEARCH_SPACES))
def test_skops_trusted_types_are_exactly_what_skops_needs(problem, candidate):
    """The list passed to mlflow.sklearn.log_model is proven on each fitted pipeline, not guessed."""
    import skops.io

    config, df = make_config(problem), make_frame(problem, n=120)
    pipeline = build_pipeline(config, candidate, SEARCH_SPACES[candidate][-1]).fit(df[config.feature_names], df["y"])
    data = skops.io.dumps(pipeline)
    assert sorted(skops.io.get_untrusted_types(data=data)) == sorted(skops_trusted_types(candidate, problem))
    loaded = skops.io.loads(data, trusted=skops_trusted_types(candidate))
    np.testing.assert_array_equal(loaded.predict(df[config.feature_names]), pipeline.predict(df[config.feature_names]))


@pytest.mark.parametrize("candidate", sorted(SEARCH_SPACES))
def test_mlflow_saves_and_loads_each_candidate_with_exactly_these_types(candidate, tmp_path):
    """The same proof through MLflow's own dump-then-load check (a local save, no tracking server)."""
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    config, df = make_config(), make_frame(n=120)
    pipeline = build_pipeline(config, candidate, SEARCH_SPACES[candidate][0]).fit(df[config.feature_names], df["y"])
    path = str(tmp_path / "model")
    mlflow_sklearn.save_model(
        pipeline,
        path,
        serialization_format="skops",
        skops_trusted_types=skops_trusted_types(candidate),
        pip_requirements=["scikit-learn", "skops"],  # skip requirement inference: slow and beside the point
    )
    loaded = mlflow_sklearn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(df[config.feature_names]), pipeline.predict(df[config.feature_names]))


# -- training one candidate --------------------------------------------------------------------


def test_train_candidate_classification_reports_natural_signs(cls_data):
    config, df = cls_data
    result = train_candidate(config, "linear", df[config.feature_names], df["y"])
    out = result.to_dict()
    json.dumps(out, allow_nan=False)
    assert "model" not in out and result.model is not None
    assert out["passed"] is True and out["failure_reasons"] == []
    assert out["params"] in SEARCH_SPACES["linear"]
    assert len(out["search"]) == len(SEARCH_SPACES["linear"])
    assert set(out["cv_metrics"]) == {"roc_auc", "f1", "accuracy", "log_loss"}
    assert len(out["cv_metrics"]["roc_auc"]["folds"]) == 3
    assert 0.7 < out["cv_primary"] <= 1.0
    assert out["cv_metrics"]["log_loss"]["mean"] > 0  # natural sign, not sklearn's negated score
    assert out["train_metrics"]["log_loss"] > 0
    assert [r["name"] for r in out["rules"]] == [
        "overfitting_gap",
        "unstable_cv",
        "degenerate_predictions",
        "non_convergence",
    ]
    assert out["relative_cost"] == RELATIVE_COST["linear"]
    assert out["fit_seconds"] >= 0 and out["n_train_rows"] == len(df)


def test_train_candidate_regression_reports_positive_errors(reg_data):
    config, df = reg_data
    result = train_candidate(config, "hist_gradient_boosting", df[config.feature_names], df["y"])
    out = result.to_dict()
    assert out["passed"], out["failure_reasons"]
    assert out["cv_primary"] > 0 and out["cv_metrics"]["mae"]["mean"] > 0 and out["cv_metrics"]["mape"]["mean"] > 0
    assert out["cv_metrics"]["r2"]["mean"] <= 1.0
    assert out["higher_is_better"] is False


def test_train_candidate_refuses_missing_targets(cls_data):
    config, df = cls_data
    y = df["y"].astype(float).copy()
    y.iloc[0] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        train_candidate(config, "linear", df[config.feature_names], y)


def test_overfitting_rule_fires_on_an_unpruned_forest_fit_to_noise():
    config, df = make_config(), make_frame(n=300)
    noise = np.random.default_rng(3).integers(0, 2, len(df))
    result = train_candidate(
        config,
        "random_forest",
        df[config.feature_names],
        noise,
        search_space=[{"n_estimators": 30, "max_depth": None, "min_samples_leaf": 1}],
    )
    rule = {r.name: r for r in result.rules}["overfitting_gap"]
    assert not rule.passed and rule.value > 0.3
    assert not result.passed
    assert any("Overfitting" in reason for reason in result.failure_reasons)


def test_degenerate_rule_fires_on_a_one_class_classifier():
    config = make_config()
    rng = np.random.default_rng(5)
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=400),
            "x1": rng.normal(size=400),
            "x2": rng.normal(size=400),
            "segment": rng.choice(["a", "b"], 400),
        }
    )
    y = np.zeros(400, dtype=int)
    y[:12] = 1  # 3% positives, features carry no signal: the model answers "0" for everyone
    result = train_candidate(config, "linear", X, y, search_space=[{"C": 1.0}])
    rule = {r.name: r for r in result.rules}["degenerate_predictions"]
    assert not rule.passed and rule.value >= 0.99
    assert any("Degenerate" in reason for reason in result.failure_reasons)


def test_degenerate_rule_fires_on_a_constant_regressor(reg_data):
    config, df = reg_data
    result = train_candidate(config, "linear", df[config.feature_names], df["y"], search_space=[{"C": 1e-9}])
    rule = {r.name: r for r in result.rules}["degenerate_predictions"]
    assert not rule.passed and rule.value < 1e-3


def test_convergence_rule_fires_on_max_iter_1(cls_data):
    config, df = cls_data
    result = train_candidate(
        config, "linear", df[config.feature_names], df["y"], search_space=[{"C": 1.0, "max_iter": 1}]
    )
    assert result.convergence_warnings
    rule = {r.name: r for r in result.rules}["non_convergence"]
    assert not rule.passed and rule.value >= 1
    assert not result.passed and any("ConvergenceWarning" in reason for reason in result.failure_reasons)


def test_rules_are_direction_and_scale_aware():
    rules = TrainingRules()
    assert not check_overfitting("roc_auc", 0.99, 0.70, rules).passed
    assert check_overfitting("roc_auc", 0.80, 0.78, rules).passed
    assert check_overfitting("roc_auc", 0.70, 0.80, rules).passed  # train worse than CV is not overfitting
    assert not check_overfitting("rmse", 1.0, 10.0, rules).passed  # train error 90% below CV
    assert check_overfitting("rmse", 9.0, 10.0, rules).passed
    assert check_overfitting("rmse", 12.0, 10.0, rules).passed
    assert not check_overfitting("log_loss", 0.05, 0.6, rules).passed
    assert check_overfitting("roc_auc", None, 0.7, rules).passed  # undefined: not judged

    assert not check_cv_stability("roc_auc", [0.6, 0.9, 0.75], rules).passed
    assert check_cv_stability("roc_auc", [0.80, 0.81, 0.79], rules).passed
    assert not check_cv_stability("rmse", [5.0, 15.0, 10.0], rules).passed  # relative to the mean
    assert check_cv_stability("rmse", [500.0, 510.0, 505.0], rules).passed

    assert not check_degenerate_predictions(True, np.zeros(200), np.r_[np.zeros(150), np.ones(50)], rules).passed
    # labels themselves 99.5% one class: the data, not the model, is degenerate
    assert check_degenerate_predictions(True, np.zeros(200), np.r_[np.zeros(199), np.ones(1)], rules).passed
    assert check_degenerate_predictions(
        True, np.r_[np.zeros(150), np.ones(50)], np.r_[np.zeros(150), np.ones(50)], rules
    ).passed
    assert not check_degenerate_predictions(False, np.full(50, 3.0), np.arange(50.0), rules).passed
    assert check_degenerate_predictions(False, np.arange(50.0), np.arange(50.0), rules).passed

    assert check_convergence([], rules).passed
    assert not check_convergence(["lbfgs failed to converge"], rules).passed
    assert check_convergence(["lbfgs failed to converge"], TrainingRules(fail_on_convergence_warning=False)).passed


# -- selection -----------------------------------------------------------------------------------


def _result(candidate: str, value: float, passed: bool = True, reasons: list[str] | None = None) -> dict:
    return {
        "candidate": candidate,
        "cv_primary": value,
        "passed": passed,
        "relative_cost": RELATIVE_COST[candidate],
        "failure_reasons": reasons or ([] if passed else [f"{candidate} broke a rule."]),
    }


def test_select_best_by_primary_in_both_directions():
    results = [_result("linear", 0.80), _result("random_forest", 0.84), _result("hist_gradient_boosting", 0.83)]
    assert select_best(results, make_config())["candidate"] == "random_forest"
    errors = [_result("linear", 12.0), _result("random_forest", 10.0), _result("hist_gradient_boosting", 11.0)]
    winner = select_best(errors, make_config("regression"))
    assert winner["candidate"] == "random_forest"
    assert [r["candidate"] for r in winner["selection"]["ranking"]] == [
        "random_forest",
        "hist_gradient_boosting",
        "linear",
    ]


def test_select_best_breaks_near_ties_by_cost():
    results = [_result("random_forest", 0.8405), _result("linear", 0.8400), _result("hist_gradient_boosting", 0.8403)]
    winner = select_best(results, make_config())
    assert winner["candidate"] == "linear"
    assert "cheapest" in winner["selection"]["reason"]
    # beyond the tie tolerance the better model wins even if it is dearer
    results = [_result("random_forest", 0.8420), _result("linear", 0.8400)]
    assert select_best(results, make_config())["candidate"] == "random_forest"
    # lower-is-better ties too
    errors = [_result("hist_gradient_boosting", 10.0000), _result("linear", 10.0008)]
    assert select_best(errors, make_config("regression"))["candidate"] == "linear"


def test_select_best_skips_failed_and_explains_when_none_pass():
    results = [_result("random_forest", 0.95, passed=False), _result("linear", 0.80)]
    winner = select_best(results, make_config())
    assert winner["candidate"] == "linear"
    assert "random_forest" in winner["selection"]["reason"]
    failed = [
        _result("random_forest", 0.95, False, ["Overfitting: gap 0.4."]),
        _result("linear", 0.5, False, ["Convergence: no."]),
    ]
    with pytest.raises(NoViableCandidate) as info:
        select_best(failed, make_config())
    assert "random_forest: Overfitting: gap 0.4." in str(info.value)
    assert "linear: Convergence: no." in str(info.value)
    assert info.value.failures == {"random_forest": ["Overfitting: gap 0.4."], "linear": ["Convergence: no."]}


def test_select_best_accepts_candidate_result_dicts(cls_data):
    config, df = cls_data
    spaces = {"linear": [{"C": 1.0}], "hist_gradient_boosting": [{"max_iter": 50}]}
    results = [
        train_candidate(config, c, df[config.feature_names], df["y"], search_space=space).to_dict()
        for c, space in spaces.items()
    ]
    winner = select_best(results, config)
    assert winner["candidate"] in {"linear", "hist_gradient_boosting"}
    json.dumps(winner, allow_nan=False)


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
