"""The serving endpoint in-process: a real MLflow registry (SQLite in a tmp dir), S3 from moto.

Two tiny models are trained with the project's own pipeline and registered as champions
(``toy``: binary classifier, ``toy_reg``: regression); ``pending`` is configured but has no
champion. Each test builds its own app where it changes state (reload, capture), and shares one
running app where it only reads.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time

import boto3
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from sklearn.datasets import make_classification, make_regression
from tests.unit.local_mlflow import local_mlflow

from modelops import registry
from modelops.config import ModelConfig
from modelops.serving.app import create_app
from modelops.serving.capture import CaptureOptions
from modelops.serving.options import ServingOptions
from modelops.settings import Settings
from modelops.store import Store
from modelops.training.pipelines import build_pipeline
from modelops.training.search_spaces import skops_trusted_types

BUCKET = "serving-test"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY = re.compile(r"^(capture|feedback)/[a-z_]+/dt=\d{4}-\d{2}-\d{2}/[0-9a-f]{32}\.parquet$")

FEATURES = [
    {"name": "x0", "type": "numeric"},
    {"name": "x1", "type": "numeric", "nullable": True},
    {"name": "segment", "type": "categorical"},
    {"name": "region", "type": "categorical", "nullable": True},
]


def make_config(name: str, problem: str = "binary_classification") -> ModelConfig:
    metrics = {"primary": "rmse"} if problem == "regression" else {"primary": "roc_auc"}
    return ModelConfig.model_validate(
        {
            "name": name,
            "problem_type": problem,
            "target": "y",
            "features": FEATURES,
            "data": {"id_column": "row_id", "timestamp_column": "event_time"},
            "metrics": metrics,
        }
    )


CONFIGS = {
    "toy": make_config("toy"),
    "toy_reg": make_config("toy_reg", "regression"),
    "pending": make_config("pending"),
}


def make_frame(problem: str, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    if problem == "regression":
        X, y = make_regression(n_samples=n, n_features=2, noise=5.0, random_state=0)
    else:
        X, y = make_classification(n_samples=n, n_features=2, n_informative=2, n_redundant=0, random_state=0)
    df = pd.DataFrame(X, columns=["x0", "x1"])
    df["segment"] = np.where(df["x0"] > 0, "high", "low")
    # Region codes are strings in training: a request's 2 must mean "2", not an unseen category.
    df["region"] = pd.Series(rng.choice(["1", "2", "3"], size=n), dtype=object)
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    df.loc[rng.random(n) < 0.1, "region"] = np.nan
    df["y"] = y
    return df


def log_and_register(mlflow, client, config: ModelConfig, pipeline, experiment_id: str, tag: str) -> str:
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            skops_trusted_types=skops_trusted_types("linear"),
            pip_requirements=["scikit-learn"],  # skips requirement inference (a subprocess, ~4 s per model)
        )
    version = registry.register_version(
        config.name, info.model_uri, run.info.run_id, {"airflow_run_id": tag}, mlflow_client=client
    )
    return version.version


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """AWS test credentials, moto's S3 with the bucket, and an MLflow registry with champions."""
    tmp = tmp_path_factory.mktemp("serving")
    with local_mlflow(tmp, "serving-test") as registry_env:
        import mlflow

        uri, client, experiment_id = registry_env.uri, registry_env.client, registry_env.experiment_id
        pipelines = {}
        for name in ("toy", "toy_reg"):
            config = CONFIGS[name]
            frame = make_frame(config.problem_type)
            pipeline = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
            version = log_and_register(mlflow, client, config, pipeline, experiment_id, f"{name}-1")
            client.set_registered_model_alias(name, registry.CHAMPION, version)
            pipelines[name] = pipeline
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            yield {"uri": uri, "client": client, "s3": s3, "pipelines": pipelines, "experiment_id": experiment_id}


def make_app(env, *, bucket: str = BUCKET, token: str | None = TOKEN, **options):
    settings = Settings(
        bucket=bucket,
        aws_endpoint_url=None,
        aws_region="us-east-1",
        mlflow_tracking_uri=env["uri"],
        serving_url="http://testserver",
        serving_token=token,
    )
    capture = {"flush_records": 1000, "flush_seconds": 60.0, "retry_initial_seconds": 0.01, "retry_max_seconds": 0.05}
    capture.update(options.pop("capture", {}))
    serving_options = ServingOptions(capture=CaptureOptions(**capture), **options)
    store = Store(bucket=bucket, client=env["s3"])
    return create_app(settings, CONFIGS, options=serving_options, store=store)


