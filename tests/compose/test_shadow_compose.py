"""Issue 16 on the compose stack (run by .ci/compose-stage after the other phases): the champion's
baseline carries its CBPE calibration; a gated challenger goes into shadow through deploy_churn
over REST; every serving worker scores it beside the champion, answers stay the champion's, the
shadow's rows land apart under ``shadow/``; end_shadow takes it away on every worker."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import uuid

import pandas as pd
import requests
from tests.support.polling import wait_until

from modelops.layout import decision_record_key, training_baseline_key

MODEL = "churn"
BUCKET = os.environ.get("MODELOPS_BUCKET", "modelops")


def _records(n: int) -> list[dict]:
    from modelops.config import get_model
    from modelops.local import datagen

    frame = datagen.generate_batch(MODEL, dt.date(2026, 11, 21), n, seed=5)[get_model(MODEL).feature_names]
    return json.loads(frame.to_json(orient="records"))


def _get_json(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _shadow_of(urls) -> str | None:
    models = requests.get(f"{urls['serving']}/models", timeout=10).json()["models"]
    return next(m for m in models if m["name"] == MODEL)["shadow"]


def _gated_copy(mlflow_client, s3, champion) -> str:
    """The champion's model registered again by a run of its own, with its passed gate on record."""
    run_id = f"shadow-compose-{uuid.uuid4().hex[:8]}"
    record = _get_json(s3, decision_record_key(MODEL, champion.tags["airflow_run_id"]))
    body = json.dumps({**record, "note": "compose test: a gated challenger"}).encode()
    s3.put_object(Bucket=BUCKET, Key=decision_record_key(MODEL, run_id), Body=body)
    source = champion.source
    model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
    tags = dict(champion.tags) | {"airflow_run_id": run_id}
    return str(mlflow_client.create_model_version(MODEL, source, champion.run_id, tags=tags, model_id=model_id).version)


def _deploy(airflow, trigger, conf: dict) -> None:
    run_id = trigger(f"deploy_{MODEL}", conf)
    finished = airflow.wait_for_run(f"deploy_{MODEL}", run_id, timeout=600)
    assert finished["state"] == "success", airflow.failure_logs(f"deploy_{MODEL}", run_id)


def _shadow_rows(s3, request_ids: set[str]) -> pd.DataFrame:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"shadow/{MODEL}/").get("Contents", [])
    frames = [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())) for o in listed]
    rows = pd.concat(frames) if frames else pd.DataFrame(columns=["request_id"])
    return rows[rows["request_id"].isin(request_ids)]


def test_the_champion_baseline_carries_its_calibration(mlflow_client, s3):
    champion = mlflow_client.get_model_version_by_alias(MODEL, "champion")
    calibration = _get_json(s3, training_baseline_key(MODEL, champion.tags["airflow_run_id"]))["calibration"]
    assert calibration["status"] == "ok" and calibration["classes"] == ["0", "1"], calibration
    assert calibration["quality"]["rows_check"] > 0


def test_a_shadow_is_scored_by_every_worker_apart_and_ends(airflow, trigger, mlflow_client, s3, urls):
    airflow.wait_for_dag(f"deploy_{MODEL}", timeout=300)
    airflow.unpause(f"deploy_{MODEL}")
    champion = mlflow_client.get_model_version_by_alias(MODEL, "champion")
    shadow = _gated_copy(mlflow_client, s3, champion)
    _deploy(airflow, trigger, {"version": shadow, "mode": "shadow"})
    assert mlflow_client.get_model_version_by_alias(MODEL, "shadow").version == shadow
    assert _shadow_of(urls) == shadow

    sent: dict[str, int] = {}
    for size in (1, 7, 7, 1, 7, 1):  # several requests: the workers behind the port share them
        reply = requests.post(f"{urls['serving']}/models/{MODEL}/predict", json={"records": _records(size)}, timeout=30)
        assert reply.status_code == 200 and reply.json()["version"] == str(champion.version), reply.text
        sent[reply.json()["request_id"]] = size
    total = sum(sent.values())

    def landed() -> list[pd.DataFrame] | None:  # a list: a DataFrame has no truth value to poll on
        rows = _shadow_rows(s3, set(sent))
        return [rows] if len(rows) >= total else None

    (rows,) = wait_until(landed, f"{total} shadow rows of the requests sent", timeout=120)
    assert set(rows["model_version"].astype(str)) == {shadow} and len(rows) == total

    _deploy(airflow, trigger, {"mode": "end_shadow"})
    assert _shadow_of(urls) is None
