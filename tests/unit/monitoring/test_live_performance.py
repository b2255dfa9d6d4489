"""Realised performance from labelled served predictions: enough labels, the error-metric tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.config import get_model
from modelops.monitoring.performance import performance


def test_performance_needs_enough_labels_and_handles_regression():
    churn = get_model("churn")
    few = pd.DataFrame({"prediction": ["1", "0"] * 10, "label": ["1", "1"] * 10})
    result = performance(churn, few, {"primary_metric": "roc_auc", "primary": 0.8, "metrics": {}})
    assert result["status"] == "insufficient_labels" and result["labels"] == 20 and result["primary"] is None

    delivery = get_model("delivery_time")
    rng = np.random.default_rng(0)
    y = rng.uniform(10, 60, 500)
    reference = {"primary_metric": "rmse", "primary": 3.0, "metrics": {"rmse": 3.0, "mae": 2.4, "r2": 0.9}}
    good = performance(delivery, pd.DataFrame({"prediction": y + rng.normal(0, 3, 500), "label": y}), reference)
    bad = performance(delivery, pd.DataFrame({"prediction": y + rng.normal(0, 6, 500), "label": y}), reference)
    assert good["status"] == "ok" and good["primary"] == pytest.approx(3.0, abs=0.4)
    assert bad["status"] == "degraded" and bad["primary_drop"] > 0  # rmse up = worse
    assert bad["tolerance"] == pytest.approx(max(delivery.gate.tolerance, 0.3))  # 10% of the reference
    assert performance(delivery, pd.DataFrame({"prediction": y, "label": y}))["status"] == "no_reference"
