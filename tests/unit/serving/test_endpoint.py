"""The serving endpoint in-process: a real MLflow registry (SQLite in a tmp dir), S3 from moto.

Two tiny models are trained with the project's own pipeline and registered as champions
(``toy``: binary classifier, ``toy_reg``: regression); ``pending`` is configured but has no
champion. Each test builds its own app where it changes state (reload, capture), and shares one
running app where it only reads.
"""

from __future__ import annotations

import re
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.unit.serving.serving_helpers import (
    AUTH,
    BUCKET,
    CONFIGS,
    TOKEN,
    make_app,
    make_frame,
    record,
)

from modelops import registry
from modelops.serving.app import create_app
from modelops.serving.champion import scoring_path_of
from modelops.serving.compiled import COMPILED, PIPELINE, SCORING_PATH_TAG
from modelops.serving.compiled.parity import SCORING_PATH_REASON_TAG
from modelops.serving.options import ServingOptions
from modelops.settings import Settings

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
    # The fixture registers its versions without a deploy: no parity verdict, so the pipeline scores.
    assert health["models"]["toy"] == {"loaded": True, "version": "1", "scoring_path": "pipeline"}
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
            worker = client.get("/health").json()["worker"]["id"]
            assert swapped.json() | {"loaded_at": None, "load_seconds": None, "run_id": None} == {
                "model": "toy", "worker": worker, "old_version": "1", "new_version": version, "changed": True, "alias": "champion",
                "model_uri": f"models:/toy/{version}", "loaded_at": None, "load_seconds": None, "run_id": None, "scoring_path": "pipeline",
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


# Scoring path: compiled only after a passed parity gate at deploy -----------------------------------
# A version tagged ``scoring_path=compiled`` is scored by its compiled form and answers as the
# pipeline; ``pipeline`` or no tag (deployed before compiled scoring) is scored by the pipeline;
# ``MODELOPS_SERVING_SCORING_PATH=pipeline`` forces the pipeline. ``/models``, ``/health`` and
# ``/metrics`` show the path.


@pytest.fixture(scope="module")
def versions(env):
    """New versions of version 1's model, tagged by a deploy's parity gate (1 itself has no tag)."""
    client = env["client"]
    made = {}
    for name, tag, label in (("toy", COMPILED, "c"), ("toy", PIPELINE, "p"), ("toy_reg", COMPILED, "r")):
        first = client.get_model_version(name, "1")
        tags = {
            "airflow_run_id": f"{name}-path-{label}",
            SCORING_PATH_TAG: tag,
            SCORING_PATH_REASON_TAG: f"test: {tag}",
        }
        made[label] = str(
            registry.register_version(name, first.source, first.run_id, tags, mlflow_client=client).version
        )
    return made


def _reload(client, model: str, version: str) -> str:
    response = client.post(f"/models/{model}/reload", headers=AUTH, json={"version": version})
    assert response.status_code == 200, response.text
    return response.json()["scoring_path"]


def _described(client, model: str) -> dict:
    return next(m for m in client.get("/models").json()["models"] if m["name"] == model)


def _batch() -> list[dict]:
    return [record(0), record(1, x1=None, region=None), {"x0": 2.0, "segment": "low"}, record(3, region="9")]


def _frame(batch: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x0": [r["x0"] for r in batch],
            "x1": [np.nan if r.get("x1") is None else r["x1"] for r in batch],
            "segment": pd.Series([r["segment"] for r in batch], dtype=object),
            "region": pd.Series([r.get("region") or np.nan for r in batch], dtype=object),
        }
    )


def test_the_tag_chooses_the_path_and_answers_equal_the_pipeline(env, versions):
    batch = _batch()
    with TestClient(make_app(env)) as client:
        described = _described(client, "toy")
        assert described["version"] == "1" and described["scoring_path"] == PIPELINE
        assert "before compiled scoring" in described["scoring_path_reason"]

        assert _reload(client, "toy", versions["c"]) == COMPILED
        described = _described(client, "toy")
        assert described["scoring_path"] == COMPILED and described["scoring_path_reason"] == "test: compiled"
        assert client.get("/health").json()["models"]["toy"]["scoring_path"] == COMPILED
        metrics = client.get("/metrics").text
        assert f'modelops_model_scoring_path_info{{model="toy",version="{versions["c"]}",path="compiled"}} 1' in metrics
        body = client.post("/models/toy/predict", json={"records": batch}).json()
        expected = env["pipelines"]["toy"].predict_proba(_frame(batch))
        np.testing.assert_allclose(np.asarray(body["probabilities"]), expected, atol=1e-9)
        assert body["predictions"] == env["pipelines"]["toy"].predict(_frame(batch)).tolist()

        _reload(client, "toy_reg", versions["r"])
        assert _described(client, "toy_reg")["scoring_path"] == COMPILED
        body = client.post("/models/toy_reg/predict", json={"records": batch}).json()
        np.testing.assert_allclose(body["predictions"], env["pipelines"]["toy_reg"].predict(_frame(batch)), rtol=1e-9)

        _reload(client, "toy", versions["p"])
        assert _described(client, "toy")["scoring_path"] == PIPELINE


def test_the_pipeline_can_be_forced(env, versions):
    with TestClient(make_app(env, scoring_path="pipeline")) as client:
        _reload(client, "toy", versions["c"])
        described = _described(client, "toy")
        assert described["scoring_path"] == PIPELINE and "forced" in described["scoring_path_reason"]
        assert client.post("/models/toy/predict", json={"record": record(1)}).status_code == 200


def test_a_compiled_verdict_on_a_pipeline_that_does_not_lower_here_serves_the_pipeline(env):
    frame = make_frame("binary_classification")
    config = CONFIGS["toy"]
    steps = [("feature_same", FunctionTransformer()), *env["pipelines"]["toy"].steps]
    own = Pipeline(steps).fit(frame[config.feature_names], frame["y"])
    scorer, path, reason = scoring_path_of(own, {SCORING_PATH_TAG: COMPILED})
    assert scorer is None and path == PIPELINE
    assert "lowering failed in serving" in reason and "feature_same" in reason


def test_a_worker_runs_with_its_gil_switch_interval_and_restores_the_process_one(env):
    """The interval is the worker's (``MODELOPS_SERVING_GIL_SWITCH_MS``) while it serves; a process
    that built the app (a test, an embedding) gets its own back when the worker stops."""
    before = sys.getswitchinterval()
    with TestClient(make_app(env, gil_switch_ms=0.25)) as client:
        assert client.get("/health").status_code == 200
        assert sys.getswitchinterval() == pytest.approx(0.00025)
    assert sys.getswitchinterval() == before
