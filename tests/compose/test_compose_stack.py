"""The compose stack end to end, through its published ports (run by .ci/compose-stage).

retrain_churn over the REST API -> success -> champion alias in MLflow -> /predict answers with that
version -> a capture file in S3 -> the version's code-version tag is the image's commit -> training
ran on a training worker; then a restart of the scheduler and the training worker mid-run leaves
no run stuck.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

DAG = "retrain_churn"
BUCKET = os.environ.get("MODELOPS_BUCKET", "modelops")


def _remember(**facts) -> None:
    """What test_after_down_up checks once `docker-compose down` and `up` have run (the stage's file)."""
    if path := os.environ.get("COMPOSE_STATE_FILE"):
        state = Path(path)
        known = json.loads(state.read_text()) if state.exists() else {}
        state.write_text(json.dumps({**known, **facts}))


@pytest.fixture(scope="module")
def first_run(first_run_of):
    return first_run_of(DAG)


def test_retrain_promotes_a_champion_that_serving_answers_with(first_run, mlflow_client, urls, s3):
    champion = mlflow_client.get_model_version_by_alias("churn", "champion")
    from modelops.config import get_model
    from modelops.local import datagen

    features = get_model("churn").feature_names
    frame = datagen.generate_batch("churn", dt.date(2026, 11, 21), 3, seed=1)[features]
    row = {"records": json.loads(frame.to_json(orient="records"))}
    deadline = time.monotonic() + 180
    answer = None
    while time.monotonic() < deadline:  # each serving worker follows the alias by itself
        request = urllib.request.Request(f"{urls['serving']}/models/churn/predict", data=json.dumps(row).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.load(response)
            if str(answer.get("version")) == str(champion.version):
                break
        except OSError as exc:
            answer = {"error": str(exc)}
        time.sleep(2)
    assert answer and str(answer.get("version")) == str(champion.version), answer
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="capture/").get("Contents", [])]
        if keys:
            break
        time.sleep(2)
    assert keys, "no capture file landed in S3 within 120 s"
    _remember(champion=champion.version, capture=keys[0], run_id=first_run["dag_run_id"])


def test_the_champion_carries_the_images_commit(first_run, mlflow_client):
    tags = mlflow_client.get_model_version_by_alias("churn", "champion").tags
    assert tags.get("modelops.code_version") == os.environ["COMPOSE_GIT_COMMIT"], tags
    for name in ("modelops.declaration_sha256", "modelops.suite_sha256", "modelops.sklearn_version"):
        assert tags.get(name), f"{name} missing from the champion's tags: {tags}"


def test_training_ran_on_the_training_workers(first_run, airflow, training_hostnames):
    instances = [
        ti for ti in airflow.task_instances(DAG, first_run["dag_run_id"]) if ti["task_id"] == "train_candidates"
    ]
    assert instances and {ti["queue"] for ti in instances} == {"training"}
    assert {ti["hostname"] for ti in instances} <= training_hostnames(), instances


def test_a_restart_mid_training_leaves_no_run_stuck(first_run, airflow, trigger, compose):
    from modelops.config import get_model

    run_id = trigger(DAG, {"candidates": get_model("churn").training.candidates[:1]})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        states = {ti["state"] for ti in airflow.task_instances(DAG, run_id) if ti["task_id"] == "train_candidates"}
        if "running" in states:
            break
        time.sleep(1)
    else:
        pytest.fail("no training task started within 600 s")
    compose("restart", "airflow-scheduler", "airflow-worker-training")
    finished = airflow.wait_for_run(DAG, run_id, timeout=900)
    assert finished["state"] in ("success", "failed"), finished
    assert finished["state"] == "success", airflow.failure_logs(DAG, run_id)


def test_the_models_pages_answer_behind_airflows_auth(first_run, urls, mlflow_client):
    """The plugin in the image: anonymous refused; the admin sees churn's champion (JSON and page)."""
    import requests

    base = f"{urls['airflow']}/modelops"
    assert requests.get(f"{base}/api/models", timeout=30).status_code == 401
    user, password = os.environ.get("AIRFLOW_ADMIN_USER", "admin"), os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin")
    token = requests.post(f"{urls['airflow']}/auth/token", json={"username": user, "password": password}, timeout=30)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    rows = {
        row["model"]: row for row in requests.get(f"{base}/api/models", headers=headers, timeout=60).json()["models"]
    }
    champion = mlflow_client.get_model_version_by_alias("churn", "champion")
    assert str(rows["churn"]["champion"]["version"]) == str(champion.version), rows["churn"]
    page = requests.get(f"{base}/models/churn", headers=headers, timeout=60)
    assert page.status_code == 200 and 'id="timeline"' in page.text
