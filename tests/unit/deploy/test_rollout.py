"""Deployment against a fake serving endpoint (a local http.server): the post-deploy check passes
and fails for the right reasons, a failed deployment rolls back and says so in the decision
record, rollback moves ``champion`` with a history entry, ``served_version`` reads what serves."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from tests.unit.local_mlflow import local_mlflow

from modelops import registry
from modelops.config import ModelConfig
from modelops.deploy import rollout, serving_client, steps, verification
from modelops.layout import decision_record_key

MODEL = "toy"
RUN = "manual__2026-12-01T10:00:00+00:00"


def make_config() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": MODEL,
            "problem_type": "binary_classification",
            "target": "y",
            "features": [{"name": "x0", "type": "numeric"}, {"name": "x1", "type": "numeric"}],
            "data": {"timestamp_column": "ts"},
            "metrics": {"primary": "roc_auc"},
        }
    )


class FakeServing:
    """What the serving service answers; tests change the fields and read ``requests``."""

    def __init__(self) -> None:
        self.version: str | None = "1"
        self.predictions: list | None = None  # None: echo the expected ones set by the test
        self.answer_version: str | None = None  # None: the served version
        self.predict_status = 200
        self.reload_status = 200
        self.requests: list[tuple[str, str, dict]] = []

    def handle(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        self.requests.append((method, path, body))
        if method == "GET" and path == "/models":
            return 200, {"models": [{"name": MODEL, "version": self.version}]}
        if method == "POST" and path == f"/models/{MODEL}/reload":
            if self.reload_status != 200:
                return self.reload_status, {"detail": "no such version"}
            old, self.version = self.version, body.get("version", self.version)
            return 200, {"old_version": old, "new_version": self.version}
        if method == "POST" and path == f"/models/{MODEL}/predict":
            if self.predict_status != 200:
                return self.predict_status, {"detail": "boom"}
            return 200, {"version": self.answer_version or self.version, "predictions": self.predictions}
        return 404, {"detail": f"no route {method} {path}"}


@pytest.fixture
def serving(monkeypatch):
    fake = FakeServing()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            status, payload = fake.handle(method, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Modelops-Worker", "fake-worker-1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._answer("GET")

        def do_POST(self):  # noqa: N802
            self._answer("POST")

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MODELOPS_SERVING_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("MODELOPS_SERVING_TOKEN", "test-token")
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def offline(monkeypatch, serving):
    """The registry's copy stood in for: three input rows, offline predictions [0, 1, 1]."""
    inputs = pd.DataFrame({"x0": [0.1, 0.5, 0.9], "x1": [1.0, np.nan, 3.0]})
    expected = np.array([0, 1, 1])
    monkeypatch.setattr(verification, "_check_inputs", lambda model, uri, sample: inputs)
    monkeypatch.setattr(verification, "_offline_predictions", lambda uri, rows: expected)
    monkeypatch.setattr(mlflow, "set_tracking_uri", lambda uri: None)
    serving.predictions = expected.tolist()
    return inputs


def test_post_deploy_check_passes_when_serving_answers_like_the_registry(serving, offline):
    check = verification.post_deploy_check(make_config(), "1")
    assert check.passed and check.problems == [] and check.records == 3
    assert check.to_json().keys() == {
        "model_uri", "records", "latency_ms", "passed", "problems", "answered_by", "workers_confirmed", "workers_note",
    }  # fmt: skip
    assert check.answered_by == "fake-worker-1"
    assert check.model_uri == f"models:/{MODEL}/1"
    method, path, body = serving.requests[-1]
    assert path == f"/models/{MODEL}/predict" and body["records"][1] == {"x0": 0.5, "x1": None}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"predictions": [0, 0, 1]}, "1 of 3 live predictions differ from offline ones (row 1: 0 vs"),
        ({"predictions": [0, 1]}, "2 predictions for 3 records"),
        ({"answer_version": "7"}, "serving answered with version 7, expected 1"),
        ({"predict_status": 500}, "predict answered 500"),
    ],
)
def test_post_deploy_check_fails_naming_the_problem(serving, offline, change, problem):
    for name, value in change.items():
        setattr(serving, name, value)
    with pytest.raises(verification.PostDeployCheckFailed, match="smoke test of models:/toy/1 against") as caught:
        verification.post_deploy_check(make_config(), "1")
    assert problem in str(caught.value)


def test_answer_problems_on_plain_values():
    def answer(predictions, version="2", status=200):
        return SimpleNamespace(
            status_code=status, text="x", json=lambda: {"version": version, "predictions": predictions}
        )

    assert verification.answer_problems(answer([1.0, 2.0]), "2", [1.0, 2.0 + 1e-9], is_classifier=False) == []
    assert verification.answer_problems(answer([1.0, None]), "2", [1.0, 2.0], is_classifier=False) == [
        "1 of 2 live predictions differ from offline ones (row 1: None vs 2.0)"
    ]
    assert verification.answer_problems(answer(["a"]), "2", ["a"], is_classifier=True) == []
    assert verification.answer_problems(answer([], status=503), "2", ["a"], is_classifier=True) == [
        "predict answered 503: x"
    ]


