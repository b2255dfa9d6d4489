"""Shadow scoring: the ``shadow`` alias is scored beside the champion on every request, off the
response path; the answer is the champion's, the shadow's rows go to ``shadow/<model>/`` with the
same request ids, and a failing or slow shadow never fails or slows a request."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.unit.serving.serving_helpers import (
    AUTH,
    CONFIGS,
    log_and_register,
    make_app,
    make_config,
    make_frame,
    read_rows,
    record,
)

from modelops import registry
from modelops.serving.shadow import ShadowRunner
from modelops.training.pipelines import build_pipeline


@pytest.fixture(scope="module")
def shadows(env):
    """A second version of ``toy`` and of ``toy_reg`` trained on inverted targets: they disagree with the champions."""
    import mlflow

    versions, pipelines = {}, {}
    for name in ("toy", "toy_reg"):
        config = CONFIGS[name]
        frame = make_frame(config.problem_type)
        target = 1 - frame["y"] if config.is_classifier else -frame["y"]
        pipeline = build_pipeline(config, "linear").fit(frame[config.feature_names], target)
        versions[name] = str(
            log_and_register(mlflow, env["client"], config, pipeline, env["experiment_id"], f"{name}-shadow")
        )
        pipelines[name] = pipeline
    return versions, pipelines


@pytest.fixture
def shadowed(env, shadows):
    """Both shadows set in the registry for the test, removed after it."""
    for name, version in shadows[0].items():
        env["client"].set_registered_model_alias(name, registry.SHADOW, version)
    yield shadows
    for name in shadows[0]:
        env["client"].delete_registered_model_alias(name, registry.SHADOW)


def _frame(batch: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x0": [r["x0"] for r in batch],
            "x1": [r["x1"] for r in batch],
            "segment": pd.Series([r["segment"] for r in batch], dtype=object),
            "region": pd.Series([r["region"] for r in batch], dtype=object),
        }
    )


@pytest.mark.parametrize("name", ["toy", "toy_reg"])
def test_the_answer_is_the_champions_and_both_predictions_are_captured_apart(env, shadowed, name):
    versions, pipelines = shadowed
    batch = [record(i) for i in range(6)]
    with TestClient(make_app(env, alias_poll_seconds=0)) as client:
        assert client.get("/health").json()["models"][name]["shadow"] == versions[name]
        described = next(m for m in client.get("/models").json()["models"] if m["name"] == name)
        assert described["shadow"] == versions[name] and described["version"] == "1"
        bodies = [client.post(f"/models/{name}/predict", json={"records": batch}).json() for _ in range(3)]
        assert client.app.state.serving.shadow.drain(10)
    champion = env["pipelines"][name].predict(_frame(batch))
    shadow = pipelines[name].predict(_frame(batch))
    assert not np.allclose(champion, shadow)  # they disagree, so an answer from the shadow would show
    for body in bodies:
        assert body["version"] == "1"
        np.testing.assert_allclose(body["predictions"], champion, rtol=1e-9)
    ids = {body["request_id"] for body in bodies}
    _, served = read_rows(env, f"capture/{name}/")
    _, shadowed_rows = read_rows(env, f"shadow/{name}/")
    served, shadowed_rows = served[served["request_id"].isin(ids)], shadowed_rows[shadowed_rows["request_id"].isin(ids)]
    assert set(served["model_version"]) == {"1"} and len(served) == 18
    assert set(shadowed_rows["model_version"]) == {versions[name]} and len(shadowed_rows) == 18
    assert not set(CONFIGS[name].feature_names) & set(shadowed_rows.columns)  # keys and outputs only
    joined = served.merge(shadowed_rows, on=["request_id", "record_index"], suffixes=("", "_shadow"))
    assert len(joined) == 18
    expected = shadow[joined["record_index"].to_numpy()]
    if name == "toy":
        assert joined["prediction_shadow"].tolist() == [str(v) for v in expected]
    else:
        np.testing.assert_allclose(joined["prediction_shadow"].to_numpy(), expected, rtol=1e-9)


def test_a_multiclass_shadow_is_scored_apart_with_its_own_probabilities(env):
    """Three text classes: the answer carries the champion's probabilities, the shadow's rows carry
    the shadow's, class by class, under the same request ids."""
    import mlflow

    config = make_config("toy_multi", "multiclass_classification")
    frame = make_frame(config.problem_type)
    X = frame[config.feature_names]
    champion = build_pipeline(config, "linear").fit(X, frame["y"])
    shadow = build_pipeline(config, "linear").fit(X, frame["y"].map({"ash": "birch", "birch": "cedar", "cedar": "ash"}))
    client = env["client"]
    champion_version = log_and_register(mlflow, client, config, champion, env["experiment_id"], "multi-1")
    shadow_version = log_and_register(mlflow, client, config, shadow, env["experiment_id"], "multi-2")
    client.set_registered_model_alias("toy_multi", registry.CHAMPION, champion_version)
    client.set_registered_model_alias("toy_multi", registry.SHADOW, shadow_version)
    batch = [record(i) for i in range(8)]
    with TestClient(make_app(env, alias_poll_seconds=0, configs={"toy_multi": config})) as test_client:
        body = test_client.post("/models/toy_multi/predict", json={"records": batch}).json()
        assert test_client.app.state.serving.shadow.drain(10)
    expected = champion.predict_proba(_frame(batch))
    assert body["version"] == str(champion_version) and body["classes"] == ["ash", "birch", "cedar"]
    np.testing.assert_allclose(body["probabilities"], expected, atol=1e-9)
    _, rows = read_rows(env, "shadow/toy_multi/")
    rows = rows[rows["request_id"] == body["request_id"]].sort_values("record_index")
    assert set(rows["model_version"]) == {str(shadow_version)} and len(rows) == len(batch)
    np.testing.assert_allclose(
        np.stack(rows["probabilities"].to_numpy()), shadow.predict_proba(_frame(batch)), atol=1e-9
    )
    assert rows["prediction"].tolist() == shadow.predict(_frame(batch)).tolist()
    assert list(rows["classes"].iloc[0]) == ["ash", "birch", "cedar"]
    assert rows["prediction"].tolist() != body["predictions"]  # the shadow's own answers, not the champion's


