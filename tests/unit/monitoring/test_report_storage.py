"""Reports and decisions stored per day and overwritten by a re-run."""

from __future__ import annotations

import datetime as dt

from tests.unit.monitoring.monitoring_helpers import (
    BUCKET,
    NOW,
)

from modelops.monitoring.decision import decide
from modelops.monitoring.report_html import render_report_html
from modelops.monitoring.storage import append_decision, load_decision_history, write_report


def test_reports_and_decisions_are_stored_per_day_and_overwritten(store, reports, config):
    report, _ = reports["covariate_shift"]
    html_text = render_report_html(report)
    uris = write_report(store, config.name, report["day"], report, html_text)
    assert uris["report_json"] == f"s3://{BUCKET}/monitoring/churn/dt=2024-03-03/report.json"
    write_report(store, config.name, report["day"], report, html_text)  # re-run: same keys
    keys = [o.key for o in store.list("monitoring/churn/dt=2024-03-03/")]
    assert keys == ["monitoring/churn/dt=2024-03-03/report.html", "monitoring/churn/dt=2024-03-03/report.json"]
    assert store.get_json(keys[1]) == report

    assert load_decision_history(store, "churn") == []
    first = decide(report, [], config, NOW)
    append_decision(store, "churn", first)
    history = load_decision_history(store, "churn")
    again = decide(report, history, config, NOW + dt.timedelta(hours=1))
    append_decision(store, "churn", again)
    other = decide(reports["normal"][0], history, config, NOW)
    append_decision(store, "churn", other)
    history = load_decision_history(store, "churn")
    assert [(d["day"], d["action"]) for d in history] == [("2024-03-01", "no_action"), ("2024-03-03", "retrain")]
    assert history[1]["already_requested"] is True
    assert load_decision_history(store, "churn", since="2024-03-02") == [history[1]]
