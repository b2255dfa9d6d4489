"""Calibration of held-out probabilities: it must fix a known miscalibration, survive JSON, keep
rows summing to 1, and refuse probabilities of other classes with a message naming both."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.unit.training.training_helpers import make_config

from modelops.training.calibration import (
    MIN_ROWS,
    CalibrationError,
    apply_calibration,
    calibration_for,
    fit_calibration,
)


def _overconfident(n: int = 4000, seed: int = 0):
    """True positive rates p, but the model reports p squared pushed to the edges."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    y = (rng.random(n) < p).astype(int)
    reported = np.clip(np.where(p > 0.5, 0.5 + 1.6 * (p - 0.5), 0.5 - 1.6 * (0.5 - p)), 0.001, 0.999)
    return np.column_stack([1 - reported, reported]), y, p


def test_isotonic_map_repairs_a_known_miscalibration_and_survives_json():
    probabilities, y, truth = _overconfident()
    record = fit_calibration(probabilities, y, [0, 1], seed=3)
    assert (
        record["status"] == "ok"
        and record["method"] == "binned_isotonic"
        and record["classes"] == ["0", "1"]
        and list(record["maps"]) == ["1"]
    )
    quality = record["quality"]
    assert quality["rows_fit"] + quality["rows_check"] == quality["rows"] == len(y)
    assert quality["calibrated"]["ece"] < quality["raw"]["ece"] / 2
    assert quality["calibrated"]["brier"] < quality["raw"]["brier"]
    stored = json.loads(json.dumps(record))
    calibrated = apply_calibration(stored, probabilities, ["0", "1"])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    # Calibrated values sit much closer to the true rates than the reported ones.
    assert np.abs(calibrated[:, 1] - truth).mean() < 0.5 * np.abs(probabilities[:, 1] - truth).mean()
    assert np.all(np.diff(calibrated[np.argsort(probabilities[:, 1]), 1]) >= -1e-12)  # monotone


def test_multiclass_maps_every_class_and_renormalises():
    rng = np.random.default_rng(1)
    n = 3000
    logits = rng.normal(size=(n, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(["a", "b", "c"])[(rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1)]
    reported = p**2 / (p**2).sum(axis=1, keepdims=True)
    record = fit_calibration(reported, y, ["a", "b", "c"])
    assert sorted(record["maps"]) == ["a", "b", "c"]
    calibrated = apply_calibration(record, reported, ["a", "b", "c"])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert record["quality"]["calibrated"]["brier"] < record["quality"]["raw"]["brier"]


def test_already_calibrated_probabilities_are_kept_raw_when_the_map_would_worsen_them():
    # Perfectly calibrated scores on few rows: the binned map can only add noise on the check half.
    rng = np.random.default_rng(7)
    p = rng.uniform(0.02, 0.98, 240)
    y = (rng.random(240) < p).astype(int)
    probabilities = np.column_stack([1 - p, p])
    record = fit_calibration(probabilities, y, [0, 1], seed=0)
    quality = record["quality"]
    assert quality["calibrated"]["brier"] > quality["raw"]["brier"], "the case must make the map worse"
    assert record["status"] == "ok" and record["method"] == "identity" and "raw probabilities kept" in record["reason"]
    np.testing.assert_allclose(apply_calibration(record, probabilities, ["0", "1"]), probabilities)


def test_probabilities_of_other_classes_are_refused_naming_both():
    probabilities, y, _ = _overconfident()
    record = fit_calibration(probabilities, y, [0, 1])
    with pytest.raises(CalibrationError, match=r"\['no', 'yes'\].*\['0', '1'\]"):
        apply_calibration(record, probabilities, ["no", "yes"])
    with pytest.raises(CalibrationError, match="shape"):
        apply_calibration(record, probabilities[:, :1], ["0", "1"])


def test_bad_inputs_are_named():
    probabilities, y, _ = _overconfident(n=500)
    with pytest.raises(CalibrationError, match="labels \\['7'\\] are not among"):
        fit_calibration(probabilities, np.where(y == 1, 7, 0), [0, 1])
    with pytest.raises(CalibrationError, match="499 labels for 500 rows"):
        fit_calibration(probabilities, y[:-1], [0, 1])
    nan = probabilities.copy()
    nan[0, 0] = np.nan
    with pytest.raises(CalibrationError, match="NaN"):
        fit_calibration(nan, y, [0, 1])


def test_too_few_rows_or_a_missing_class_leave_no_calibration_with_a_reason():
    probabilities, y, _ = _overconfident(n=MIN_ROWS - 1)
    few = fit_calibration(probabilities, y, [0, 1])
    assert few["status"] == "unavailable" and f"at least {MIN_ROWS}" in few["reason"]
    probabilities, y, _ = _overconfident(n=1000)
    y[:] = 0
    one_class = fit_calibration(probabilities, y, [0, 1])
    assert one_class["status"] == "unavailable" and "['1'] absent" in one_class["reason"]


def test_calibration_for_a_fitted_classifier_and_for_regression():
    from sklearn.linear_model import LogisticRegression

    config = make_config()
    rng = np.random.default_rng(0)
    import pandas as pd

    frame = pd.DataFrame(rng.normal(size=(600, 3)), columns=["x0", "x1", "x2"])
    frame["segment"] = "mid"
    frame["y"] = (rng.random(600) < 1 / (1 + np.exp(-2 * frame["x0"]))).astype(int)
    fitted = LogisticRegression().fit(frame[["x0", "x1", "x2"]], frame["y"])

    class OnFeatures:  # the platform's pipelines take the declared feature columns
        classes_ = fitted.classes_

        def predict_proba(self, X):
            return fitted.predict_proba(X[["x0", "x1", "x2"]])

    record = calibration_for(config, OnFeatures(), frame)
    assert record["status"] == "ok" and record["quality"]["rows_check"] == 300
    regression = calibration_for(make_config("regression"), fitted, None)
    assert regression["status"] == "unavailable" and "regression" in regression["reason"]
