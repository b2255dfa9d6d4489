"""The compose stack's driver: reaches the services through the ports .ci/compose-stage published.

Not part of `make test` (tests/unit, tests/dags, tests/integration only): it needs a running
`docker-compose up`. Environment: COMPOSE_AIRFLOW_URL, COMPOSE_MLFLOW_URL, COMPOSE_SERVING_URL,
COMPOSE_AWS_URL, COMPOSE_PROJECT_NAME (docker-compose -p), COMPOSE_GIT_COMMIT (the image's
commit), COMPOSE_STATE_FILE (what the first phase leaves for the one after `down` and `up`).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import pytest
from tests.support.polling import wait_until


def _need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run this through .ci/compose-stage", returncode=2)
    return value


@pytest.fixture(scope="session")
def urls() -> dict[str, str]:
    names = ("AIRFLOW", "MLFLOW", "SERVING", "AWS")
    return {name.lower(): _need(f"COMPOSE_{name}_URL") for name in names}


@pytest.fixture(scope="session")
def airflow(urls):
    from modelops.airflow_api import AirflowClient

    user, password = os.environ.get("AIRFLOW_ADMIN_USER", "admin"), os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin")
    return AirflowClient(urls["airflow"], user, password)


@pytest.fixture(scope="session")
def mlflow_client(urls):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=urls["mlflow"], registry_uri=urls["mlflow"])


@pytest.fixture(scope="session")
def s3(urls):
    import boto3

    return boto3.client(
        "s3", endpoint_url=urls["aws"], region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


def _compose(*args: str) -> str:
    project = os.environ.get("COMPOSE_PROJECT_NAME", "modelops-ci")
    return subprocess.run(["docker-compose", "-p", project, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def compose():
    """``docker-compose`` on the stage's project (COMPOSE_PROJECT_NAME): its stdout."""
    return _compose


@pytest.fixture(scope="session")
def training_hostnames():
    """The hostnames of the running ``airflow-worker-training`` replicas (what Airflow records per task)."""

    def hostnames() -> set[str]:
        ids = _compose("ps", "-q", "airflow-worker-training").split()
        out = subprocess.run(["docker", "inspect", "-f", "{{.Config.Hostname}}", *ids], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        return set(out.split())

    return hostnames


@pytest.fixture(scope="session")
def trigger(airflow):
    """Trigger a DAG over the REST API as of now (a logical date of its own: one run per date); the run id."""

    def run(dag_id: str, conf: dict | None = None) -> str:
        return airflow.trigger(dag_id, conf, logical_date=dt.datetime.now(dt.UTC).isoformat())["dag_run_id"]

    return run


@pytest.fixture(scope="session")
def first_run_of(airflow, trigger):
    """Unpause a DAG and wait for its first run to succeed; the finished run.

    Unpausing starts the latest interval's scheduled run (max_active_runs=1 would queue a triggered
    one behind it): that run is the first; trigger one only when none came within 30 s."""

    def first_run(dag_id: str, timeout: float = 900) -> dict:
        airflow.wait_for_dag(dag_id, timeout=300)
        airflow.unpause(dag_id)
        runs = wait_until(lambda: airflow.runs(dag_id), f"a scheduled run of {dag_id}", 30, interval=2, fail=False)
        run_id = runs[0]["dag_run_id"] if runs else trigger(dag_id)
        finished = airflow.wait_for_run(dag_id, run_id, timeout=timeout)
        assert finished["state"] == "success", airflow.failure_logs(dag_id, run_id)
        return finished

    return first_run
