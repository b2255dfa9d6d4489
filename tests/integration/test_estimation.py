"""Label-free performance estimation (CBPE) on the running stack: the retrain's register step stores
the champion's calibration with its baseline, a day of covariate-shifted traffic goes through
/predict and /feedback, and monitor_churn reports the estimated ROC AUC with its band beside the
realised one."""

from __future__ import annotations

import datetime as dt

from modelops import registry
from modelops.local import demo
from modelops.monitoring import storage as monitoring

MONITOR = "monitor_churn"
#: A day no other integration test sends traffic for.
DAY = dt.date(2026, 11, 3)
ROWS = 1500


def test_monitor_reports_the_estimate_beside_the_realised_metric(first_promotion, stack, airflow, store):
    cfg = stack.config
    loop = demo.Demo(airflow, store, cfg.serving_url, cfg.serving_token, cfg.mlflow_url, "churn")
    loop.send_day(DAY, ROWS, "covariate_shift")
    loop.wait_for_capture(DAY, ROWS)
    airflow.wait_for_dag(MONITOR)
    airflow.unpause(MONITOR)
    logical = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), dt.UTC)
    run = airflow.trigger(MONITOR, logical_date=logical.isoformat())
    finished = airflow.wait_for_run(MONITOR, run["dag_run_id"], timeout=600)
    assert finished["state"] == "success", airflow.failure_logs(MONITOR, run["dag_run_id"])

    report = store.get_json(monitoring.report_keys("churn", DAY)["report_json"])
    served = report["main_version"]
    tags = registry.client().get_model_version("churn", served).tags
    calibration = store.get_json(store.key_of(tags["baseline_uri"]))["calibration"]
    assert calibration["status"] == "ok" and calibration["classes"] == ["0", "1"], calibration
    assert calibration["quality"]["rows_check"] > 0 and set(calibration["maps"]) == {"1"}

    estimate, realised = report["estimated_performance"], report["performance"]
    assert estimate["status"] in ("ok", "degraded"), estimate
    assert estimate["rows"] == ROWS and estimate["primary_metric"] == "roc_auc"
    assert estimate["band"]["lower"] <= estimate["estimated"] <= estimate["band"]["upper"]
    assert realised["labels"] == ROWS and estimate["realised"]["primary"] == realised["primary"]
    # Covariate shift only: the estimate tracks the realised value (3 sigma of a 1,500-row day).
    assert abs(estimate["realised"]["error"]) <= 0.04, estimate
    html = store.get_bytes(monitoring.report_keys("churn", DAY)["report_html"]).decode()
    assert "Estimated performance (no labels)" in html and "cannot see a drop" in html
