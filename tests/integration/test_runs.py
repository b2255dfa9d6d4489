"""Triggers the platform refuses or fails at once, and backfills through the REST API."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops.airflow_api import AirflowError
from modelops.backfill import BackfillError, start_backfill, wait_for_backfill
from modelops.monitoring.storage import report_keys

pytestmark = pytest.mark.integration


def test_a_future_dated_trigger_is_refused_naming_the_date_and_a_normal_run_then_proceeds(airflow):
    airflow.wait_for_dag("smoke_churn")
    airflow.unpause("smoke_churn")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    with pytest.raises(AirflowError) as refused:
        airflow.trigger("smoke_churn", logical_date=future.isoformat())
    assert " 400 " in str(refused.value) and future.isoformat() in str(refused.value)
    dated = [
        dt.datetime.fromisoformat(run["logical_date"]) for run in airflow.runs("smoke_churn") if run["logical_date"]
    ]
    assert future not in dated, "the refused trigger left a run behind"

    run = airflow.trigger("smoke_churn")  # max_active_runs=1: nothing holds it
    finished = airflow.wait_for_run("smoke_churn", run["dag_run_id"], timeout=300)
    assert finished["state"] == "success", airflow.failure_logs("smoke_churn", run["dag_run_id"])


def test_an_unknown_trigger_key_fails_the_run_before_any_work(airflow):
    airflow.wait_for_dag("retrain_churn")
    airflow.unpause("retrain_churn")
    run = airflow.trigger("retrain_churn", conf={"trainig_window_days": 10})
    finished = airflow.wait_for_run("retrain_churn", run["dag_run_id"], timeout=300)
    assert finished["state"] == "failed"
    states = airflow.task_states("retrain_churn", run["dag_run_id"])
    assert states["check_run_params"] == "failed"
    assert states["snapshot_training_data"] == "upstream_failed"
    log = airflow.task_log("retrain_churn", run["dag_run_id"], "check_run_params")
    assert "'trainig_window_days' (did you mean 'training_window_days'?)" in log


def test_a_backfill_of_two_monitoring_days_completes_and_reports_on_each_logical_day(airflow, store, today):
    dag_id = "monitor_churn"
    airflow.wait_for_dag(dag_id)
    airflow.pause(dag_id)
    # Days no other test runs: a day that already has a run (test_monitor's manual runs are dated up to
    # today - 2) is skipped by a backfill that does not reprocess, which is Airflow's rule, not ours.
    first, last = today - dt.timedelta(days=13), today - dt.timedelta(days=12)
    with pytest.raises(BackfillError, match="monitor_churn is paused"):
        start_backfill(airflow, dag_id, first, last)

    created = start_backfill(airflow, dag_id, first, last, unpause=True)
    states = wait_for_backfill(airflow, created, timeout=900, out=print)
    assert len(states) == 2 and set(states.values()) == {"success"}
    runs = airflow.backfill_runs(dag_id, created["from_date"], created["to_date"])
    reported = {
        dt.datetime.fromisoformat(run["logical_date"]).date(): airflow.xcom(dag_id, run["dag_run_id"], "build_report")
        for run in runs
    }
    for logical_day in (first, last):  # a daily run's data interval is [D, D+1): it reports on D itself
        assert reported[logical_day]["day"] == str(logical_day), (logical_day, reported)
        assert store.exists(report_keys("churn", logical_day)["report_json"]), reported[logical_day]