def test_without_a_shadow_alias_nothing_is_scored_twice(env, shadows):
    with TestClient(make_app(env, alias_poll_seconds=0)) as client:
        assert "shadow" not in client.get("/health").json()["models"]["toy"]
        assert client.post("/models/toy/predict", json={"record": record(1)}).status_code == 200
        assert client.app.state.serving.shadow.stats()["models"] == {}


class _Raises:
    def predict(self, inputs):
        raise RuntimeError("deliberately broken shadow")

    predict_proba = predict


class _Slow:
    def __init__(self, inner, seconds: float):
        self.inner, self.seconds = inner, seconds

    def predict(self, inputs):
        time.sleep(self.seconds)
        return self.inner.predict(inputs)

    def predict_proba(self, inputs):
        time.sleep(self.seconds)
        return self.inner.predict_proba(inputs)


def test_a_failing_shadow_never_fails_a_request_and_is_counted(env, shadowed):
    with TestClient(make_app(env, alias_poll_seconds=0)) as client:
        slot = client.app.state.serving.slots["toy"]
        slot.shadow = dataclasses.replace(slot.shadow, pipeline=_Raises(), scorer=None)
        replies = [client.post("/models/toy/predict", json={"record": record(i)}) for i in range(5)]
        assert [r.status_code for r in replies] == [200] * 5
        assert client.app.state.serving.shadow.drain(10)
        metrics = client.get("/metrics").text
    assert 'modelops_shadow_failed_requests_total{model="toy"} 5' in metrics


class _RefusesHuge:
    """A shadow that cannot score a call holding an x0 above 1e9 (as a model refuses what it never saw)."""

    def __init__(self, inner):
        self.inner = inner

    def predict(self, inputs):
        if (inputs["x0"] > 1e9).any():
            raise ValueError("x0 out of range")
        return self.inner.predict(inputs)

    def predict_proba(self, inputs):
        self.predict(inputs)
        return self.inner.predict_proba(inputs)


def test_a_request_the_shadow_refuses_costs_only_its_own_rows(env, shadowed):
    """Requests scored together (the champion's batch, or the shadow process's merged calls): when
    the shadow refuses one, the others are scored alone and captured; the refusal is counted."""
    from modelops.serving.columns import check_records
    from modelops.serving.scoring import PendingPrediction
    from modelops.serving.shadow import score_shadow

    with TestClient(make_app(env, alias_poll_seconds=0)) as client:
        slot = client.app.state.serving.slots["toy"]
        shadow = dataclasses.replace(slot.shadow, pipeline=_RefusesHuge(slot.shadow.pipeline), scorer=None)
        batches = {"ok-1": [record(1), record(2)], "huge": [record(3, x0=1e12)], "ok-2": [record(4)]}
        pending = [
            PendingPrediction(check_records(slot.config, slot.spec, rows, ("body", "records")), ("body",), request_id)
            for request_id, rows in batches.items()
        ]
        writer = client.app.state.serving.writer
        assert score_shadow(slot, shadow, pending, writer) == (3, 1, 4)  # the group's call, then one per request
        writer.flush()
    _, rows = read_rows(env, "shadow/toy/")
    assert sorted(rows[rows["request_id"].isin(list(batches))]["request_id"]) == ["ok-1", "ok-1", "ok-2"]


