"""After `docker-compose down` (volumes kept) and `up`: what the first phase made is still there.

Run by .ci/compose-stage after test_compose_stack.py, which writes COMPOSE_STATE_FILE: the
champion's version, a capture file's key and the first retrain's run id. Named volumes hold
PostgreSQL (Airflow's history, MLflow's registry) and the local endpoint's bucket.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def before() -> dict:
    path = os.environ.get("COMPOSE_STATE_FILE", "")
    assert path and os.path.exists(path), f"{path} missing: test_compose_stack.py records the first phase there"
    return json.loads(Path(path).read_text())


def test_the_registry_kept_its_champion(before, mlflow_client):
    champion = mlflow_client.get_model_version_by_alias("churn", "champion")
    assert str(champion.version) == str(before["champion"])
    assert mlflow_client.get_run(champion.run_id).info.status == "FINISHED"


def test_the_bucket_kept_its_objects(before, s3):
    s3.head_object(Bucket=os.environ.get("MODELOPS_BUCKET", "modelops"), Key=before["capture"])


def test_airflow_kept_its_history(before, airflow):
    run = airflow.run("retrain_churn", before["run_id"])
    assert run["state"] == "success", run


def test_serving_comes_back_with_the_champion(before, urls):
    import urllib.request

    with urllib.request.urlopen(f"{urls['serving']}/health", timeout=10) as response:
        health = json.load(response)
    assert str(health["models"]["churn"].get("version")) == str(before["champion"]), health


def test_a_retrain_runs_on_the_scaled_out_training_workers(before, airflow, trigger, training_hostnames):
    """`up --scale airflow-worker-training=2` (the stage's second `up`) with no other change: a
    retrain on the restored bucket and registry succeeds, its candidates trained on those workers.
    The candidates are XGBoost and LightGBM: their native libraries load in the image and MLflow
    logs and reloads them with skops on the real tracking server."""
    hostnames = training_hostnames()
    assert len(hostnames) == 2, hostnames
    run_id = trigger("retrain_churn", {"candidates": ["xgboost", "lightgbm"]})
    finished = airflow.wait_for_run("retrain_churn", run_id, timeout=900)
    assert finished["state"] == "success", airflow.failure_logs("retrain_churn", run_id)
    trained = [ti for ti in airflow.task_instances("retrain_churn", run_id) if ti["task_id"] == "train_candidates"]
    assert len(trained) == 2 and {ti["state"] for ti in trained} == {"success"}, trained
    assert {ti["hostname"] for ti in trained} <= hostnames, trained
