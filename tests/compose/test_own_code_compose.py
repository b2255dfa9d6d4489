"""A data scientist's work in the compose image (run by .ci/compose-stage after the down/up phase):

- churn_plus's own code (include/models/churn_plus/, baked into the image) trains on the training
  workers, is promoted and served, with its feature step inside the served model;
- a model logged from this machine to the stack's tracking server is submitted with
  ``python -m modelops.submit`` (Airflow's REST API), gated beside that champion, promoted and served.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.request

import pytest
from tests.support.laptop import laptop_model

from modelops.config import get_model
from modelops.local import datagen

MODEL = "churn_plus"
DAG = f"retrain_{MODEL}"


def _served_version(urls, frame) -> str:
    body = json.dumps({"records": json.loads(frame.to_json(orient="records"))}).encode()
    request = urllib.request.Request(
        f"{urls['serving']}/models/{MODEL}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["version"])


def _wait_served(urls, frame, version: str, timeout: float = 180) -> str:
    """Each serving worker follows the alias by itself: poll until the answer comes from ``version``."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            seen = _served_version(urls, frame)
        except OSError:
            seen = None
        if seen == version:
            return seen
        time.sleep(2)
    return str(seen)


@pytest.fixture(scope="module")
def own_code_run(first_run_of):
    return first_run_of(DAG)


def test_own_code_trains_in_the_image_and_is_served(own_code_run, airflow, mlflow_client, urls):
    ranking = airflow.xcom(DAG, own_code_run["dag_run_id"], "select_best")["selection"]["ranking"]
    assert {r["candidate"] for r in ranking} == {"linear", "renewal_lightgbm"}
    champion = mlflow_client.get_model_version_by_alias(MODEL, "champion")
    files = {f.path for f in mlflow_client.list_artifacts(champion.run_id)}
    assert "candidate_result.json" in files
    frame = datagen.generate_batch("churn", dt.date(2026, 11, 21), 5, seed=2)[get_model(MODEL).feature_names]
    assert _wait_served(urls, frame, str(champion.version)) == str(champion.version)


def test_a_model_from_this_machine_is_submitted_through_rest_and_served(own_code_run, urls, mlflow_client, monkeypatch):
    import mlflow

    from modelops.submit import cli as submit

    for name, value in {
        "MODELOPS_AIRFLOW_URL": urls["airflow"], "MLFLOW_TRACKING_URI": urls["mlflow"],
        "AWS_ENDPOINT_URL": urls["aws"], "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "MODELOPS_AIRFLOW_USER": os.environ.get("AIRFLOW_ADMIN_USER", "admin"),
        "MODELOPS_AIRFLOW_PASSWORD": os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(urls["mlflow"])
    model = get_model(MODEL)
    uri, source_run = laptop_model(model, None)
    before = mlflow_client.get_model_version_by_alias(MODEL, "champion").version
    assert submit.main([MODEL, "--model-uri", uri, "--by", "alice", "--force-promote"]) == 0
    champion = mlflow_client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version != before
    tags = champion.tags
    assert tags["candidate"] == "submitted" and tags["submitted_by"] == "alice"
    assert tags["submitted_from_run"] == source_run and tags["training_data"] == "unknown to the platform"
    frame = datagen.generate_batch("churn", dt.date(2026, 11, 22), 5, seed=4)[model.feature_names]
    assert _wait_served(urls, frame, str(champion.version)) == str(champion.version)
