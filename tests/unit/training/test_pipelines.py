"""Candidate pipelines and search spaces: fit, unseen categories, bounds, skops types, MLflow round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.unit.training.training_helpers import make_config, make_frame

from modelops.config import KNOWN_CANDIDATES
from modelops.training.pipelines import build_pipeline
from modelops.training.search_spaces import RELATIVE_COST, SEARCH_SPACES, skops_trusted_types

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
        ("xgboost", True): "XGBClassifier",
        ("xgboost", False): "XGBRegressor",
        ("lightgbm", True): "LGBMClassifier",
        ("lightgbm", False): "LGBMRegressor",
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
        build_pipeline(make_config(), "catboost")
    with pytest.raises(ValueError, match="invalid parameters"):
        build_pipeline(make_config(), "linear", {"not_a_param": 1})


def test_search_spaces_are_small_and_costs_ordered():
    assert set(SEARCH_SPACES) == {"linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"}
    assert set(SEARCH_SPACES) == KNOWN_CANDIDATES == set(RELATIVE_COST)  # the declaration accepts exactly these
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
    loaded = skops.io.loads(data, trusted=skops_trusted_types(candidate, problem))
    np.testing.assert_array_equal(loaded.predict(df[config.feature_names]), pipeline.predict(df[config.feature_names]))


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
@pytest.mark.parametrize("candidate", sorted(SEARCH_SPACES))
def test_mlflow_saves_and_loads_each_candidate_with_exactly_these_types(candidate, problem, tmp_path):
    """The same proof through MLflow's own dump-then-load check (a local save, no tracking server)."""
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    config, df = make_config(problem), make_frame(problem, n=120)
    pipeline = build_pipeline(config, candidate, SEARCH_SPACES[candidate][0]).fit(df[config.feature_names], df["y"])
    path = str(tmp_path / "model")
    mlflow_sklearn.save_model(
        pipeline,
        path,
        serialization_format="skops",
        skops_trusted_types=skops_trusted_types(candidate, problem),
        pip_requirements=["scikit-learn", "skops"],  # skip requirement inference: slow and beside the point
    )
    loaded = mlflow_sklearn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(df[config.feature_names]), pipeline.predict(df[config.feature_names]))
