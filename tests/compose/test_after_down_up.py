"""After `docker-compose down` (volumes kept) and `up`: what the first phase made is still there.

Run by .ci/compose-stage after test_compose_stack.py, which writes COMPOSE_STATE_FILE: the
champion's version, a capture file's key and the first retrain's run id. Named volumes hold
PostgreSQL (Airflow's history, MLflow's registry) and the local endpoint's bucket.
"""

from __future__ import annotations

import json
import os

import pytest

@pytest.fixture(scope="module")
def before() -> dict:
    path = os.environ.get("COMPOSE_STATE_FILE", "")
    assert path and os.path.exists(path), f"{path} missing: test_compose_stack.py records the first phase there"
    return json.loads(open(path).read())


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
