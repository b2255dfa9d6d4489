"""Concurrent predict requests share one model call and one version; a request the model cannot score fails alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from tests.unit.serving.serving_helpers import (
    make_app,
    read_rows,
    record,
)

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
