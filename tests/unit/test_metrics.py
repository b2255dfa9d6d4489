"""metrics: which way is better, one rule for training, the gate and monitoring."""

from __future__ import annotations

import pytest

from modelops.config import ModelConfig
from modelops.metrics import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    higher_is_better,
    is_bounded,
    metric_names,
    worse_by,
)


@pytest.mark.parametrize(("metric", "higher"), [("roc_auc", True), ("r2", True), ("rmse", False), ("log_loss", False)])
def test_direction(metric, higher):
    assert higher_is_better(metric) is higher


def test_every_error_metric_is_known_and_lower_is_better():
    assert LOWER_IS_BETTER <= CLASSIFICATION_METRICS | REGRESSION_METRICS
    assert {"rmse", "mae", "mape", "log_loss"} == LOWER_IS_BETTER


def test_worse_by_is_positive_when_worse_whatever_the_direction():
    assert worse_by("roc_auc", 0.9, 0.8) == pytest.approx(0.1)
    assert worse_by("roc_auc", 0.8, 0.9) == pytest.approx(-0.1)
    assert worse_by("rmse", 10.0, 12.0) == pytest.approx(2.0)
    assert worse_by("rmse", 10.0, 8.0) == pytest.approx(-2.0)
    assert worse_by("rmse", None, 8.0) is None and worse_by("rmse", 8.0, None) is None


def test_bounds():
    assert is_bounded("accuracy") and is_bounded("roc_auc")
    assert not is_bounded("rmse") and not is_bounded("log_loss") and not is_bounded("r2")


def test_metric_names_primary_first_without_duplicates():
    config = ModelConfig.model_validate(
        {
            "name": "toy",
            "problem_type": "regression",
            "target": "y",
            "features": [{"name": "x", "type": "numeric"}],
            "metrics": {"primary": "rmse", "secondary": ["mae", "rmse", "r2"]},
        }
    )
    assert metric_names(config) == ["rmse", "mae", "r2"]
    assert config.primary_higher_is_better is False
