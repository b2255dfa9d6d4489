"""The compiled scorer answers like the scikit-learn pipeline, for every built-in family and problem type.

Rows carry NaNs, unseen categories (numeric and text), NaN categories and infrequent categories.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.serving.compiled.compiled_helpers import PROBLEMS, fitted, rarest_shops, scoring_rows

from modelops.serving.compiled import COMPILED, check_parity, lower
from modelops.serving.compiled.parity import PROBA_TOLERANCE, REGRESSION_RTOL, served_columns

FAMILIES = ["linear", "random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"]


def _served(config, rows):
    return served_columns(rows, config.feature_names, config.numeric_features)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_answers_equal_the_pipeline(family, problem):
    config, pipeline = fitted(family, problem)
    scorer = lower(pipeline)
    frame, columns = _served(config, scoring_rows())
    if config.is_classifier:
        expected = pipeline.predict_proba(frame)
        got = scorer.predict_proba(columns)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= PROBA_TOLERANCE
        assert (scorer.classes[got.argmax(axis=1)] == pipeline.predict(frame)).all()
        assert (scorer.predict(columns) == pipeline.predict(frame)).all()
        assert list(scorer.classes) == list(pipeline.classes_)
    else:
        expected = pipeline.predict(frame)
        got = scorer.predict(columns)
        np.testing.assert_allclose(got, expected, rtol=REGRESSION_RTOL, atol=1e-9)
    verdict = check_parity(
        pipeline, scoring_rows(), config.feature_names, config.numeric_features, config.is_classifier
    )
    assert verdict.path == COMPILED, verdict.reason
    assert verdict.rows == len(scoring_rows())


def test_preprocessing_matches_the_column_transformer_exactly():
    """Imputation, indicators, scaling, one-hot with unseen, NaN and infrequent categories: the same array."""
    config, pipeline = fitted("linear", "binary_classification")
    frame, columns = _served(config, scoring_rows())
    expected = pipeline.named_steps["preprocess"].transform(frame)
    got = lower(pipeline).transform(columns)
    np.testing.assert_array_equal(got, expected)


def test_rows_that_stress_lowering_are_really_there():
    """Guard the fixture: infrequent grouping, NaN category and unseen values must exist, or the tests prove less."""
    config, pipeline = fitted("linear", "binary_classification")
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"].named_steps["one_hot"]
    shop = config.categorical_features.index("shop")
    assert set(rarest_shops()) & set(encoder.infrequent_categories_[shop])
    segment = config.categorical_features.index("segment")
    assert any(isinstance(c, float) and np.isnan(c) for c in encoder.categories_[segment])
    frame, columns = _served(config, scoring_rows())
    onehot = lower(pipeline).preprocess.branches[1].encoder.transform_columns(columns, len(frame))
    assert (onehot[:10].sum(axis=1) == 2).all()  # the unseen shop lights nothing (segment and tier do)
