"""What cannot be lowered falls back to the pipeline with a reason naming it; failed parity does too."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.unit.serving.compiled.compiled_helpers import fitted, make_frame, scoring_rows

from modelops.serving.compiled import (
    COMPILED,
    PIPELINE,
    CannotLower,
    check_parity,
    lower,
    lower_or_reason,
    path_of_tags,
)
from modelops.serving.compiled.parity import SCORING_PATH_PARITY_TAG, SCORING_PATH_REASON_TAG, SCORING_PATH_TAG


class TunedLogistic(LogisticRegression):
    """A data scientist's estimator: a subclass may change what predict does, so it is not lowered."""


def _refit(config, steps):
    frame = make_frame(config.problem_type)
    return Pipeline(steps).fit(frame[config.feature_names], frame["y"])


def _check(config, pipeline, **kwargs):
    return check_parity(pipeline, scoring_rows(), config.feature_names, config.numeric_features, config.is_classifier, **kwargs)  # fmt: skip


def test_a_user_feature_step_falls_back_naming_the_step():
    config, pipeline = fitted("linear", "binary_classification")
    own = _refit(config, [("feature_identity", FunctionTransformer()), *[(n, clone(s)) for n, s in pipeline.steps]])
    with pytest.raises(CannotLower, match="feature step 'feature_identity'.*FunctionTransformer"):
        lower(own)
    verdict = _check(config, own)
    assert verdict.path == PIPELINE
    assert "feature step 'feature_identity'" in verdict.reason and "pipeline serves" in verdict.reason


def test_a_custom_estimator_falls_back_naming_its_class():
    config, pipeline = fitted("linear", "binary_classification")
    custom = _refit(config, [("preprocess", clone(pipeline.named_steps["preprocess"])), ("model", TunedLogistic())])
    scorer, reason = lower_or_reason(custom)
    assert scorer is None
    assert "custom estimator" in reason and "TunedLogistic" in reason
    assert _check(config, custom).path == PIPELINE


def test_a_lowering_that_disagrees_fails_parity_and_says_by_how_much():
    config, pipeline = fitted("hist_gradient_boosting", "binary_classification")
    perturbed = lower(pipeline)
    perturbed.model.leaf_values = perturbed.model.leaf_values + 1e-3  # a lowering bug, deliberately
    verdict = _check(config, pipeline, lowered=perturbed)
    assert verdict.path == PIPELINE
    assert verdict.max_difference > 1e-6
    assert "parity failed" in verdict.reason and "pipeline serves" in verdict.reason
    assert _check(config, pipeline).path == COMPILED


def test_a_regression_off_by_more_than_the_tolerance_fails():
    config, pipeline = fitted("linear", "regression")
    perturbed = lower(pipeline)
    perturbed.model.intercept += 1e-3
    verdict = _check(config, pipeline, lowered=perturbed)
    assert verdict.path == PIPELINE and verdict.max_difference > 1e-6


def test_no_rows_means_the_pipeline():
    config, pipeline = fitted("linear", "binary_classification")
    verdict = check_parity(pipeline, scoring_rows().head(0), config.feature_names, config.numeric_features, True)
    assert verdict.path == PIPELINE and "no held-out rows" in verdict.reason


def test_tags_carry_the_verdict_and_serving_reads_them():
    config, pipeline = fitted("random_forest", "multiclass_classification")
    verdict = _check(config, pipeline)
    tags = verdict.tags()
    assert tags[SCORING_PATH_TAG] == COMPILED and "parity passed" in tags[SCORING_PATH_REASON_TAG]
    assert '"rows": 150' in tags[SCORING_PATH_PARITY_TAG]
    assert path_of_tags(tags) == (COMPILED, tags[SCORING_PATH_REASON_TAG])
    assert path_of_tags({SCORING_PATH_TAG: PIPELINE})[0] == PIPELINE
    path, reason = path_of_tags({})
    assert path == PIPELINE and "before compiled scoring" in reason


def test_numeric_columns_may_arrive_as_python_lists():
    """Serving's columns are float64 arrays, the parity's too; lists of numbers work the same."""
    config, pipeline = fitted("linear", "regression")
    scorer = lower(pipeline)
    rows = scoring_rows().head(3)
    columns = {n: rows[n].tolist() for n in config.feature_names}
    np.testing.assert_allclose(scorer.predict(columns), pipeline.predict(rows), rtol=1e-6)
