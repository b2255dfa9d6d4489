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

from modelops import registry
from modelops.config import ModelConfig
from modelops.serving.app import ServingOptions, create_app
from modelops.serving.capture import CaptureOptions, CaptureWriter
from modelops.settings import Settings
from modelops.storage import Store
from modelops.training import build_pipeline, skops_trusted_types

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
    uri = f"sqlite:///{tmp}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_TRACKING_URI": uri,
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MLFLOW_REGISTRY_URI"):
            mp.delenv(name, raising=False)
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(uri)
        client = MlflowClient(tracking_uri=uri)
        experiment_id = mlflow.create_experiment("serving-test", artifact_location=(tmp / "artifacts").as_uri())
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


class _FlakyStore:
    def __init__(self, failures: int):
        self.failures, self.objects = failures, {}

    def put_bytes(self, key, data, content_type):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("S3 is down")
        self.objects[key] = data


def test_capture_writer_retries_then_drops_what_shutdown_cannot_write():
    import pyarrow as pa

    schema = pa.schema([pa.field("i", pa.int64())])
    day = dt.date(2026, 11, 25)
    options = CaptureOptions(flush_records=3, flush_seconds=0.01, max_buffered=6, retry_initial_seconds=0.01,
                             retry_max_seconds=0.02, shutdown_timeout_seconds=0.2)  # fmt: skip
    flaky = CaptureWriter(_FlakyStore(failures=2), options)
    flaky.start()
    flaky.enqueue("capture", "m", day, [{"i": i} for i in range(5)], schema)
    assert flaky.flush(2.0)  # two failed attempts, then written with the same keys
    stats = flaky.close()
    assert stats["written"] == 5 and stats["dropped"] == 0 and stats["write_failures"] == 2
    assert sorted(len(pd.read_parquet(io.BytesIO(b))) for b in flaky.store.objects.values()) == [2, 3]

    down = CaptureWriter(_FlakyStore(failures=10**9), options)
    down.start()
    down.enqueue("capture", "m", day, [{"i": i} for i in range(9)], schema)
    assert down.stats()["pending"] == 6 and down.stats()["dropped"] == 3  # the 3 oldest
    started = time.monotonic()
    stats = down.close()
    assert time.monotonic() - started < 3
    assert stats["written"] == 0 and stats["dropped"] == 9 and stats["pending"] == 0
    down.enqueue("capture", "m", day, [{"i": 0}], schema)  # after shutdown: counted, not kept
    assert down.stats()["dropped"] == 10


class _SlowStore:
    def __init__(self):
        self.entered, self.release, self.objects = threading.Event(), threading.Event(), {}

    def put_bytes(self, key, data, content_type):
        self.entered.set()
        assert self.release.wait(5)
        self.objects[key] = data


def test_capture_writer_counts_rows_cut_from_a_file_in_flight_back_when_it_lands():
    import pyarrow as pa

    schema = pa.schema([pa.field("i", pa.int64())])
    options = CaptureOptions(flush_records=3, flush_seconds=60, max_buffered=6)
    writer = CaptureWriter(_SlowStore(), options)
    writer.start()
    writer.enqueue("capture", "m", dt.date(2026, 11, 25), [{"i": i} for i in range(3)], schema)
    assert writer.store.entered.wait(5)  # the first file is being written
    writer.enqueue("capture", "m", dt.date(2026, 11, 25), [{"i": i} for i in range(3, 9)], schema)
    assert writer.stats()["dropped"] == 3 and writer.stats()["pending"] == 6  # the oldest: the file in flight
    writer.store.release.set()
    assert writer.flush(5.0)
    stats = writer.close()
    assert stats["written"] == 9 and stats["dropped"] == 0 and stats["files"] == 3


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
    assert samples['modelops_predicted_records_total{model="toy",version="1"}'] >= 1
    for line in response.text.splitlines():  # every sample line is "name{labels} number"
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+$", line), line


def _run_id(client) -> str:
    return {m["name"]: m for m in client.get("/models").json()["models"]}["toy"]["run_id"]
