"""Scoring a model once per response method: the same numbers as scoring the model itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from tests.unit.training.test_evaluation import make_config, make_frame

from modelops.config import ModelConfig
from modelops.training.pipelines import build_pipeline
from modelops.training.scoring import (
    build_scorers,
    cached_responses,
    predict_in_chunks,
    replayed,
    row_positions,
    score,
)


class Counting:
    """Wraps a fitted model and counts its calls per response method."""

    def __init__(self, model):
        self.model, self.calls = model, {}
        self.classes_ = getattr(model, "classes_", None)
        for name in ("predict", "predict_proba", "decision_function"):
            if hasattr(model, name):
                setattr(self, name, self._counted(name))

    def _counted(self, name):
        def call(X):
            self.calls[name] = self.calls.get(name, 0) + 1
            return getattr(self.model, name)(X)

        return call


def _fitted(problem: str, estimator=None):
    config = make_config(problem)
    frame = make_frame(problem, n=600)
    pipeline = build_pipeline(config, "linear") if estimator is None else estimator
    return config, frame, pipeline.fit(frame[config.feature_names], frame[config.target])


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
def test_every_metric_equals_scoring_the_model_itself(problem):
    config, frame, model = _fitted(problem)
    X, y = frame[config.feature_names], frame[config.target]
    scorers = build_scorers(config, sorted(y.unique().tolist()) if config.is_classifier else None)
    answers = cached_responses(model, X, config.is_classifier)
    positions = row_positions(len(X))
    for metric, scorer in scorers.items():
        assert score(scorer, metric, answers, positions, y) == pytest.approx(
            score(scorer, metric, model, X, y), abs=1e-12
        )
    mask = (frame["plan"] == "basic").to_numpy()  # a slice: the answers of exactly those rows
    primary = config.metrics.primary
    sliced = score(scorers[primary], primary, answers, positions[mask], y[mask])
    assert sliced == pytest.approx(score(scorers[primary], primary, model, X[mask], y[mask]), abs=1e-12)


def test_each_response_method_is_computed_once_whatever_the_metrics_and_slices():
    config, frame, model = _fitted("binary_classification")
    X, y = frame[config.feature_names], frame[config.target]
    counting = Counting(model)
    answers, positions = cached_responses(counting, X, True), row_positions(len(X))
    scorers = build_scorers(config, [0, 1])
    for _ in range(3):
        for metric, scorer in scorers.items():
            score(scorer, metric, answers, positions[: len(X) // 2], y[: len(X) // 2])
    assert counting.calls and set(counting.calls.values()) == {1}


def test_a_model_with_a_decision_function_is_scored_through_it_as_sklearn_would():
    """roc_auc asks for decision_function first: an SVC's AUC from it, not from predict_proba."""
    X, y = make_classification(n_samples=300, n_features=4, random_state=3)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    model = SVC(probability=True, random_state=0).fit(X, y)
    config = ModelConfig.model_validate(
        {
            "name": "svc",
            "problem_type": "binary_classification",
            "target": "y",
            "features": [{"name": f"f{i}", "type": "numeric"} for i in range(4)],
            "metrics": {"primary": "roc_auc", "secondary": ["log_loss"]},
        }
    )
    scorers = build_scorers(config, [0, 1])
    answers = cached_responses(model, X, True)
    for metric, scorer in scorers.items():
        assert score(scorer, metric, answers, row_positions(len(X)), y) == pytest.approx(
            score(scorer, metric, model, X, y), abs=1e-12
        )


def test_predictions_in_chunks_equal_one_call():
    X, y = make_classification(n_samples=1_005, n_features=3, n_informative=3, n_redundant=0, random_state=1)
    X = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LogisticRegression().fit(X, y)
    np.testing.assert_array_equal(predict_in_chunks(model, X, rows=100), model.predict(X))
    np.testing.assert_allclose(
        predict_in_chunks(model, X, "predict_proba", rows=333), model.predict_proba(X), rtol=1e-14
    )


def test_a_replayed_classifier_only_has_the_methods_it_was_given():
    model = replayed(True, np.asarray(["a", "b"], dtype=object), {"predict": np.array(["a", "b", "b"], dtype=object)})
    assert hasattr(model, "predict") and not hasattr(model, "predict_proba")
    assert model.predict(row_positions(3)[[2, 0]]).tolist() == ["b", "a"]