def test_a_slow_shadow_falls_behind_without_slowing_the_answers(env, shadowed):
    with TestClient(make_app(env, alias_poll_seconds=0, shadow_max_pending=1, shadow_max_lag_seconds=0.05)) as client:
        state = client.app.state.serving
        slot = state.slots["toy"]
        slot.shadow = dataclasses.replace(slot.shadow, pipeline=_Slow(slot.shadow.pipeline, 0.5), scorer=None)
        started = time.perf_counter()
        replies = [client.post("/models/toy/predict", json={"record": record(i)}) for i in range(6)]
        elapsed = time.perf_counter() - started
        assert [r.status_code for r in replies] == [200] * 6
        assert elapsed < 0.5, f"6 answers took {elapsed:.2f} s behind a 0.5 s shadow"
        assert state.shadow.drain(10)
        counts = state.shadow.stats()["models"]["toy"]
    assert counts["dropped_requests"] >= 4 and counts["scored_records"] <= 2


def test_the_shadow_follows_its_alias_and_ends_when_promoted(env, shadowed):
    versions, _ = shadowed
    app = make_app(env, alias_poll_seconds=3600.0)
    with TestClient(app) as client:
        state, follower = app.state.serving, app.state.follower
        assert state.slots["toy"].shadow.version == versions["toy"]
        env["client"].delete_registered_model_alias("toy", registry.SHADOW)
        follower.follow_once()
        assert state.slots["toy"].shadow is None
        env["client"].set_registered_model_alias("toy", registry.SHADOW, versions["toy"])
        reply = client.post("/models/toy/shadow/reload", headers=AUTH)
        assert reply.status_code == 200 and reply.json()["shadow"] == versions["toy"]
        assert client.post("/models/toy/shadow/reload").status_code in (401, 403)  # token required
        env["client"].set_registered_model_alias("toy", registry.SHADOW, "1")  # the champion itself
        follower.follow_once()
        assert state.slots["toy"].shadow is None


def test_a_stale_call_is_skipped_and_a_full_queue_drops():
    now = [0.0]
    runner = ShadowRunner(None, max_pending=1, max_lag_seconds=1.0, clock=lambda: now[0])

    class Slot:
        config = CONFIGS["toy"]

    runner._pending = 1  # one call waiting: the next is dropped
    assert runner.submit(Slot(), object(), [object(), object()]) is False
    assert runner.stats()["models"]["toy"]["dropped_requests"] == 2
    now[0] = 5.0  # the waiting call runs now
    runner._run(Slot(), object(), [object()], queued_at=1.0)  # waited 4 s > 1 s: skipped, not scored
    assert runner.stats()["pending"] == 0 and runner.stats()["isolation"] == "thread"
    assert runner.stats()["models"]["toy"]["stale_requests"] == 1
    with pytest.raises(ValueError, match="max_pending"):
        ShadowRunner(None, max_pending=0)


def test_a_worker_with_shadow_scoring_off_ignores_the_alias(env, shadowed):
    with TestClient(make_app(env, alias_poll_seconds=0, shadow_enabled=False)) as client:
        assert "shadow" not in client.get("/health").json()["models"]["toy"]
        assert client.post("/models/toy/predict", json={"record": record(1)}).status_code == 200
        reply = client.post("/models/toy/shadow/reload", headers=AUTH)
        assert reply.status_code == 409 and "MODELOPS_SERVING_SHADOW_ENABLED" in reply.text
        assert client.app.state.serving.shadow.stats()["models"] == {}


def test_the_shadow_options_come_from_the_environment():
    from modelops.serving.options import ServingOptions
    from modelops.settings import SettingError

    options = ServingOptions.from_env(
        {"MODELOPS_SERVING_SHADOW_ENABLED": "false", "MODELOPS_SERVING_SHADOW_MAX_PENDING": "8"}
    )
    assert options.shadow_enabled is False and options.shadow_max_pending == 8
    with pytest.raises(SettingError, match="MODELOPS_SERVING_SHADOW_MAX_LAG_SECONDS"):
        ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_MAX_LAG_SECONDS": "0"})
    assert ServingOptions.from_env({}).shadow_isolation == "process"
    assert ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_ISOLATION": "Thread"}).shadow_isolation == "thread"
    with pytest.raises(SettingError, match=r"MODELOPS_SERVING_SHADOW_ISOLATION must be one of \['process', 'thread'\]"):
        ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_ISOLATION": "fork"})