@pytest.fixture(scope="module")
def client(env):
    """One running app for the tests that only read (its capture is flushed at module end)."""
    with TestClient(make_app(env, max_batch=5)) as test_client:
        yield test_client


def record(i: int = 0, **changes) -> dict:
    row = {"x0": 0.5 - i, "x1": 1.25 * i, "segment": "high" if i % 2 else "low", "region": "2"}
    row.update(changes)
    return row


def read_files(env, prefix: str, bucket: str = BUCKET) -> dict[str, pd.DataFrame]:
    keys = [item["Key"] for item in env["s3"].list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {
        key: pd.read_parquet(io.BytesIO(env["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())) for key in keys
    }


def read_rows(env, prefix: str, bucket: str = BUCKET) -> tuple[list[str], pd.DataFrame]:
    files = read_files(env, prefix, bucket)
    return list(files), (pd.concat(files.values(), ignore_index=True) if files else pd.DataFrame())


# Predict -------------------------------------------------------------------------------------------


def test_predict_single_and_batch_match_the_pipeline(client, env):
    single = client.post("/models/toy/predict", json={"record": record(1)})
    assert single.status_code == 200, single.text
    body = single.json()
    assert body["model"] == "toy" and body["version"] == "1" and len(body["request_id"]) == 32
    assert body["classes"] == [0, 1] and len(body["predictions"]) == 1
    assert single.headers["X-Request-ID"] == body["request_id"]

    batch = [
        record(0),
        record(1, x1=None, region=None),  # nulls in nullable features
        {"x0": 2.0, "segment": "low"},  # nullable features omitted
        record(3, row_id="r-3", event_time="2026-11-25T10:00:00Z"),  # pass-through columns
    ]
    response = client.post("/models/toy/predict", json={"records": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    frame = pd.DataFrame(
        {
            "x0": [r["x0"] for r in batch],
            "x1": [np.nan if r.get("x1") is None else r["x1"] for r in batch],
            "segment": pd.Series([r["segment"] for r in batch], dtype=object),
            "region": pd.Series([r.get("region") or np.nan for r in batch], dtype=object),
        }
    )
    pipeline = env["pipelines"]["toy"]
    assert body["predictions"] == pipeline.predict(frame).tolist()
    np.testing.assert_allclose(body["probabilities"], pipeline.predict_proba(frame))
    assert all(abs(sum(row) - 1) < 1e-9 for row in body["probabilities"])

    # A numeric code for a category learned from strings means the same category.
    as_number = client.post("/models/toy/predict", json={"record": record(1, region=2)}).json()
    as_text = client.post("/models/toy/predict", json={"record": record(1, region="2")}).json()
    assert as_number["probabilities"] == as_text["probabilities"]


def test_predict_regression_has_no_probabilities(client, env):
    response = client.post("/models/toy_reg/predict", json={"records": [record(0), record(1)]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "probabilities" not in body and "classes" not in body
    assert len(body["predictions"]) == 2 and all(isinstance(p, float) for p in body["predictions"])


BAD_REQUESTS = {
    "missing required feature": ({"records": [record(0), {"x1": 1.0, "segment": "low"}]}, "x0", 1, "missing"),
    "string for numeric": ({"records": [record(0, x0="1.5")]}, "x0", 0, "send a number"),
    "bool for numeric": ({"record": record(0, x0=True)}, "x0", None, "numeric"),  # one record: no index in loc
    "object for categorical": ({"records": [record(0), record(1, segment={"a": 1})]}, "segment", 1, "categorical"),
    "list for categorical": ({"records": [record(0, region=["2"])]}, "region", 0, "categorical"),
    "unknown field": ({"records": [record(0, colour="red")]}, "colour", 0, "unknown field"),
    "target sent as input": ({"records": [record(0, y=1)]}, "y", 0, "target"),
    "null in non-nullable": (
        {"records": [record(0), record(1), record(2, segment=None)]},
        "segment",
        2,
        "not nullable",
    ),
    "pass-through not scalar": ({"records": [record(0, row_id=[1])]}, "row_id", 0, "row_id"),
    "empty list": ({"records": []}, "records", None, "empty"),
    "too many records": ({"records": [record(i) for i in range(6)]}, "records", None, "limit of 5"),
    "both record and records": ({"record": record(0), "records": [record(0)]}, None, None, "not both"),
    "neither record nor records": ({}, "records", None, "send 'records'"),
    "unknown top-level key": ({"instances": [record(0)]}, None, None, "instances"),
    "record not an object": ({"records": [record(0), 7]}, None, None, "records"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_422_naming_the_field(client, case):
    body, field, index, text = BAD_REQUESTS[case]
    response = client.post("/models/toy/predict", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert text in response.text, detail
    if field is not None:
        hits = [d for d in detail if d.get("field") == field or field in d["loc"]]
        assert hits, f"{case}: no problem names field '{field}': {detail}"
        if index is not None:
            assert any(d.get("record_index") == index and index in d["loc"] for d in hits), detail


def test_other_bad_inputs_are_4xx_not_500(client):
    assert client.post("/models/nope/predict", json={"record": record(0)}).status_code == 404
    broken = client.post("/models/toy/predict", content=b'{"records": [', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    infinite = client.post(
        "/models/toy/predict", content=b'{"record": {"x0": Infinity, "segment": "low"}}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert infinite.status_code == 422 and "finite" in infinite.text
    many = client.post("/models/toy/predict", json={"records": [{"bad": i} for i in range(5)]})
    assert many.status_code == 422 and many.json()["problem_count"] == 5 * 3  # unknown + 2 missing each


def test_model_without_champion_is_listed_and_answers_503(client):
    response = client.post("/models/pending/predict", json={"record": record(0)})
    assert response.status_code == 503
    assert "no champion is registered yet" in response.json()["detail"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["ready"] is False
    assert health["models"]["pending"] == {"loaded": False, "reason": "no champion is registered yet"}
    assert health["models"]["toy"] == {"loaded": True, "version": "1"}
    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert listed["pending"]["loaded"] is False and listed["pending"]["version"] is None
    assert listed["toy"]["version"] == "1" and listed["toy"]["model_uri"] == "models:/toy/1"
    assert listed["toy"]["run_id"] and listed["toy"]["loaded_at"]
    assert client.post("/models/pending/reload", headers=AUTH).status_code == 409
    assert "/models/{model}/predict" in client.get("/openapi.json").json()["paths"]


# Hot swap ------------------------------------------------------------------------------------------


def test_reload_requires_the_token_and_swaps_without_failing_requests(env):
    mlflow_client = env["client"]
    with TestClient(make_app(env)) as client:
        assert client.post("/models/toy/reload").status_code == 401
        assert client.post("/models/toy/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403

        source = mlflow_client.get_model_version("toy", "1")
        version = registry.register_version(
            "toy", source.source, source.run_id, {"airflow_run_id": "toy-2"}, mlflow_client=mlflow_client
        ).version
        version = str(version)
        mlflow_client.set_registered_model_alias("toy", registry.CHAMPION, version)
        try:
            statuses, versions, stop = [], set(), threading.Event()

            def hammer():
                while not stop.is_set():
                    r = client.post("/models/toy/predict", json={"records": [record(0), record(1)]})
                    statuses.append(r.status_code)
                    versions.add(r.json().get("version"))

            threads = [threading.Thread(target=hammer) for _ in range(3)]
            for thread in threads:
                thread.start()
            time.sleep(0.1)
            swapped = client.post("/models/toy/reload", headers=AUTH)
            time.sleep(0.1)
            stop.set()
            for thread in threads:
                thread.join()
            assert swapped.status_code == 200, swapped.text
            assert swapped.json() | {"loaded_at": None, "load_seconds": None, "run_id": None} == {
                "model": "toy", "old_version": "1", "new_version": version, "changed": True, "alias": "champion",
                "model_uri": f"models:/toy/{version}", "loaded_at": None, "load_seconds": None, "run_id": None,
            }  # fmt: skip
            assert statuses and set(statuses) == {200}, statuses
            assert versions <= {"1", version} and version in versions
            assert {m["name"]: m["version"] for m in client.get("/models").json()["models"]}["toy"] == version
            assert client.post("/models/toy/predict", json={"record": record(0)}).json()["version"] == version

            pinned = client.post("/models/toy/reload", headers=AUTH, json={"version": "1"})
            assert pinned.status_code == 200 and pinned.json()["new_version"] == "1" and pinned.json()["alias"] is None
            assert client.post("/models/toy/reload", headers=AUTH, json={"version": "99"}).status_code == 404
            assert client.post("/models/toy/reload", headers=AUTH, json={"version": "v2"}).status_code == 422
            assert client.post("/models/nope/reload", headers=AUTH).status_code == 404
        finally:
            mlflow_client.set_registered_model_alias("toy", registry.CHAMPION, "1")
    with TestClient(make_app(env, token=None)) as no_token:
        assert no_token.post("/models/toy/reload", headers=AUTH).status_code == 403


# Capture and feedback ------------------------------------------------------------------------------


def test_capture_files_hold_exactly_the_requests_made(env):
    bucket = "capture-exact"  # its own bucket: other tests' traffic must not count
    env["s3"].create_bucket(Bucket=bucket)
    app = make_app(env, bucket=bucket, capture={"flush_records": 4, "flush_seconds": 30.0})
    sent: dict[str, list[dict]] = {}
    with TestClient(app) as client:
        for size in (1, 5, 2):
            batch = [record(i, row_id=f"id-{size}-{i}") for i in range(size)]
            body = client.post("/models/toy/predict", json={"records": batch}).json()
            sent[body["request_id"]] = [
                dict(r, prediction=str(p)) for r, p in zip(batch, body["predictions"], strict=True)
            ]
        client.post("/models/toy/predict", json={"records": []})  # refused: must not be captured
        assert app.state.serving.writer.flush(5.0)
        files = read_files(env, "capture/toy/", bucket)
    keys, rows = list(files), pd.concat(files.values(), ignore_index=True)
    assert all(KEY.match(key) for key in keys), keys
    for key, frame in files.items():  # at most flush_records rows per file, in its capture day's partition
        assert 1 <= len(frame) <= 4
        assert {f"dt={day}" for day in frame["captured_at"].dt.date.astype(str)} == {key.split("/")[2]}
    assert len(rows) == 8 and set(rows["request_id"]) == set(sent)
    for request_id, batch in sent.items():
        got = rows[rows["request_id"] == request_id].sort_values("record_index")
        assert got["record_index"].tolist() == list(range(len(batch)))
        assert got["row_id"].tolist() == [r["row_id"] for r in batch]
        assert got["x0"].tolist() == [r["x0"] for r in batch]
        assert got["prediction"].tolist() == [r["prediction"] for r in batch]
    assert set(rows["model_version"]) == {"1"} and set(rows["classes"].map(tuple)) == {("0", "1")}
    assert str(rows["captured_at"].dt.tz) == "UTC"


def test_capture_keeps_serving_when_s3_fails_and_bounds_memory(env):
    bucket = "not-created-yet"
    capture = {"flush_records": 5, "flush_seconds": 0.05, "max_buffered": 10, "shutdown_timeout_seconds": 2.0}
    app = make_app(env, bucket=bucket, capture=capture)
    writer = app.state.serving.writer
    ids = []
    with TestClient(app) as client:
        for _ in range(6):
            response = client.post("/models/toy/predict", json={"records": [record(i) for i in range(4)]})
            assert response.status_code == 200, response.text
            ids.append(response.json()["request_id"])
        deadline = time.monotonic() + 5
        while writer.stats()["write_failures"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = writer.stats()
        assert stats["write_failures"] > 0 and stats["written"] == 0
        assert stats["pending"] <= 10 and stats["dropped"] == 24 - stats["pending"] >= 14
        metrics = client.get("/metrics").text
        assert f'modelops_capture_records_dropped_total{{model="toy",stream="capture"}} {stats["dropped"]}' in metrics
        assert client.get("/health").json()["capture"]["dropped"] == stats["dropped"]

        env["s3"].create_bucket(Bucket=bucket)  # S3 comes back: what is buffered is written
        assert writer.flush(5.0)
        after = writer.stats()
    assert after["written"] + after["dropped"] == 24 and after["written"] == stats["pending"]
    keys = [o["Key"] for o in env["s3"].list_objects_v2(Bucket=bucket, Prefix="capture/toy/")["Contents"]]
    got = pd.concat(
        pd.read_parquet(io.BytesIO(env["s3"].get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys
    )
    assert ids[-1] in set(got["request_id"])  # the newest request survives
    assert ids[0] not in set(got["request_id"])  # the oldest was dropped


def test_feedback_lands_in_s3(env):
    app = make_app(env)
    with TestClient(app) as client:
        request_id = client.post("/models/toy/predict", json={"records": [record(0), record(1)]}).json()["request_id"]
        labels = {"labels": [{"request_id": request_id, "record_index": i, "label": i} for i in range(2)]}
        assert client.post("/models/toy/feedback", json=labels).status_code == 401
        response = client.post("/models/toy/feedback", json=labels, headers=AUTH)
        assert response.status_code == 202 and response.json()["accepted"] == 2
        bad = client.post(
            "/models/toy/feedback", headers=AUTH,
            json={"labels": [{"request_id": request_id, "record_index": 0, "label": 1},
                             {"request_id": request_id, "record_index": 1, "label": "maybe"}]},
        )  # fmt: skip
        assert bad.status_code == 422 and bad.json()["detail"][0]["record_index"] == 1
        missing = client.post(
            "/models/toy/feedback", headers=AUTH, json={"labels": [{"request_id": "x", "record_index": 0}]}
        )
        assert missing.status_code == 422 and "label" in missing.text
        reg = client.post(
            "/models/toy_reg/feedback",
            headers=AUTH,
            json={"labels": [{"request_id": "r", "record_index": 0, "label": 12.5}]},
        )
        assert reg.status_code == 202
        assert app.state.serving.writer.flush(5.0)
        keys, rows = read_rows(env, "feedback/toy/")
        _, reg_rows = read_rows(env, "feedback/toy_reg/")
    assert keys and all(KEY.match(k) for k in keys)
    mine = rows[rows["request_id"] == request_id].sort_values("record_index")
    assert mine["label"].tolist() == ["0", "1"] and mine["record_index"].tolist() == [0, 1]
    assert reg_rows["label"].tolist() == [12.5]


# Metrics -------------------------------------------------------------------------------------------


def test_metrics_expose_requests_errors_latency_capture_and_version(client):
    client.post("/models/toy/predict", json={"record": record(0)})
    client.post("/models/toy/predict", json={"records": []})
    client.post("/models/ghost/predict", json={"record": record(0)})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['modelops_requests_total{model="toy",endpoint="predict",status="200"}'] >= 1
    assert samples['modelops_request_errors_total{model="toy",endpoint="predict",status="422"}'] >= 1
    assert samples['modelops_requests_total{model="_unknown",endpoint="predict",status="404"}'] >= 1
    assert samples['modelops_request_duration_seconds_bucket{model="toy",endpoint="predict",le="+Inf"}'] >= 2
    assert samples['modelops_request_duration_seconds_count{model="toy",endpoint="predict"}'] >= 2
    assert samples['modelops_model_version_info{model="toy",version="1",run_id="' + _run_id(client) + '"}'] == 1
    assert samples['modelops_model_loaded{model="pending"}'] == 0
    assert samples['modelops_capture_records_pending{model="toy",stream="capture"}'] >= 1
    assert samples['modelops_capture_records_dropped_total{model="toy",stream="capture"}'] == 0
    assert samples["modelops_capture_writer_cpu_seconds_total"] >= 0  # nothing written yet: the writer's CPU so far
    assert samples['modelops_predicted_records_total{model="toy",version="1"}'] >= 1
    for line in response.text.splitlines():  # every sample line is "name{labels} number"
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+$", line), line


def _run_id(client) -> str:
    return {m["name"]: m for m in client.get("/models").json()["models"]}["toy"]["run_id"]


# Scoring concurrent requests together ----------------------------------------------------------------


class _GatedPipeline:
    """Wraps a fitted pipeline: records each model call's row count; the first call waits for a gate."""

    def __init__(self, pipeline, fail_on_x0: float | None = None):
        self.pipeline, self.fail_on_x0 = pipeline, fail_on_x0
        self.calls: list[int] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def _enter(self, frame):
        self.calls.append(len(frame))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.gate.wait(10)
        if self.fail_on_x0 is not None and (frame["x0"] == self.fail_on_x0).any():
            raise ValueError(f"this version cannot score x0 == {self.fail_on_x0}")

    def predict_proba(self, frame):
        self._enter(frame)
        return self.pipeline.predict_proba(frame)

    def predict(self, frame):
        self._enter(frame)
        return self.pipeline.predict(frame)


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _post_in_threads(client, bodies: list[dict]) -> tuple[list[threading.Thread], dict[int, object]]:
    answers: dict[int, object] = {}

    def send(i, body):
        answers[i] = client.post("/models/toy/predict", json=body)

    threads = [threading.Thread(target=send, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    return threads, answers


def test_concurrent_requests_share_one_model_call_and_one_version(env):
    """Requests that queue while the model is busy are scored together, by the version current when
    their call starts, and each gets (and is captured with) exactly its own rows and that version."""
    import dataclasses

    bucket = "batched"
    env["s3"].create_bucket(Bucket=bucket)
    app = make_app(env, bucket=bucket)
    pipeline = env["pipelines"]["toy"]
    with TestClient(app) as client:
        slot = app.state.serving.slots["toy"]
        v1 = dataclasses.replace(slot.current, pipeline=_GatedPipeline(pipeline))
        v2 = dataclasses.replace(slot.current, version="2", pipeline=_GatedPipeline(pipeline))
        v2.pipeline.gate.set()
        slot.current = v1
        first, first_answers = _post_in_threads(client, [{"record": record(0)}])
        assert v1.pipeline.entered.wait(10)  # version 1's call is running, with one row
        slot.current = v2  # a hot swap while that call runs
        bodies = [{"records": [record(10 * k + i) for i in range(k + 1)]} for k in range(5)]
        rest, answers = _post_in_threads(client, bodies)
        _wait_until(lambda: len(slot.batcher._queue) == 5, "five queued requests")
        v1.pipeline.gate.set()
        for thread in first + rest:
            thread.join()
        assert v1.pipeline.calls == [1] and v2.pipeline.calls == [1 + 2 + 3 + 4 + 5]
        assert first_answers[0].status_code == 200 and first_answers[0].json()["version"] == "1"
        for k, body in enumerate(bodies):
            answer = answers[k]
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert got["version"] == "2" and answer.headers["X-Request-ID"] == got["request_id"]
            frame = pd.DataFrame(body["records"])
            frame["segment"] = frame["segment"].astype(object)
            frame["region"] = frame["region"].astype(object)
            assert got["predictions"] == pipeline.predict(frame).tolist()
            np.testing.assert_allclose(got["probabilities"], pipeline.predict_proba(frame))
        assert app.state.serving.writer.flush(5.0)
        _, rows = read_rows(env, "capture/toy/", bucket)
    versions = {answers[k].json()["request_id"]: "2" for k in range(5)} | {first_answers[0].json()["request_id"]: "1"}
    assert len(rows) == 16 and set(rows["request_id"]) == set(versions)
    for request_id, version in versions.items():
        mine = rows[rows["request_id"] == request_id].sort_values("record_index")
        assert set(mine["model_version"]) == {version}
        assert mine["record_index"].tolist() == list(range(len(mine)))
    for k, body in enumerate(bodies):
        mine = rows[rows["request_id"] == answers[k].json()["request_id"]].sort_values("record_index")
        assert mine["x0"].tolist() == [r["x0"] for r in body["records"]]
        assert mine["prediction"].tolist() == [str(p) for p in answers[k].json()["predictions"]]


def test_a_champion_that_failed_to_load_at_start_is_served_once_a_retry_succeeds(env):
    """MLflow unreachable when serving starts: the model answers 503 naming the failure, then is
    loaded in the background without a reload call; a model without a champion is not retried."""
    app = make_app(env, capture_enabled=False, load_retry_seconds=0.05)
    state = app.state.serving
    real_load, attempts = state.load, {"toy": 0, "toy_reg": 0}

    def flaky_load(slot, version=None):
        name = slot.config.name
        attempts[name] = attempts.get(name, 0) + 1
        if name == "toy" and attempts[name] <= 2:
            raise ConnectionError("registry unreachable")
        return real_load(slot, version)

    state.load = flaky_load
    with TestClient(app) as client:
        first = client.post("/models/toy/predict", json={"record": record(0)})
        if first.status_code == 503:  # the first background retry may already have run
            assert "registry unreachable" in first.json()["detail"], first.text
        _wait_until(lambda: client.get("/health").json()["models"]["toy"].get("version") == "1", "toy loaded on retry")
        assert attempts["toy"] == 3 and state.slots["toy"].retry_at is None
        answer = client.post("/models/toy/predict", json={"record": record(0)})
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        assert attempts["toy_reg"] == 1  # loaded at start, never retried
        calls = dict(attempts)
        assert state.retry_failed_loads() == [] and attempts == calls  # nothing left to retry


def test_a_request_the_model_cannot_score_fails_alone(env):
    import dataclasses

    app = make_app(env)
    with TestClient(app) as client:
        slot = app.state.serving.slots["toy"]
        gated = _GatedPipeline(env["pipelines"]["toy"], fail_on_x0=999.0)
        slot.current = dataclasses.replace(slot.current, pipeline=gated)
        first, _ = _post_in_threads(client, [{"record": record(0)}])
        assert gated.entered.wait(10)
        bodies = [{"records": [record(1)]}, {"records": [record(2), record(3, x0=999.0)]}, {"record": record(4)}]
        rest, answers = _post_in_threads(client, bodies)
        _wait_until(lambda: len(slot.batcher._queue) == 3, "three queued requests")
        gated.gate.set()
        for thread in first + rest:
            thread.join()
    assert [answers[k].status_code for k in range(3)] == [200, 422, 200]
    detail = answers[1].json()["detail"][0]
    assert detail["type"] == "unscorable" and "cannot score x0 == 999.0" in detail["msg"]
    assert gated.calls[:2] == [1, 4]  # the shared call failed, then each request went alone


def test_predict_body_checks_name_the_problem(client):
    wrong_type = client.post("/models/toy/predict", content=b'{"record": {}}', headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 422 and "application/json" in wrong_type.text
    empty = client.post("/models/toy/predict", content=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body"]
    not_a_list = client.post("/models/toy/predict", json={"records": {"x0": 1}})
    assert not_a_list.status_code == 422 and not_a_list.json()["detail"][0]["field"] == "records"
    huge = client.post(
        "/models/toy/predict", content=b'{"record": {"x0": 123456789012345678901234567890, "segment": "low"}}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    # Beyond 64 bits: parsed the lenient way, still a number, then refused as absurd by the serving guard.
    assert huge.status_code == 422 and huge.json()["detail"][0]["type"] == "out_of_range", huge.text
    spec = client.get("/openapi.json").json()["paths"]["/models/{model}/predict"]["post"]
    schema = spec["requestBody"]["content"]["application/json"]["schema"]
    assert {"records", "record"} <= set(schema["properties"]) and schema["additionalProperties"] is False
    assert "X-Modelops-Event-Time" in {p["name"] for p in spec["parameters"]}


# Event time for simulated traffic --------------------------------------------------------------------


EVENT = {"X-Modelops-Event-Time": "2026-11-18T12:00:00Z"}


def test_event_time_is_refused_unless_the_server_accepts_it_and_the_token_comes_with_it(env):
    with TestClient(make_app(env)) as client:  # production default: not accepted
        refused = client.post("/models/toy/predict", json={"record": record(0)}, headers=EVENT | AUTH)
        assert refused.status_code == 403
        assert "X-Modelops-Event-Time" in refused.text and "MODELOPS_SERVING_ACCEPT_EVENT_TIME" in refused.text
        labels = {"labels": [{"request_id": "r", "record_index": 0, "label": 1}]}
        assert client.post("/models/toy/feedback", json=labels, headers=EVENT | AUTH).status_code == 403
        assert client.post("/models/toy/predict", json={"record": record(0)}).status_code == 200  # no header: fine
    with TestClient(make_app(env, accept_event_time=True)) as client:
        for headers in (EVENT, EVENT | {"Authorization": "Bearer wrong"}):
            response = client.post("/models/toy/predict", json={"record": record(0)}, headers=headers)
            assert response.status_code == 403, response.text
            assert "X-Modelops-Event-Time" in response.text and "bearer token" in response.text
        for value in ("yesterday", "2026-11-18T12:00:00", "2026-13-01T00:00:00Z", "", "0001-01-01T00:00:00+01:00"):
            response = client.post(
                "/models/toy/predict", json={"record": record(0)}, headers=AUTH | {"X-Modelops-Event-Time": value}
            )
            assert response.status_code == 400, (value, response.text)
            assert "X-Modelops-Event-Time" in response.text and "ISO-8601" in response.text
            bad_feedback = client.post(
                "/models/toy/feedback", json=labels, headers=AUTH | {"X-Modelops-Event-Time": value}
            )
            assert bad_feedback.status_code == 400 and "X-Modelops-Event-Time" in bad_feedback.text


def test_event_time_sets_capture_day_and_feedback_time(env):
    bucket = "event-time"
    env["s3"].create_bucket(Bucket=bucket)
    app = make_app(env, bucket=bucket, accept_event_time=True)
    with TestClient(app) as client:
        stamped = client.post(
            "/models/toy/predict", json={"records": [record(0), record(1)]},
            headers=AUTH | {"X-Modelops-Event-Time": "2026-11-18T23:30:00-02:00"},  # 01:30 UTC on the 19th
        )  # fmt: skip
        assert stamped.status_code == 200, stamped.text
        plain = client.post("/models/toy/predict", json={"record": record(2)})
        labels = {"labels": [{"request_id": stamped.json()["request_id"], "record_index": 0, "label": 1}]}
        fed = client.post("/models/toy/feedback", json=labels, headers=AUTH | EVENT)
        assert fed.status_code == 202 and fed.json()["received_at"] == "2026-11-18T12:00:00+00:00"
        assert app.state.serving.writer.flush(5.0)
        captured = read_files(env, "capture/toy/", bucket)
        feedback = read_files(env, "feedback/toy/", bucket)
    by_request = {}
    for key, frame in captured.items():
        for request_id, group in frame.groupby("request_id"):
            by_request[request_id] = (key.split("/")[2], group)
    day, rows = by_request[stamped.json()["request_id"]]
    assert day == "dt=2026-11-19" and len(rows) == 2
    assert set(rows["captured_at"]) == {pd.Timestamp("2026-11-19T01:30:00Z")}
    today = dt.datetime.now(dt.UTC).date()
    assert by_request[plain.json()["request_id"]][0] in {f"dt={today}", f"dt={today - dt.timedelta(days=1)}"}
    [(key, frame)] = feedback.items()
    assert key.split("/")[2] == "dt=2026-11-18"
    assert frame["received_at"].tolist() == [pd.Timestamp("2026-11-18T12:00:00Z")]


def test_a_model_declared_after_start_is_served_from_its_first_reload(env, tmp_path, monkeypatch):
    """Serving reads the models folder: a new declaration needs no restart, only the deploy's reload."""
    import yaml

    folder = tmp_path / "models"
    folder.mkdir()

    def declare(name: str) -> None:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(CONFIGS[name].model_dump(mode="json"), sort_keys=False))

    declare("toy")
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(folder))
    settings = Settings(
        bucket=BUCKET,
        aws_endpoint_url=None,
        aws_region="us-east-1",
        mlflow_tracking_uri=env["uri"],
        serving_url="http://testserver",
        serving_token=TOKEN,
    )
    app = create_app(settings, None, options=ServingOptions(capture_enabled=False))
    with TestClient(app) as client:
        assert [m["name"] for m in client.get("/models").json()["models"]] == ["toy"]
        assert client.post("/models/toy_reg/predict", json={"record": record(0)}).status_code == 404
        assert client.post("/models/toy_reg/reload", headers=AUTH).status_code == 404  # not declared yet

        declare("toy_reg")
        assert client.post("/models/toy_reg/reload").status_code == 401  # still a write: token first
        loaded = client.post("/models/toy_reg/reload", headers=AUTH)
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["new_version"] == "1"
        answer = client.post("/models/toy_reg/predict", json={"record": record(0)})
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        assert [m["name"] for m in client.get("/models").json()["models"]] == ["toy", "toy_reg"]
        assert 'model="toy_reg"' in client.get("/metrics").text  # a label of its own, not "_unknown"
