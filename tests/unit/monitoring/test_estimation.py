"""CBPE on plain arrays: the expected-confusion formulas are exact on known labels (so they match
sklearn), unbiased when the probabilities are the truth, the band has the spread of the realised
metric, and the report section says what it estimates, against what, and what it cannot see."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score
from tests.unit.training.training_helpers import make_config

from modelops.monitoring.estimation import (
    MIN_ROWS,
    ScoreSample,
    estimate_performance,
    expected_metrics,
    sampling_std,
)
from modelops.training.calibration import fit_calibration

BINARY = ["roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "f1_macro"]


def _binary(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 2.5, n).round(2)  # rounded: many ties in the score
    raw = np.column_stack([1 - p, p])
    return raw, p, (raw[:, 1] >= 0.5).astype(int), rng


def test_formulas_on_one_hot_labels_are_the_realised_metrics():
    raw, p, predicted, rng = _binary()
    y = (rng.random(len(p)) < p).astype(int)
    got = expected_metrics(np.eye(2)[y], raw, predicted, BINARY)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, raw[:, 1]), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert got["f1"] == pytest.approx(f1_score(y, predicted))
    assert got["precision"] == pytest.approx(precision_score(y, predicted))
    assert got["recall"] == pytest.approx(recall_score(y, predicted))
    assert got["f1_macro"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert got["log_loss"] == pytest.approx(log_loss(y, raw), rel=1e-9)


def test_multiclass_formulas_match_sklearn_one_vs_rest():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2000, 3)) * 1.5
    raw = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random((2000, 1)) > raw.cumsum(axis=1)).sum(axis=1)
    predicted = raw.argmax(axis=1)
    got = expected_metrics(np.eye(3)[y], raw, predicted, ["roc_auc", "accuracy", "f1_macro", "log_loss"])
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, raw, multi_class="ovr"), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert got["f1_macro"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert got["log_loss"] == pytest.approx(log_loss(y, raw), rel=1e-9)


def test_estimate_is_unbiased_and_the_band_has_the_spread_of_the_realised_metric():
    raw, p, predicted, rng = _binary(n=2000, seed=5)
    realised = []
    for _ in range(300):
        y = (rng.random(len(p)) < p).astype(int)
        realised.append(roc_auc_score(y, raw[:, 1]))
    estimate = expected_metrics(raw, raw, predicted, ["roc_auc"])["roc_auc"]
    sigma = sampling_std(raw, raw, predicted, "roc_auc")
    assert estimate == pytest.approx(np.mean(realised), abs=0.003)
    assert sigma == pytest.approx(np.std(realised), rel=0.25)


def test_score_sample_is_bounded_seeded_and_counts_every_row():
    def fill(sample):
        for start in range(0, 1000, 100):
            probabilities = pd.Series([[1 - i / 1000, i / 1000] for i in range(start, start + 100)])
            sample.add(probabilities, pd.Series(["1" if i >= 500 else "0" for i in range(start, start + 100)]))
        return sample

    a, b = fill(ScoreSample(max_rows=250)), fill(ScoreSample(max_rows=250))
    assert len(a) == 250 and a.seen == 1000
    matrix, predicted = a.arrays(["0", "1"])
    assert matrix.shape == (250, 2) and np.array_equal(matrix, b.arrays(["0", "1"])[0])
    assert matrix[:, 1].max() > 0.75  # rows after the cap were kept too, not only the first 250
    np.testing.assert_array_equal(predicted, (matrix[:, 1] >= 0.5).astype(int))
    with pytest.raises(ValueError, match=r"\[2\] columns, the classes are \['a', 'b', 'c'\]"):
        a.arrays(["a", "b", "c"])
    missing = ScoreSample()
    missing.add(pd.Series([None, [0.4, 0.6]]), pd.Series(["0", "1"]))
    assert len(missing) == 1 and missing.seen == 1


def _calibrated_baseline(seed: int = 0) -> dict:
    raw, p, _, rng = _binary(n=4000, seed=seed)
    y = (rng.random(len(p)) < p).astype(int)
    return {"calibration": fit_calibration(raw, y, [0, 1])}


def _scores(raw: np.ndarray) -> ScoreSample:
    sample = ScoreSample()
    sample.add(pd.Series(list(raw)), pd.Series(np.where(raw[:, 1] >= 0.5, "1", "0")))
    return sample


def _realised(primary: float | None, reference: float = 0.8, status: str = "ok", labels: int = 500) -> dict:
    return {"status": status, "primary": primary, "labels": labels, "reference": {"primary": reference}}


def test_estimate_beside_realised_and_a_drop_beyond_the_tolerance():
    config = make_config()  # roc_auc, tolerance max(gate, 0.05)
    raw, *_ = _binary(n=1500, seed=9)
    estimate = estimate_performance(config, _calibrated_baseline(), _scores(raw), ["0", "1"], _realised(0.76))
    assert estimate["status"] in ("ok", "degraded") and estimate["rows"] == 1500
    assert estimate["band"]["lower"] < estimate["estimated"] < estimate["band"]["upper"]
    assert estimate["realised"]["error"] == pytest.approx(estimate["estimated"] - 0.76)
    assert "no concept shift" in estimate["assumption"]
    high = estimate_performance(
        config, _calibrated_baseline(), _scores(raw), ["0", "1"], _realised(None, 0.99, "insufficient_labels")
    )
    assert high["status"] == "degraded" and high["degraded"] is True and high["realised"] is None
    assert (
        high["estimated_drop"] == pytest.approx(0.99 - high["estimated"]) and "beyond the tolerance" in high["message"]
    )
    low = estimate_performance(
        config, _calibrated_baseline(), _scores(raw), ["0", "1"], _realised(None, 0.5, "insufficient_labels")
    )
    assert low["status"] == "ok" and not low["degraded"] and "better by" in low["message"]


def test_realised_far_outside_the_band_is_called_a_likely_concept_shift():
    config = make_config()
    raw, *_ = _binary(n=1500, seed=9)
    estimate = estimate_performance(config, _calibrated_baseline(), _scores(raw), ["0", "1"], _realised(0.55))
    assert estimate["realised"]["within_band"] is False
    assert "concept shift" in estimate["message"] and "cannot see" in estimate["message"]


def test_what_is_not_estimated_says_why():
    raw, *_ = _binary(n=1500)
    regression = estimate_performance(make_config("regression"), {}, None, None)
    assert regression["status"] == "not_estimated" and "regression" in regression["message"]
    assert regression["estimated"] is None and regression["degraded"] is False
    old = estimate_performance(make_config(), {"features": {}}, _scores(raw), ["0", "1"])
    assert old["status"] == "not_estimated" and "no calibration" in old["message"]
    unavailable = {"calibration": {"status": "unavailable", "reason": "150 held-out rows"}}
    assert "150 held-out rows" in estimate_performance(make_config(), unavailable, _scores(raw), ["0", "1"])["message"]
    few = estimate_performance(make_config(), _calibrated_baseline(), _scores(raw[: MIN_ROWS - 1]), ["0", "1"])
    assert few["status"] == "insufficient_rows" and f"at least {MIN_ROWS}" in few["message"]


def test_a_multiclass_model_gets_its_primary_estimated_one_vs_rest():
    config = make_config(
        "multiclass_classification", metrics={"primary": "f1_macro", "secondary": ["roc_auc", "accuracy"]}
    )
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6000, 3)) * 1.5
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(["a", "b", "c"])[(rng.random((6000, 1)) > truth.cumsum(axis=1)).sum(axis=1)]
    reported = truth**2 / (truth**2).sum(axis=1, keepdims=True)  # overconfident
    baseline = {"calibration": fit_calibration(reported[:4000], y[:4000], ["a", "b", "c"])}
    served = reported[4000:]
    sample = ScoreSample()
    sample.add(pd.Series(list(served)), pd.Series(np.array(["a", "b", "c"])[served.argmax(axis=1)]))
    realised = f1_score(y[4000:], np.array(["a", "b", "c"])[served.argmax(axis=1)], average="macro")
    result = estimate_performance(config, baseline, sample, ["a", "b", "c"], _realised(realised, reference=realised))
    assert result["primary_metric"] == "f1_macro" and set(result["metrics"]) == {"f1_macro", "roc_auc", "accuracy"}
    assert abs(result["realised"]["error"]) <= 3 * result["band"]["sigma"] and result["realised"]["within_band"]
    assert result["status"] == "ok"
