"""The monitor DAG's steps on plain values: which day a run judges, the summary record, the request."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from moto import mock_aws

from modelops.config import get_model
from modelops.monitoring import steps
from modelops.monitoring.day_report import MonitorSummary
from modelops.monitoring.decision import RetrainDecision
from modelops.monitoring.storage import load_decision_history, write_report
from modelops.records import RecordError
from modelops.store import Store

MIDNIGHT = dt.datetime(2024, 5, 2, tzinfo=dt.UTC)
SUMMARY = {
    "day": "2024-05-01",
    "status": "drift",
    "rows": 1200,
    "drifted_features": ["monthly_charges"],
    "report_uri": "s3://bucket/monitoring/churn/dt=2024-05-01/report.json",
    "report_url": "http://example/report.html",
}


def test_a_daily_run_judges_its_data_interval_and_a_manual_run_the_day_before():
    daily = {"data_interval_start": MIDNIGHT - dt.timedelta(days=1), "data_interval_end": MIDNIGHT}
    assert steps.report_day(daily) == dt.date(2024, 5, 1)
    assert steps.run_instant(daily) == MIDNIGHT
    manual = {"data_interval_start": MIDNIGHT, "data_interval_end": MIDNIGHT}
    assert steps.report_day(manual) == dt.date(2024, 5, 1)
    unscheduled = {"dag_run": SimpleNamespace(run_after=MIDNIGHT + dt.timedelta(hours=3))}
    assert steps.report_day(unscheduled) == dt.date(2024, 5, 1)
    assert steps.run_instant(unscheduled) == MIDNIGHT + dt.timedelta(hours=3)


def test_the_summary_keeps_its_xcom_keys_and_refuses_a_partial_one():
    summary = MonitorSummary.from_json(SUMMARY)
    assert summary.to_json() == SUMMARY
    with pytest.raises(RecordError, match="report_uri"):
        MonitorSummary.from_json({k: v for k, v in SUMMARY.items() if k != "report_uri"})


def test_request_retrain_puts_the_reasons_and_the_runs_instant_on_the_asset_event():
    asset = object()
    events = {asset: SimpleNamespace(extra=None)}
    context = {"data_interval_end": MIDNIGHT, "outlet_events": events}
    decision = RetrainDecision(
        schema_version=1,
        model="churn",
        day="2024-05-01",
        at=MIDNIGHT.isoformat(),
        action="retrain",
        reasons=["drift: monthly_charges"],
        alerts=[{"kind": "drift", "message": "drift: monthly_charges"}],
        triggers=["drift"],
        suppressed_by=None,
        already_requested=False,
        requested_at=MIDNIGHT.isoformat(),
        retrains_in_window=0,
        report_status="drift",
        emit_retrain_request=True,
    ).to_json()
    extra = steps.request_retrain(get_model("churn"), decision, SUMMARY, context, asset)
    assert events[asset].extra == extra
    assert extra == {
        "model": "churn",
        "day": "2024-05-01",
        "as_of": MIDNIGHT.isoformat(),
        "reasons": ["drift: monthly_charges"],
        "report_uri": SUMMARY["report_uri"],
    }
    assert steps.retrain_requested(decision) is True
    assert steps.retrain_requested({**decision, "emit_retrain_request": False}) is False


@pytest.fixture
def empty_store(aws_env):
    """An empty mocked bucket of this test's own (the session ``store`` holds other days' decisions)."""
    with mock_aws():
        store = Store("steps-test")
        store.ensure_bucket()
        yield store


def test_deciding_a_day_twice_records_one_decision_and_asks_once(empty_store):
    store = empty_store
    config = get_model("churn")
    report = {
        "model": "churn",
        "day": "2024-05-01",
        "status": "drift",
        "verdict": {"findings": ["drift"], "messages": ["drift: 1 feature"], "drifted_features": ["x"]},
    }
    write_report(store, "churn", "2024-05-01", report, "<html></html>")
    first = steps.decide_and_record(config, dt.date(2024, 5, 1), MIDNIGHT, store)
    again = steps.decide_and_record(config, dt.date(2024, 5, 1), MIDNIGHT + dt.timedelta(hours=1), store)
    assert first["action"] == "retrain" and first["emit_retrain_request"] is True
    assert again["already_requested"] is True and again["emit_retrain_request"] is False
    assert len(load_decision_history(store, "churn")) == 1
    assert RetrainDecision.from_json(first).to_json() == first  # every key of the decision is a field