def test_served_version_and_reload(serving):
    assert serving_client.served_version(MODEL) == "1"
    assert serving_client.served_version("other") is None
    result = serving_client.reload_serving(MODEL, "3")
    assert result == {"old_version": "1", "new_version": "3"}
    assert serving_client.served_version(MODEL) == "3"


def test_reload_refusals_say_why(serving, monkeypatch):
    serving.reload_status = 404
    with pytest.raises(serving_client.DeployError, match="serving refused to load 'toy' version 9: 404"):
        serving_client.reload_serving(MODEL, "9")
    monkeypatch.delenv("MODELOPS_SERVING_TOKEN")
    with pytest.raises(serving_client.DeployError, match="MODELOPS_SERVING_TOKEN is not set"):
        serving_client.reload_serving(MODEL, "1")


@pytest.fixture
def versions(store, tmp_path, serving):
    """Versions 1 and 2 in a local registry: 2 is champion (and served by the fake), 1 previous-champion."""
    with local_mlflow(tmp_path, "rollout-test") as ml:
        made = []
        for run_name in ("run-1", "run-2"):
            with mlflow.start_run(experiment_id=ml.experiment_id) as run:
                mlflow.log_text("stand-in", "model/MLmodel")
            made.append(
                registry.register_version(
                    MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id, {"airflow_run_id": run_name}
                )
            )
        v1, v2 = (str(v.version) for v in made)
        registry.set_alias(MODEL, registry.PREVIOUS, v1, reason="setup", actor="test", store=store)
        registry.set_alias(MODEL, registry.CHAMPION, v2, reason="setup", actor="test", store=store)
        serving.version = v2
        yield v1, v2


def test_rollback_goes_to_previous_champion_and_records_why(versions, store, serving):
    v1, v2 = versions
    rolled = rollout.rollback(MODEL, reason="bad answers", actor="alice via rollback_toy", run_id=RUN, store=store)
    assert (rolled.champion, str(rolled.rolled_back_from), rolled.serving) == (v1, v2, v1)
    assert rolled.summary().keys() == {
        "champion", "rolled_back_from", "serving", "workers_confirmed", "workers_lagging", "workers_note",
    }  # fmt: skip
    assert rolled.workers_confirmed == [] and "no live serving worker heartbeat" in rolled.workers_note
    assert str(registry.version_for_alias(MODEL, registry.CHAMPION).version) == v1
    last = registry.alias_history(MODEL, store)[-1]
    assert last["reason"] == "rollback: bad answers" and last["actor"] == "alice via rollback_toy"
    assert last["airflow_run_id"] == RUN
    assert serving.requests[-1][1:] == (f"/models/{MODEL}/reload", {"version": v1})


def test_rollback_without_previous_champion_leaves_champion(store, tmp_path, serving):
    with (
        local_mlflow(tmp_path, "rollout-empty"),
        pytest.raises(serving_client.DeployError, match="model 'toy' has no previous-champion to roll back to"),
    ):
        rollout.rollback(MODEL, reason="why", actor="a", run_id=RUN, store=store)


def test_failed_check_rolls_back_and_updates_the_decision_record(versions, store, serving, monkeypatch):
    v1, v2 = versions
    store.put_json(decision_record_key(MODEL, RUN), {"promote": True})

    def failing_check(model, version, sample):
        raise verification.PostDeployCheckFailed("smoke test of models:/toy/2 failed: 3 predictions for 4 records")

    monkeypatch.setattr(rollout, "post_deploy_check", failing_check)
    monkeypatch.setattr(rollout, "recent_rows_of_version", lambda model, version, store=None: None)
    with pytest.raises(verification.PostDeployCheckFailed, match=f"Rolled back: champion is version {v1} again"):
        rollout.deploy_and_verify(make_config(), v2, actor="retrain_toy", run_id=RUN, store=store)
    record = store.get_json(decision_record_key(MODEL, RUN))
    assert record["smoke_test"]["passed"] is False and "3 predictions for 4 records" in record["smoke_test"]["error"]
    assert record["rollback"]["champion"] == v1
    assert serving.version == v1


