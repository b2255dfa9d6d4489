"""Held-out evaluation of fitted pipelines: metrics, slices, latency, size; and the floor it feeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import root_mean_squared_error

from modelops.config import ModelConfig
from modelops.training.candidate import train_candidate
from modelops.training.evaluation import MIN_SLICE_ROWS, evaluate_model
from modelops.training.gate import decide_promotion, policy_from_config
from modelops.training.pipelines import build_pipeline

FEATURES = [
    {"name": "x0", "type": "numeric"},
    {"name": "x1", "type": "numeric", "nullable": True},
    {"name": "plan", "type": "categorical", "nullable": True},
]


def make_config(problem: str = "binary_classification") -> ModelConfig:
    primary, secondary = (
        ("roc_auc", ["f1", "accuracy", "log_loss"]) if problem != "regression" else ("rmse", ["mae", "r2"])
    )
    return ModelConfig.model_validate(
        {
            "name": "toy",
            "problem_type": problem,
            "target": "y",
            "features": FEATURES,
            "metrics": {"primary": primary, "secondary": secondary},
            "gate": {"slice_column": "plan", "min_primary": 0.7 if problem != "regression" else 50.0},
        }
    )


def make_frame(problem: str = "binary_classification", n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Plans 'basic' and 'premium' are common; 'legacy' has fewer than MIN_SLICE_ROWS rows."""
    rng = np.random.default_rng(seed)
    if problem == "regression":
        X, y = make_regression(n_samples=n, n_features=2, n_informative=2, noise=5.0, random_state=seed)
    else:
        X, y = make_classification(
            n_samples=n, n_features=2, n_informative=2, n_redundant=0, class_sep=0.8, flip_y=0.05, random_state=seed
        )
    df = pd.DataFrame(X, columns=["x0", "x1"])
    df["plan"] = rng.choice(["basic", "premium"], n)
    df.loc[df.index % 40 == 0, "plan"] = "legacy"  # 2.5% of rows: under MIN_SLICE_ROWS in a 400-row test set
    df.loc[rng.random(n) < 0.05, "x1"] = np.nan
    df["y"] = y
    return df


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def split(problem: str = "binary_classification") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One world, two halves (make_classification draws a different world per seed)."""
    df = make_frame(problem, n=800)
    return df.iloc[:400].reset_index(drop=True), df.iloc[400:].reset_index(drop=True)


def fitted(problem: str, candidate: str = "linear"):
    config = make_config(problem)
    train, test = split(problem)
    model = build_pipeline(config, candidate).fit(train[config.feature_names], train["y"])
    return config, model, test


def test_classification_evaluation_shape_and_values():
    config, model, test = fitted("binary_classification")
    result = evaluate_model(model, test[config.feature_names], test["y"], config)
    json.dumps(result, allow_nan=False)
    assert set(result) == {
        "n_rows",
        "primary_metric",
        "higher_is_better",
        "primary",
        "metrics",
        "slices",
        "latency_ms_per_1k",
        "latency_rows",
        "model_size_mb",
    }
    assert result["primary_metric"] == "roc_auc" and result["higher_is_better"] is True
    assert result["primary"] == result["metrics"]["roc_auc"] > 0.7
    assert set(result["metrics"]) == {"roc_auc", "f1", "accuracy", "log_loss"}
    assert result["metrics"]["log_loss"] > 0
    groups = result["slices"]["groups"]
    assert result["slices"]["column"] == "plan" and result["slices"]["min_rows"] == MIN_SLICE_ROWS
    assert set(groups) == {"basic", "premium", "legacy"}
    assert sum(g["rows"] for g in groups.values()) == len(test)
    assert groups["legacy"]["small"] is True and groups["basic"]["small"] is False
    assert result["latency_ms_per_1k"] > 0 and result["latency_rows"] == len(test)
    assert 0 < result["model_size_mb"] < 1


def test_regression_metrics_are_in_natural_units():
    config, model, test = fitted("regression", "random_forest")
    result = evaluate_model(model, test[config.feature_names], test["y"], config)
    expected = root_mean_squared_error(test["y"], model.predict(test[config.feature_names]))
    assert result["primary"] == pytest.approx(expected)
    assert result["metrics"]["mae"] > 0 and result["higher_is_better"] is False


def test_missing_slice_values_and_single_class_slices_do_not_crash():
    config, model, test = fitted("binary_classification")
    test = test.copy()
    test.loc[test.index[-5:], "plan"] = None
    test.loc[test["plan"] == "premium", "y"] = 1  # AUC is undefined on a one-class slice
    result = evaluate_model(model, test[config.feature_names], test["y"], config)
    groups = result["slices"]["groups"]
    assert groups["__missing__"]["rows"] == 5 and groups["__missing__"]["small"] is True
    assert groups["premium"]["primary"] is None
    assert groups["basic"]["primary"] is not None
    json.dumps(result, allow_nan=False)


def test_slice_values_can_be_given_explicitly():
    config, model, test = fitted("binary_classification")
    region = pd.Series(np.where(np.arange(len(test)) % 2 == 0, "north", "south"), index=test.index + 1000)
    result = evaluate_model(model, test[config.feature_names], test["y"], config, slice_values=region)
    assert set(result["slices"]["groups"]) == {"north", "south"}  # aligned by position, not index


def test_latency_is_measured_on_at_most_1000_rows():
    config, model, _ = fitted("regression")
    big = make_frame("regression", n=2500)
    result = evaluate_model(model, big[config.feature_names], big["y"], config)
    assert result["latency_rows"] == 1000 and result["n_rows"] == 2500


def test_empty_or_misaligned_test_sets_are_refused():
    config, model, test = fitted("binary_classification")
    with pytest.raises(ValueError, match="empty"):
        evaluate_model(model, test[config.feature_names].iloc[:0], test["y"].iloc[:0], config)
    with pytest.raises(ValueError, match="target values"):
        evaluate_model(model, test[config.feature_names], test["y"].iloc[:10], config)
    with pytest.raises(ValueError, match="lacks feature"):
        evaluate_model(model, test[["x0"]], test["y"], config)


def test_a_model_trained_on_shuffled_labels_fails_the_floor():
    config = make_config()
    train, test = split()
    shuffled = np.random.default_rng(0).permutation(train["y"].to_numpy())
    space = [{"n_estimators": 50, "max_depth": 4, "min_samples_leaf": 10}]
    result = train_candidate(config, "random_forest", train[config.feature_names], shuffled, search_space=space)
    evaluation = evaluate_model(result.model, test[config.feature_names], test["y"], config)
    candidate = {**evaluation, "training_passed": result.passed, "failure_reasons": result.failure_reasons}
    decision = decide_promotion(candidate, None, policy_from_config(config, {}))
    floor = next(c for c in decision.checks if c["name"] == "primary_floor")
    assert evaluation["primary"] < 0.65
    assert not floor["passed"] and not decision.promote
    assert "below the floor 0.7" in " ".join(decision.reasons)

    # the same model trained on the real labels clears it
    honest = train_candidate(config, "random_forest", train[config.feature_names], train["y"], search_space=space)
    evaluation = evaluate_model(honest.model, test[config.feature_names], test["y"], config)
    candidate = {**evaluation, "training_passed": honest.passed, "failure_reasons": honest.failure_reasons}
    assert decide_promotion(candidate, None, policy_from_config(config, {})).promote
