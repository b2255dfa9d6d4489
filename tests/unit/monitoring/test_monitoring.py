"""Daily monitoring end to end (monitor_day) on generated churn traffic: drift, quality, labels, performance."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from tests.unit.monitoring.monitoring_helpers import (
    LABEL_SHARE,
    NOW,
    ROWS,
    drifted,
    parquet_bytes,
    write_day,
)

from modelops.layout import partition
from modelops.monitoring.decision import decide
from modelops.monitoring.live_data import collect
from modelops.monitoring.report import SCHEMA_VERSION, build_report
from modelops.monitoring.report_html import render_report_html


def test_normal_day_is_ok_with_a_stable_json_safe_schema(reports, config):
    report, data = reports["normal"]
    assert report["status"] == "ok"
    assert drifted(report) == []
    assert report["data_quality"]["status"] == "ok"
    assert report["performance"]["status"] == "ok"
    assert report["prediction_drift"]["status"] == "ok" and not report["prediction_drift"]["drifted"]
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["main_version"] == "1"
    assert report["rows"] == {
        "captured": ROWS,
        "files": 3,
        "by_version": {"1": ROWS},
        "without_baseline": 0,
        "versions_without_baseline": [],
        "missing_columns": {},
    }
    assert report["links"]["baseline_uri"].endswith("baseline.json")
    assert report["links"]["report_json_key"] == "monitoring/churn/dt=2024-03-01/report.json"
    assert set(report) >= {"model", "day", "served_versions", "verdict", "drift", "histograms", "performance"}
    json.dumps(report, allow_nan=False)  # JSON-safe: no NaN, no numpy
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "no_action" and decision["alerts"] == []


def test_covariate_shift_drifts_monthly_charges_and_requests_a_retrain(reports, config):
    report, _ = reports["covariate_shift"]
    assert report["status"] == "drift"
    assert "monthly_charges" in drifted(report)
    assert drifted(report)[0] == "monthly_charges"  # most severe first
    assert {"plan", "contract", "region"}.isdisjoint(drifted(report))
    histogram = next(h for h in report["histograms"] if h["feature"] == "monthly_charges")
    assert len(histogram["labels"]) == len(histogram["reference"]) == len(histogram["current"])
    assert sum(histogram["current"]) == pytest.approx(1.0)
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "retrain" and decision["triggers"] == ["drift"]
    assert any("monthly_charges" in reason for reason in decision["reasons"])


def test_new_category_drifts_plan_and_breaks_the_allowed_set(reports, config):
    report, _ = reports["new_category"]
    assert "plan" in drifted(report)
    plan = next(f for f in report["drift"]["features"] if f["feature"] == "plan")
    assert "enterprise" in plan["details"]["unseen_categories"]
    violation = next(v for v in report["data_quality"]["violations"] if v["column"] == "plan")
    assert violation["expectation"] == "expect_column_values_to_be_in_set"
    assert "enterprise" in violation["sample_values"]
    assert decide(report, [], config, NOW)["action"] == "retrain"


def test_null_column_is_a_quality_violation_that_alerts_without_retraining(reports, config):
    report, _ = reports["null_column"]
    assert report["status"] == "quality"
    assert drifted(report) == []
    violation = next(v for v in report["data_quality"]["violations"] if v["column"] == "avg_session_minutes")
    assert violation["expectation"] == "expect_column_values_to_not_be_null"
    assert violation["unexpected_percent"] == pytest.approx(100.0)
    session = next(f for f in report["drift"]["features"] if f["feature"] == "avg_session_minutes")
    assert session["status"] == "no_data"  # nothing to compare, so no drift verdict from a broken feed
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "no_action"
    assert [a["kind"] for a in decision["alerts"]] == ["quality"]
    assert any("bad data is not drift" in r for r in decision["reasons"])


def test_a_day_without_capture_files_is_a_no_data_report(store, config, trained):
    day = dt.date(2025, 1, 1)
    data = collect(store, config.name, day, {"1": trained["baseline"]})
    assert data.no_data and data.files == [] and data.main_version is None
    report = build_report(data)
    assert report["status"] == "no_data"
    assert "no captured traffic" in report["verdict"]["messages"][0]
    assert report["drift"] is None and report["performance"] is None
    json.dumps(report, allow_nan=False)
    assert "no_data" in render_report_html(report)
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "no_action" and decision["alerts"] == []


def test_labels_are_joined_from_the_day_and_the_next_day(reports):
    report, data = reports["normal"]
    labels = data.versions["1"].labels
    expected = int(ROWS * LABEL_SHARE)
    # Half of the labels sit in the next day's partition; the next day's partition also holds
    # nothing of other days here, and no capture row is joined twice.
    assert report["labels"]["joined"] == expected == len(labels)
    assert report["labels"]["partitions"] == ["feedback/churn/dt=2024-03-01/", "feedback/churn/dt=2024-03-02/"]
    assert not labels.duplicated(["request_id", "record_index"]).any()
    # Only the small columns travel: keys, prediction, label and the probabilities to score with.
    assert set(labels.columns) == {"request_id", "record_index", "prediction", "label", "probabilities"}
    assert report["performance"]["labels"] == expected


def test_late_and_duplicate_labels(store, config, trained):
    """The last label received for a record wins; labels of other days' requests are not joined."""
    from modelops.serving.capture_schema import feedback_schema

    day = dt.date(2024, 4, 1)
    captured = write_day(store, config, trained["model"], day, rows=300, label_share=0.0, files=1)
    first = captured.iloc[:5]
    rows = [
        (first["request_id"].iloc[0], 0, "1", "2024-04-01T10:00:00Z"),
        (first["request_id"].iloc[0], 0, "0", "2024-04-02T09:00:00Z"),  # correction, a day later
        (first["request_id"].iloc[0], 1, "1", "2024-04-02T09:00:00Z"),
        ("req-from-another-day", 0, "1", "2024-04-02T09:00:00Z"),
    ]
    feedback = pd.DataFrame(rows, columns=["request_id", "record_index", "label", "received_at"])
    feedback["received_at"] = pd.to_datetime(feedback["received_at"], utc=True)
    feedback["model"] = config.name
    store.put_bytes(
        partition("feedback", config.name, day) + "extra-a.parquet",
        parquet_bytes(feedback.iloc[:1], feedback_schema(config)),
    )
    store.put_bytes(
        partition("feedback", config.name, day + dt.timedelta(days=1)) + "extra-b.parquet",
        parquet_bytes(feedback.iloc[1:], feedback_schema(config)),
    )
    data = collect(store, config.name, day, {"1": trained["baseline"]})
    labels = data.versions["1"].labels.set_index(["request_id", "record_index"])["label"].to_dict()
    assert labels == {(first["request_id"].iloc[0], 0): "0", (first["request_id"].iloc[0], 1): "1"}
    assert data.duplicate_labels == 1 and data.labels_received == 4


def test_concept_shift_with_labels_degrades_performance(reports, config, trained):
    report, _ = reports["concept_shift"]
    performance = report["performance"]
    assert drifted(report) == []  # the features did not move, the concept did
    assert performance["status"] == "degraded" and performance["degraded"]
    assert performance["primary_metric"] == "roc_auc"
    assert performance["reference"]["primary"] == pytest.approx(trained["evaluation"]["primary"])
    assert performance["primary_drop"] > performance["tolerance"] >= config.gate.tolerance
    assert report["status"] == "performance"
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "retrain" and decision["triggers"] == ["performance"]
    # On the normal day the same scorers agree with the test metrics within the tolerance.
    normal = reports["normal"][0]["performance"]
    assert abs(normal["primary_drop"]) < normal["tolerance"]
    assert set(normal["metrics"]) == {"roc_auc", "f1", "accuracy", "log_loss"}
