"""A user declares a new model from a data sample (``modelops.scaffold.cli``), on the running stack:
its DAGs appear without a restart, the first retrain trains, gates, registers and promotes it,
and serving answers for it after the run's deploy step (no serving restart either). Then a gated
challenger of that model goes into shadow, a day of traffic is scored by both, and monitor_<model>
reports the comparison and promotes the shadow on the evidence its declaration asks for."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import boto3
import pandas as pd
import requests
import yaml
from tests.support.polling import wait_until
from tests.support.shadow import gated_copy_of_the_champion

from modelops import registry
from modelops.layout import decision_record_key
from modelops.local import bootstrap
from modelops.local.demo import EVENT_TIME_HEADER, captured_rows
from modelops.monitoring import storage as monitoring
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

    # Its version is reproducible from its lineage alone, like the example models' (issue 16).
    completed = subprocess.run(
        [sys.executable, "-m", "modelops.reproduce", NAME, str(champion.version), "--json"],
        capture_output=True, text=True, timeout=900, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    reproduced = json.loads(completed.stdout)
    assert reproduced["verdict"] == "match" and reproduced["comparison"]["predictions"]["identical"]

    record = {"age": 0.03, "sex": "f", "bmi": 0.06, "bp": 0.02, "s1": -0.04, "s2": -0.03}
    record |= {"s3": -0.04, "s4": -0.002, "s5": 0.02, "s6": -0.02}
    answer = requests.post(f"{stack.config.serving_url}/models/{NAME}/predict", json={"record": record}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == str(champion.version) and isinstance(body["predictions"][0], float)
    listed = requests.get(f"{stack.config.serving_url}/models", timeout=30).json()["models"]
    assert NAME in {m["name"] for m in listed}


def _declare_shadow_gate(models_dir, days: int, max_disagreement: float) -> None:
    """What a data scientist edits: promotion waits for ``days`` of shadow traffic within the bound."""
    path = models_dir / f"{NAME}.yaml"
    declaration = yaml.safe_load(path.read_text())
    declaration.setdefault("gate", {}).update(require_shadow_days=days, max_disagreement=max_disagreement)
    path.write_text(yaml.safe_dump(declaration, sort_keys=False))


def test_a_declared_model_shadow_is_compared_in_its_report_and_promoted_on_the_evidence(
    stack, airflow, store, mlflow_client, models_dir, today
):
    champion = registry.version_for_alias(NAME, registry.CHAMPION, mlflow_client)
    assert champion is not None, "needs the declared model's first promotion (the test above)"
    shadow, shadow_run = gated_copy_of_the_champion(NAME, mlflow_client, store)
    _declare_shadow_gate(models_dir, days=1, max_disagreement=0.01)

    run = airflow.run_and_wait(f"deploy_{NAME}", {"version": shadow, "mode": "shadow"}, timeout=600)
    assert run["state"] == "success", airflow.failure_logs(f"deploy_{NAME}", run["dag_run_id"])

    # One simulated day of traffic (the stack honours the event-time header with the serving token).
    day = today - dt.timedelta(days=1)
    features = _sample(today).drop(columns=["visit_id", "visited_at", "progression"])
    headers = {"Authorization": f"Bearer {stack.config.serving_token}", EVENT_TIME_HEADER: f"{day}T12:00:00+00:00"}
    sent = 0
    for start in range(0, 200, 50):
        records = features.iloc[start : start + 50].to_dict(orient="records")
        reply = requests.post(
            f"{stack.config.serving_url}/models/{NAME}/predict", json={"records": records}, headers=headers, timeout=30
        )
        assert reply.status_code == 200 and reply.json()["version"] == str(champion.version), reply.text
        sent += len(records)
    wait_until(lambda: captured_rows(store, NAME, day) >= sent, f"{sent} captured rows of {day}", timeout=60)

    monitor = f"monitor_{NAME}"
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).isoformat()
    finished = airflow.run_and_wait(monitor, logical_date=logical, timeout=600)
    assert finished["state"] == "success", airflow.failure_logs(monitor, finished["dag_run_id"])

    report = store.get_json(monitoring.report_keys(NAME, day)["report_json"])
    section = report["shadow"]
    assert section["status"] == "ok" and section["shadow_versions"] == [shadow]
    # The same model twice: equal but for the last bits of a float. The champion scores each request
    # alone and the shadow process merges queued requests into one call; BLAS sums a row's products in
    # an order that can depend on the batch it is in (~1e-13 on predictions of ~150).
    assert section["rows_compared"] == sent and section["mean_relative_difference"] < 1e-12, section
    assert section["live"]["status"] == "insufficient_labels"  # no feedback: judged by disagreement
    html = store.get_bytes(monitoring.report_keys(NAME, day)["report_html"]).decode()
    assert "<h2>Shadow</h2>" in html

    # Unpausing the DAG also started its latest scheduled run (the day before today): whichever of
    # the two judges last sees this day's stored evidence; exactly one of them promotes. The other
    # finds the shadow judged on a later day, or, when the promotion came first, the shadow already
    # promoted (on this day or a later one) or, judging a later day than the promotion's, none left.
    verdict = airflow.xcom(monitor, finished["dag_run_id"], "judge_shadow")
    reason = verdict["reasons"][0] if verdict["action"] != "promote" else ""
    assert verdict["action"] == "promote" or (
        verdict["action"] == "none"
        and (
            "already judged on a later day" in reason
            or f"shadow {shadow} was already promoted to champion" in reason
            or reason == f"'{NAME}' has no shadow"
        )
    ), verdict

    def promoted() -> dict | None:
        record = store.get_json(decision_record_key(NAME, shadow_run))
        return record if (record.get("shadow") or {}).get("status") == "promoted" else None

    record = wait_until(promoted, f"shadow {shadow} promoted on record", timeout=600)
    evidence = record["shadow_evidence"]
    assert evidence["action"] == "promote"
    assert [d["basis"] for d in evidence["days"] if d["day"] == day.isoformat()] == ["disagreement"]
    assert str(registry.version_for_alias(NAME, registry.CHAMPION, mlflow_client).version) == shadow
    assert registry.version_for_alias(NAME, registry.SHADOW, mlflow_client) is None
    answer = requests.post(
        f"{stack.config.serving_url}/models/{NAME}/predict", json={"record": features.iloc[0].to_dict()}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()["version"] == shadow, answer.text
