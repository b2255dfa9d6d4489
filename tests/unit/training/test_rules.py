"""Training rules: overfitting, degenerate predictions, convergence, direction and scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.unit.training.training_helpers import make_config, make_frame

from modelops.training.candidate import train_candidate
from modelops.training.rules import (
    TrainingRules,
    check_convergence,
    check_cv_stability,
    check_degenerate_predictions,
    check_overfitting,
)


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