def test_deploy_and_verify_records_the_deployment(versions, store, serving, monkeypatch):
    v1, v2 = versions
    serving.version = v1
    store.put_json(decision_record_key(MODEL, RUN), {"promote": True})
    check = verification.ServingCheck(
        model_uri=f"models:/{MODEL}/{v2}", records=4, latency_ms=3.0, passed=True, problems=[]
    )
    monkeypatch.setattr(rollout, "post_deploy_check", lambda model, version, sample: check)
    monkeypatch.setattr(rollout, "recent_rows_of_version", lambda model, version, store=None: None)
    result = rollout.deploy_and_verify(make_config(), v2, actor="deploy_toy", run_id=RUN, store=store)
    recorded = check.to_json() | {"workers_note": result["smoke_test"]["workers_note"]}
    # The stand-in version cannot be loaded: the parity gate chooses the pipeline, says why, and the deploy goes on.
    verdict = result.pop("scoring_path")
    assert verdict["path"] == "pipeline" and "the parity check could not run" in verdict["reason"]
    assert registry.client().get_model_version(MODEL, v2).tags["scoring_path"] == "pipeline"
    assert result == {"version": v2, "previous_served": v1, "smoke_test": recorded}
    assert "no live serving worker heartbeat" in recorded["workers_note"]  # today's behaviour, said so
    assert rollout.DeployResult.from_json(result).version == v2
    record = store.get_json(decision_record_key(MODEL, RUN))
    assert record["deployment"] == {"version": v2, "previous_served": v1, "scoring_path": verdict}
    assert record["smoke_test"]["passed"] is True


def test_restore_version_step_returns_its_record(versions, store, serving, monkeypatch):
    v1, v2 = versions
    check = verification.ServingCheck(
        model_uri=f"models:/{MODEL}/{v1}", records=1, latency_ms=1.0, passed=True, problems=[]
    )
    monkeypatch.setattr(verification, "post_deploy_check", lambda model, version, sample: check)
    monkeypatch.setattr(verification, "recent_rows_of_version", lambda model, version: None)
    monkeypatch.setattr(rollout, "Store", lambda: store)
    result = steps.restore_version(make_config(), "previous-champion", reason="bad day", actor="ops", run_id=RUN)
    assert str(result.pop("rolled_back_from")) == v2  # as the store reports it (an int from SQLite)
    assert result == {
        "champion": v1,
        "serving": v1,
        "served": v1,
        "smoke_test": check.to_json() | {"workers_note": result["smoke_test"]["workers_note"]},
    }
    assert "only the worker that took the reload" in result["smoke_test"]["workers_note"]


def _heartbeat(store, worker_id: str, version: str) -> None:
    import datetime as dt

    from modelops.serving import heartbeat

    worker = heartbeat.WorkerIdentity(id=worker_id)
    record = heartbeat.heartbeat_record(
        worker, {MODEL: {"version": version, "alias": None}}, 10.0, dt.datetime.now(dt.UTC)
    )
    heartbeat.write_heartbeat(store, record)


def test_a_worker_that_does_not_follow_fails_the_deploy_and_the_rollback_records_the_workers(
    versions, store, serving, monkeypatch
):
    v1, v2 = versions
    serving.version = v1
    store.put_json(decision_record_key(MODEL, RUN), {"promote": True})
    _heartbeat(store, "w-took-reload", v2)
    _heartbeat(store, "w-stuck", v1)  # never moves: lags on v2, confirms v1 after the rollback
    monkeypatch.setenv("MODELOPS_DEPLOY_CONVERGENCE_TIMEOUT_SECONDS", "0")
    monkeypatch.setattr(rollout, "post_deploy_check", lambda *a: pytest.fail("smoke test before convergence"))
    monkeypatch.setattr(rollout, "recent_rows_of_version", lambda model, version, store=None: None)
    with pytest.raises(verification.PostDeployCheckFailed, match=r"lagging w-stuck \(serves 1\)") as caught:
        rollout.deploy_and_verify(make_config(), v2, actor="deploy_toy", run_id=RUN, store=store)
    assert f"Rolled back: champion is version {v1} again" in str(caught.value)
    record = store.get_json(decision_record_key(MODEL, RUN))
    assert record["smoke_test"]["workers"]["confirmed"] == ["w-took-reload"]
    assert record["smoke_test"]["workers"]["lagging"] == {"w-stuck": v1}
    assert record["rollback"]["workers_confirmed"] == ["w-stuck"]
    assert record["rollback"]["workers_lagging"] == {"w-took-reload": v2}


def test_deploy_lists_the_workers_that_confirmed(versions, store, serving, monkeypatch):
    v1, v2 = versions
    store.put_json(decision_record_key(MODEL, RUN), {"promote": True})
    _heartbeat(store, "w-a", v2)
    _heartbeat(store, "w-b", v2)
    check = verification.ServingCheck(model_uri=f"models:/{MODEL}/{v2}", records=1, latency_ms=1.0, passed=True, problems=[])  # fmt: skip
    monkeypatch.setattr(rollout, "post_deploy_check", lambda model, version, sample: check)
    monkeypatch.setattr(rollout, "recent_rows_of_version", lambda model, version, store=None: None)
    result = rollout.deploy_and_verify(make_config(), v2, actor="deploy_toy", run_id=RUN, store=store)
    assert result["smoke_test"]["workers_confirmed"] == ["w-a", "w-b"]
    assert result["smoke_test"]["workers_note"] == f"2 live serving worker(s) confirmed version {v2}"
    assert store.get_json(decision_record_key(MODEL, RUN))["smoke_test"]["workers_confirmed"] == ["w-a", "w-b"]
