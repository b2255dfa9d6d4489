"""monitor_<model> on the running stack: a normal day is quiet, a drifted day asks for a retrain
(an Asset event that starts retrain_<model>), a day without traffic is "no data", re-running a
day never asks twice, and a backfill reproduces the same reports."""

from __future__ import annotations

import datetime as dt
import io
import time
import uuid

import pandas as pd

from modelops import datagen, monitoring, registry
from modelops.config import get_model
from modelops.serving.app import capture_rows

MONITOR = "monitor_churn"
NORMAL_DAY = dt.date(2026, 11, 16)
DRIFT_DAY = dt.date(2026, 11, 17)
EMPTY_DAY = dt.date(2026, 11, 10)


class _Served:
    def __init__(self, version, classes):
        self.version, self.classes = version, classes


def _write_traffic(store, day: dt.date, scenario: str | None, rows: int = 1500, labels: bool = True) -> None:
    """A day of traffic as the serving service captures it (same row builder, same layout)."""
    import mlflow

    model = get_model("churn")
    champion = registry.version_for_alias("churn", registry.CHAMPION)
    fitted = mlflow.sklearn.load_model(f"models:/churn/{champion.version}")
    frame = datagen.generate_batch("churn", day, rows, scenario=scenario, seed=7)
    features = frame[model.feature_names]
    predictions = fitted.predict(features).tolist()
    probabilities = fitted.predict_proba(features).tolist()
    records = [{k: (None if v != v else v) for k, v in r.items()} for r in features.to_dict(orient="records")]
    request_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{day}-{scenario}").hex
    captured_at = dt.datetime.combine(day, dt.time(12), dt.UTC)
    served = _Served(champion.version, list(fitted.classes_))
    rows_out = capture_rows(model, served, records, predictions, probabilities, request_id, captured_at)
    buffer = io.BytesIO()
    pd.DataFrame(rows_out).to_parquet(buffer, index=False)
    store.put_bytes(f"capture/churn/dt={day}/{request_id}.parquet", buffer.getvalue())
    if labels:
        feedback = pd.DataFrame(
            {
                "request_id": request_id,
                "record_index": range(rows),
                "label": frame[model.target].astype(str).to_numpy(),
                "received_at": captured_at + dt.timedelta(hours=3),
                "model": "churn",
            }
        )
        buffer = io.BytesIO()
        feedback.to_parquet(buffer, index=False)
        store.put_bytes(f"feedback/churn/dt={day}/{request_id}.parquet", buffer.getvalue())


def _run_for(airflow, day: dt.date) -> dict:
    """A manual run whose data interval is ``day`` (logical date = the day's midnight + 1 day)."""
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    run = airflow.trigger(MONITOR, logical_date=logical.isoformat())
    finished = airflow.wait_for_run(MONITOR, run["dag_run_id"], timeout=600)
    assert finished["state"] == "success", airflow.failure_logs(MONITOR, run["dag_run_id"])
    return finished


def test_daily_monitoring_loop(first_promotion, airflow, store):
    _write_traffic(store, NORMAL_DAY, None)
    _write_traffic(store, DRIFT_DAY, "covariate_shift")
    airflow.wait_for_dag(MONITOR)
    airflow.unpause(MONITOR)

    normal = _run_for(airflow, NORMAL_DAY)
    summary = airflow.xcom(MONITOR, normal["dag_run_id"], "build_report")
    assert summary["day"] == str(NORMAL_DAY) and summary["status"] == "ok", summary
    report = store.get_json(monitoring.report_keys("churn", NORMAL_DAY)["report_json"])
    assert report["rows"]["captured"] == 1500 and report["performance"]["status"] != "insufficient_labels"
    assert store.exists(monitoring.report_keys("churn", NORMAL_DAY)["report_html"])
    assert airflow.task_states(MONITOR, normal["dag_run_id"])["request_retrain"] == "skipped"

    retrains_before = {r["dag_run_id"] for r in airflow.runs("retrain_churn")}
    drifted = _run_for(airflow, DRIFT_DAY)
    summary = airflow.xcom(MONITOR, drifted["dag_run_id"], "build_report")
    assert summary["status"] == "drift" and "monthly_charges" in summary["drifted_features"], summary
    decision = airflow.xcom(MONITOR, drifted["dag_run_id"], "decide")
    assert decision["action"] == "retrain" and decision["emit_retrain_request"] is True
    assert airflow.task_states(MONITOR, drifted["dag_run_id"])["request_retrain"] == "success"

    deadline = time.monotonic() + 120
    while not (new := [r for r in airflow.runs("retrain_churn") if r["dag_run_id"] not in retrains_before]):
        assert time.monotonic() < deadline, "the retrain request did not start retrain_churn"
        time.sleep(2)
    assert new[0]["run_type"] == "asset_triggered"
    finished = airflow.wait_for_run("retrain_churn", new[0]["dag_run_id"], timeout=900)
    assert finished["state"] == "success", airflow.failure_logs("retrain_churn", new[0]["dag_run_id"])

    # Re-running the drifted day replaces its report and decision but never asks twice.
    airflow.clear_run(MONITOR, drifted["dag_run_id"])
    again = airflow.wait_for_run(MONITOR, drifted["dag_run_id"], timeout=600)
    assert again["state"] == "success"
    decision = airflow.xcom(MONITOR, drifted["dag_run_id"], "decide")
    assert decision["already_requested"] is True and decision["emit_retrain_request"] is False
    assert airflow.task_states(MONITOR, drifted["dag_run_id"])["request_retrain"] == "skipped"

    empty = _run_for(airflow, EMPTY_DAY)
    assert airflow.xcom(MONITOR, empty["dag_run_id"], "build_report")["status"] == "no_data"


def test_backfill_reproduces_the_daily_reports(first_promotion, airflow, store):
    keys = monitoring.report_keys("churn", NORMAL_DAY)
    if not store.exists(keys["report_json"]):
        _write_traffic(store, NORMAL_DAY, None)
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
