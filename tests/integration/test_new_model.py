"""A user declares a new model from a data sample (``modelops.scaffold.cli``), on the running stack:
its DAGs appear without a restart, the first retrain trains, gates, registers and promotes it,
and serving answers for it after the run's deploy step (no serving restart either)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pandas as pd
import requests

from modelops import registry
from modelops.local import bootstrap
from modelops.scaffold import cli as scaffold

NAME = "diabetes_progression"


def _sample(today: dt.date) -> pd.DataFrame:
    """scikit-learn's diabetes data (shipped with the package, no download) as 10 days of visits."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    start = dt.datetime.combine(today - dt.timedelta(days=10), dt.time(), dt.UTC)
    step = dt.timedelta(days=10) / len(frame)
    frame.insert(0, "visit_id", [f"v{i:04d}" for i in range(len(frame))])
    frame.insert(1, "visited_at", [(start + i * step).isoformat() for i in range(len(frame))])
    frame["sex"] = frame["sex"].map(lambda v: "f" if v > 0 else "m")  # a categorical feature too
    return frame


def test_a_model_declared_from_a_sample_trains_and_serves(
    stack, airflow, models_dir, expectations_dir, today, tmp_path
):
    data = tmp_path / f"{NAME}.csv"
    _sample(today).to_csv(data, index=False)
    argv = [NAME, "--data", str(data), "--target", "progression", "--timestamp-column", "visited_at"]
    argv += ["--id-column", "visit_id", "--upload", "--models-dir", str(models_dir)]
    argv += ["--expectations-dir", str(expectations_dir)]
    assert scaffold.main(argv) == 0

    # Its ingestion exists too: a queue with a dead-letter queue, announced of the uploaded files.
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=bootstrap.queue_name(NAME))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        bootstrap.dead_letter_queue_name(NAME)
    )
    assert int(attributes["ApproximateNumberOfMessages"]) >= 10  # one per uploaded day (ingest is paused)
    notified = {
        c["Id"]
        for c in boto3.client("s3").get_bucket_notification_configuration(Bucket=stack.config.bucket)[
            "QueueConfigurations"
        ]
    }
    assert {f"ingest-{NAME}", "ingest-churn"} <= notified  # the others' notifications are kept

    dag_id = f"retrain_{NAME}"
    airflow.wait_for_dag(dag_id, timeout=240)
    airflow.unpause(dag_id)
    as_of = dt.datetime.combine(today, dt.time(), dt.UTC)
    run = airflow.trigger(dag_id, logical_date=as_of.isoformat())
    finished = airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=900)
    assert finished["state"] == "success", airflow.failure_logs(dag_id, run["dag_run_id"])

    champion = registry.version_for_alias(NAME, registry.CHAMPION)
    assert champion is not None, "the first run of a new model promotes its best candidate"
    manifest_rows = airflow.xcom(dag_id, run["dag_run_id"], "snapshot_training_data")["rows"]
    assert manifest_rows == 442  # every uploaded day is in the training window

    record = {"age": 0.03, "sex": "f", "bmi": 0.06, "bp": 0.02, "s1": -0.04, "s2": -0.03}
    record |= {"s3": -0.04, "s4": -0.002, "s5": 0.02, "s6": -0.02}
    answer = requests.post(f"{stack.config.serving_url}/models/{NAME}/predict", json={"record": record}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == str(champion.version) and isinstance(body["predictions"][0], float)
    listed = requests.get(f"{stack.config.serving_url}/models", timeout=30).json()["models"]
    assert NAME in {m["name"] for m in listed}
