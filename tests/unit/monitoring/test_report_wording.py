"""How the report words a prediction-drift test and a GX violation for a reader."""

from __future__ import annotations

from modelops.monitoring.quality import _violation
from modelops.monitoring.report import prediction_drift_text


def test_prediction_drift_wording_puts_the_p_value_beside_its_threshold():
    prediction = {"method": "chi_square", "statistic": 0.562, "p_value": 0.45, "threshold": 0.05}
    text = prediction_drift_text(prediction)
    assert text == "chi_square p = 0.45 (drift below p 0.05)", text
    violation = _violation(
        {
            "expectation_type": "x",
            "column": "c",
            "unexpected_count": 1926,
            "element_count": 2000,
            "unexpected_percent": 100.0,
        }
    )
    assert violation["observed"] == "1926 of 2000 values unexpected (96.3%)"
    bounds = _violation({"expectation_type": "x", "kwargs": {"max_value": 31.380000000000003}})
    assert bounds["expected"] == {"max_value": 31.38}
