"""Training one candidate: natural metric signs, refusals, on tiny in-test data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.unit.training.training_helpers import make_config, make_frame

from modelops.training.candidate import train_candidate
from modelops.training.search_spaces import RELATIVE_COST, SEARCH_SPACES

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


@pytest.mark.parametrize("candidate", ["xgboost", "lightgbm"])
def test_library_boosters_search_fit_and_pass_the_rules(candidate, cls_data, reg_data):
    """XGBoost and LightGBM as named families: the same search, refit and rules as the built-ins."""
    for config, df in (cls_data, reg_data):
        out = train_candidate(config, candidate, df[config.feature_names], df["y"]).to_dict()
        assert out["params"] in SEARCH_SPACES[candidate]
        assert len(out["search"]) == len(SEARCH_SPACES[candidate])
        assert out["cv_primary"] is not None and np.isfinite(out["cv_primary"])
        assert out["relative_cost"] == RELATIVE_COST[candidate]


def test_xgboost_refuses_class_labels_it_cannot_take_naming_them(cls_data):
    config, df = cls_data
    labels = df["y"].map({0: "stays", 1: "leaves"})
    with pytest.raises(ValueError, match=r"xgboost needs class labels 0..1.*\['leaves', 'stays'\].*lightgbm"):
        train_candidate(config, "xgboost", df[config.feature_names], labels)
    result = train_candidate(config, "lightgbm", df[config.feature_names], labels)  # any labels
    assert set(result.model.predict(df[config.feature_names])) <= {"stays", "leaves"}


# -- large windows: search on a sample, a capped final fit ---------------------------------------


def test_search_on_a_sample_then_final_fit_on_every_row():
    from modelops.training.selection import select_best

    config = make_config(training={"cv_folds": 3, "random_seed": 7, "search_sample_rows": 150})
    df = make_frame(n=400)
    out = train_candidate(config, "linear", df[config.feature_names], df["y"]).to_dict()
    assert out["training_rows"] == {"window": 400, "search": 150, "fit": 400, "sampled": True}
    assert out["passed"], out["failure_reasons"]
    # The same rows on a re-run of the same window: the search's CV is reproduced exactly.
    again = train_candidate(config, "linear", df[config.feature_names], df["y"]).to_dict()
    assert again["cv_metrics"] == out["cv_metrics"]
    # ...and the selection carries it into the decision record.
    chosen = select_best([out], config)
    assert chosen["selection"]["training_rows"]["search"] == 150


def test_fit_max_rows_caps_only_the_named_candidate():

    config = make_config(training={"cv_folds": 3, "random_seed": 7, "fit_max_rows": {"random_forest": 200}})
    df = make_frame(n=400)
    X, y = df[config.feature_names], df["y"]
    forest = train_candidate(config, "random_forest", X, y, search_space=[{"n_estimators": 10}]).to_dict()
    assert forest["training_rows"] == {"window": 400, "search": 400, "fit": 200, "sampled": True}
    linear = train_candidate(config, "linear", X, y).to_dict()
    assert linear["training_rows"] == {"window": 400, "search": 400, "fit": 400, "sampled": False}


def test_fit_max_rows_refuses_unknown_candidates_and_tiny_caps():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"fit_max_rows: unknown candidate\(s\) \['forest'\]"):
        make_config(training={"fit_max_rows": {"forest": 1000}})
    with pytest.raises(ValidationError, match="at least 100 rows"):
        make_config(training={"fit_max_rows": {"random_forest": 10}})
    with pytest.raises(ValidationError, match="search_sample_rows"):
        make_config(training={"search_sample_rows": 5})
