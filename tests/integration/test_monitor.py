"""monitor_<model> on the running stack, driven by `make demo`'s loop (traffic through /predict
and /feedback): normal days are quiet, a drifted day asks for a retrain (an Asset event that
starts retrain_<model>), a day without traffic is "no data", re-running a day never asks twice,
and a backfill reproduces the same reports."""

from __future__ import annotations

import datetime as dt
import time

from modelops import registry
from modelops.local import demo
from modelops.monitoring import storage as monitoring

MONITOR = "monitor_churn"
NORMAL_DAY = dt.date(2026, 11, 16)
DRIFT_DAY = dt.date(2026, 11, 17)
EMPTY_DAY = dt.date(2026, 11, 10)


def _run_for(airflow, day: dt.date) -> dict:
    """A manual run whose data interval is ``day`` (logical date = the day's midnight + 1 day)."""
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    run = airflow.trigger(MONITOR, logical_date=logical.isoformat())
    finished = airflow.wait_for_run(MONITOR, run["dag_run_id"], timeout=600)
    assert finished["state"] == "success", airflow.failure_logs(MONITOR, run["dag_run_id"])
    return finished


def test_demo_loop_then_reruns_and_an_empty_day(first_promotion, stack, airflow, store, today):
    """`make demo`'s loop, step by step: normal days through /predict are quiet, the drifted day
    asks for a retrain that runs and leaves serving on the registry's champion."""
    cfg = stack.config
    days = demo.DemoDays.ending(DRIFT_DAY, normal_days=2)
    assert days.normal == (NORMAL_DAY - dt.timedelta(days=1), NORMAL_DAY)
    serving_before = str(registry.version_for_alias("churn", registry.CHAMPION).version)
    lines: list[str] = []
    loop = demo.Demo(airflow, store, cfg.serving_url, cfg.serving_token, cfg.mlflow_url, "churn", out=lines.append)
    result = loop.run(days, "covariate_shift", rows=1500, as_of=today)

    assert result["champion"] == {"version": serving_before, "trained_now": False, "run_id": None}
    for step in result["normal"]:
        assert step["traffic"]["rows"] == 1500 and step["traffic"]["labels"] == 1500 and not step["traffic"]["skipped"]
        assert step["summary"]["status"] == "ok", step["summary"]
        assert step["decision"]["action"] == "no_action"
        assert airflow.task_states(MONITOR, step["run_id"])["request_retrain"] == "skipped"
    report = store.get_json(monitoring.report_keys("churn", NORMAL_DAY)["report_json"])
    assert report["rows"]["captured"] == 1500 and report["performance"]["status"] != "insufficient_labels"
    assert store.exists(monitoring.report_keys("churn", NORMAL_DAY)["report_html"])

    drifted = result["drift"]
    assert drifted["summary"]["status"] == "drift" and "monthly_charges" in drifted["summary"]["drifted_features"]
    assert drifted["decision"]["action"] == "retrain" and drifted["decision"]["emit_retrain_request"] is True
    assert airflow.task_states(MONITOR, drifted["run_id"])["request_retrain"] == "success"
    retrain = result["retrain"]
    assert airflow.run("retrain_churn", retrain["run_id"])["run_type"] == "asset_triggered"
    assert retrain["served"] == retrain["champion"]
    # The requested retrain trains on the window ending at the day that asked, not the wall clock.
    snapshot = airflow.xcom("retrain_churn", retrain["run_id"], "snapshot_training_data")
    assert snapshot["window"]["last_day"] == str(DRIFT_DAY), snapshot
    assert any(line.startswith("[done]") for line in lines), lines

    # Re-running the drifted day replaces its report and decision but never asks twice.
    airflow.clear_run(MONITOR, drifted["run_id"])
    again = airflow.wait_for_run(MONITOR, drifted["run_id"], timeout=600)
    assert again["state"] == "success"
    decision = airflow.xcom(MONITOR, drifted["run_id"], "decide")
    assert decision["already_requested"] is True and decision["emit_retrain_request"] is False
    assert airflow.task_states(MONITOR, drifted["run_id"])["request_retrain"] == "skipped"

    # The demo run again: no traffic sent twice, no second retrain; it shows the same retrain run.
    second = demo.Demo(airflow, store, cfg.serving_url, cfg.serving_token, cfg.mlflow_url, "churn", out=lines.append)
    rerun = second.run(days, "covariate_shift", rows=1500, as_of=today)
    assert all(step["traffic"]["skipped"] for step in rerun["normal"]) and rerun["drift"]["traffic"]["skipped"]
    assert rerun["drift"]["decision"]["already_requested"] is True
    assert rerun["retrain"]["run_id"] == retrain["run_id"]

    empty = _run_for(airflow, EMPTY_DAY)
    assert airflow.xcom(MONITOR, empty["dag_run_id"], "build_report")["status"] == "no_data"


def test_backfill_reproduces_the_daily_reports(first_promotion, stack, airflow, store):
    keys = monitoring.report_keys("churn", NORMAL_DAY)
    if not store.exists(keys["report_json"]):  # this test alone: a day of traffic first
        cfg = stack.config
        loop = demo.Demo(airflow, store, cfg.serving_url, cfg.serving_token, cfg.mlflow_url, "churn")
        loop.send_day(NORMAL_DAY, 1500, None)
        loop.wait_for_capture(NORMAL_DAY, 1500)
        _run_for(airflow, NORMAL_DAY)
    original = store.get_bytes(keys["report_json"])
    backfill = airflow.request(
        "POST",
        "/backfills",
        json={
            "dag_id": MONITOR,
            "from_date": f"{NORMAL_DAY}T00:00:00Z",
            "to_date": f"{NORMAL_DAY}T00:00:00Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        },
    )
    deadline = time.monotonic() + 600
    while True:
        runs = [r for r in airflow.runs(MONITOR) if r["run_type"] == "backfill"]
        if runs and all(r["state"] in {"success", "failed"} for r in runs):
            break
        assert time.monotonic() < deadline, f"backfill {backfill['id']} did not finish"
        time.sleep(2)
    assert all(r["state"] == "success" for r in runs), airflow.failure_logs(MONITOR, runs[0]["dag_run_id"])
    assert store.get_bytes(keys["report_json"]) == original
