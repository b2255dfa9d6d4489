"""The shadow scored in a process of its own (``shadow_isolation=process``, the default): a real
child process, S3 over HTTP (moto's server on loopback, since the child cannot see an in-process
mock) and a file-backed MLflow registry. Every answered request is scored by the shadow in the
child, its rows land in ``shadow/<model>/`` with the requests' ids and the shadow's predictions,
and a child that dies is started again on the next call while the worker answers on."""

from __future__ import annotations

import io
import os
import pickle
import signal
import time

import boto3
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from tests.support.aws import aws_test_env
from tests.support.polling import wait_until
from tests.unit.local_mlflow import local_mlflow
from tests.unit.serving.serving_helpers import AUTH, CONFIGS, TOKEN, log_and_register, make_frame, record

from modelops import registry
from modelops.local.stack_config import free_port
from modelops.serving import shadow_process
from modelops.serving.app import create_app
from modelops.serving.capture import CaptureOptions
from modelops.serving.options import ServingOptions
from modelops.settings import Settings
from modelops.store import Store
from modelops.training.pipelines import build_pipeline

BUCKET = "shadow-process"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """moto's S3 server, a registry with toy's champion (v1) and an inverted-target shadow (v2)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with aws_test_env(), local_mlflow(tmp_path_factory.mktemp("shadow-process"), "shadow-process") as mlflow_env:
            import mlflow

            config = CONFIGS["toy"]
            frame = make_frame(config.problem_type)
            X = frame[config.feature_names]
            champion = build_pipeline(config, "linear").fit(X, frame["y"])
            shadow = build_pipeline(config, "linear").fit(X, 1 - frame["y"])
            client = mlflow_env.client
            v1 = log_and_register(mlflow, client, config, champion, mlflow_env.experiment_id, "toy-1")
            v2 = log_and_register(mlflow, client, config, shadow, mlflow_env.experiment_id, "toy-2")
            client.set_registered_model_alias("toy", registry.CHAMPION, v1)
            client.set_registered_model_alias("toy", registry.SHADOW, v2)
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            yield {"endpoint": endpoint, "uri": mlflow_env.uri, "s3": s3, "shadow": shadow, "v2": str(v2)}
    finally:
        server.stop()


def _app(stack, **shadow):
    settings = Settings(
        bucket=BUCKET,
        aws_endpoint_url=stack["endpoint"],
        aws_region="us-east-1",
        mlflow_tracking_uri=stack["uri"],
        serving_url="http://testserver",
        serving_token=TOKEN,
    )
    capture = CaptureOptions(flush_records=1000, flush_seconds=0.2, retry_initial_seconds=0.01, retry_max_seconds=0.05)
    options = ServingOptions(capture=capture, alias_poll_seconds=0, shadow_isolation="process", **shadow)
    store = Store(bucket=BUCKET, client=stack["s3"])
    return create_app(settings, {"toy": CONFIGS["toy"]}, options=options, store=store)


def _shadow_rows(stack) -> pd.DataFrame:
    s3 = stack["s3"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="shadow/toy/").get("Contents", [])]
    frames = [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())) for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def test_the_shadow_scores_in_its_own_process_and_its_rows_land_apart(stack, monkeypatch):
    monkeypatch.setattr(shadow_process, "RESTART_SECONDS", 0.0)
    app = _app(stack)
    runner = app.state.serving.shadow
    batches = [[record(i + 10 * b) for i in range(1 + b)] for b in range(6)]
    ids = []
    with TestClient(app) as client:
        assert client.post("/models/toy/shadow/reload", headers=AUTH).json()["shadow"] == stack["v2"]
        # The child started and loaded the shadow as it was set, before any call (the first ones
        # would otherwise wait out its start-up and be skipped as stale).
        wait_until(
            lambda: runner.stats()["process"]["loaded"].get("toy") == stack["v2"],
            "the shadow process",
            timeout=120,
            interval=0.05,
        )
        for batch in batches[:3]:
            response = client.post("/models/toy/predict", json={"records": batch})
            assert response.status_code == 200 and response.json()["version"] == "1"
            ids.append(response.json()["request_id"])
        assert runner.drain(timeout=120)
        first_child = runner._process.pid
        assert runner.isolation == "process" and first_child not in (None, os.getpid())
        assert os.sched_getscheduler(first_child) == os.SCHED_IDLE  # it takes only CPU time nothing else wants
        assert 1 <= runner.stats()["models"]["toy"]["model_calls"] <= 3
        assert runner.stats()["models"]["toy"]["scored_records"] == 1 + 2 + 3, runner.stats()

        # Rows still in a killed child's buffer die with it, as with any process: wait for the files.
        wait_until(lambda: len(_shadow_rows(stack)) == 1 + 2 + 3, "the shadow process", timeout=120, interval=0.05)
        os.kill(first_child, signal.SIGKILL)  # the child dies: the worker answers on, and starts another
        # A new child is started at once (RESTART_SECONDS is 0 here) and loads the dead one's shadow.
        wait_until(
            lambda: runner._process.pid not in (None, first_child), "the shadow process", timeout=120, interval=0.05
        )
        wait_until(
            lambda: runner.stats()["process"]["loaded"].get("toy") == stack["v2"],
            "the shadow process",
            timeout=120,
            interval=0.05,
        )
        for batch in batches[3:]:
            response = client.post("/models/toy/predict", json={"records": batch})
            assert response.status_code == 200
            ids.append(response.json()["request_id"])
        assert runner.drain(timeout=120)
        counts = runner.stats()["models"]["toy"]
        second_child = runner._process.pid
        assert second_child != first_child
        assert counts["scored_records"] == sum(map(len, batches)) and counts["failed_requests"] == 0
    # Shutdown: the child scored what it had and flushed its capture writer before it exited.
    assert runner._process.pid is None
    rows = _shadow_rows(stack)
    assert len(rows) == counts["scored_records"] and set(rows["model_version"]) == {stack["v2"]}
    assert set(rows["request_id"]) <= set(ids) and set(ids[:3]) <= set(rows["request_id"])
    by_id = dict(zip(ids, batches, strict=True))
    for request_id, part in rows.groupby("request_id"):
        frame = pd.DataFrame(by_id[request_id])[CONFIGS["toy"].feature_names]
        expected = [str(v) for v in stack["shadow"].predict(frame).tolist()]
        assert part.sort_values("record_index")["prediction"].astype(str).tolist() == expected


def test_a_worker_asked_to_gather_has_its_child_score_requests_in_a_row_as_one_call(stack):
    app = _app(stack, shadow_gather_ms=1500)  # far longer than four requests take
    runner = app.state.serving.shadow
    with TestClient(app) as client:
        client.post("/models/toy/shadow/reload", headers=AUTH)
        wait_until(lambda: runner.stats()["process"]["loaded"].get("toy") == stack["v2"], "the shadow", timeout=120)
        before = runner.stats()["models"]["toy"]
        for i in range(4):
            assert client.post("/models/toy/predict", json={"records": [record(i)]}).status_code == 200
        assert runner.drain(timeout=120)
        after = runner.stats()["models"]["toy"]
    assert after["scored_records"] - before["scored_records"] == 4
    assert after["model_calls"] - before["model_calls"] == 1


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="CPUs of the shadow's own need two CPUs or more")
def test_a_shadow_given_cpus_of_its_own_runs_on_those_and_its_worker_on_the_others(stack):
    everything = os.sched_getaffinity(0)
    own = frozenset({max(everything)})
    app = _app(stack, shadow_cpus=own)
    runner = app.state.serving.shadow
    with TestClient(app) as client:
        client.post("/models/toy/shadow/reload", headers=AUTH)
        wait_until(lambda: runner.stats()["process"]["loaded"].get("toy") == stack["v2"], "the shadow", timeout=120)
        assert client.post("/models/toy/predict", json={"records": [record(1)]}).status_code == 200
        assert runner.drain(timeout=120)
        child = runner._process.pid
        threads = os.listdir(f"/proc/{child}/task")
        assert len(threads) > 1  # its capture writer's thread, started after the pin, is pinned too
        assert {frozenset(os.sched_getaffinity(int(t))) for t in threads} == {own}
        assert os.sched_getscheduler(child) == os.SCHED_IDLE
        # The worker (this test's process: TestClient runs the app here), every thread of it.
        worker = {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}
        assert worker == {frozenset(everything - own)}
        assert runner.stats()["models"]["toy"]["scored_records"] >= 1
    # The worker stopped: its threads may run anywhere again.
    assert {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")} == {frozenset(everything)}


def test_the_worker_bounds_calls_in_flight_and_counts_those_lost_with_a_dead_child(monkeypatch):
    """A child that never finishes: the calls in flight stop at ``max_pending`` (the next is
    dropped, not queued), a write never waits for room in the pipe, and killing the child fails
    the calls it held; a new child is started after ``RESTART_SECONDS``."""
    from tests.support.shadow_child import never_finishes

    from modelops.serving.columns import RequestColumns
    from modelops.serving.scoring import PendingPrediction
    from modelops.serving.shadow_process import ShadowProcess

    monkeypatch.setattr(shadow_process, "RESTART_SECONDS", 0.0)
    process = ShadowProcess(
        settings=None,
        capture_options=None,
        scoring_path="auto",
        max_lag_seconds=2.0,
        max_pending=3,
        target=never_finishes,
    )
    config = CONFIGS["toy"]
    columns = RequestColumns(1, {"x0": np.zeros(1), "x1": np.zeros(1)}, {"segment": ["low"], "region": ["1"]}, {})
    call = [PendingPrediction(columns, ("body", "record"), "r-1")]
    try:
        assert process.send(config, "2", call, time.monotonic()) is False  # no child before a shadow is announced
        process.announce(config, "2")
        first = process.pid
        assert [process.send(config, "2", call, time.monotonic()) for _ in range(4)] == [True, True, True, False]
        assert process.in_flight() == 3
        big = [PendingPrediction(RequestColumns(1, {"x0": np.zeros(400_000)}, {}, {}), ("body",), "r-2")]  # 3.2 MB
        process.max_pending = 10
        assert (
            process.send(config, "2", big, time.monotonic()) is False
        )  # more than the pipe holds: dropped, not blocked
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: process.pid not in (None, first), "the shadow process", timeout=120, interval=0.05
        )  # the dead child's calls counted, a new one started
        assert process.counts()["toy"]["failed_requests"] == 3 and process.in_flight() == 0
    finally:
        monkeypatch.setattr(shadow_process, "RESTART_SECONDS", 3600.0)  # no new child while closing
        if process.pid is not None:
            os.kill(process.pid, signal.SIGKILL)  # it would not finish: no graceful close to wait for
        process.close()


def test_calls_waiting_in_the_pipe_are_merged_per_model_version_in_order():
    """Consecutive score calls for one version become one; a load or another version cuts the run."""
    score = lambda name, version, t: ("score", (0, name, version, t, [f"{name}{version}@{t}"]))  # noqa: E731
    load = ("load", ("load", "cfg", "3"))
    runs = shadow_process._runs_of_calls(
        [
            score("a", "2", 1.0),
            score("a", "2", 2.0),
            load,
            score("a", "2", 3.0),
            score("a", "3", 4.0),
            score("a", "3", 5.0),
        ]
    )
    assert runs == [
        ("score", (0, "a", "2", [(1.0, ["a2@1.0"]), (2.0, ["a2@2.0"])])),
        load,
        ("score", (0, "a", "2", [(3.0, ["a2@3.0"])])),
        ("score", (0, "a", "3", [(4.0, ["a3@4.0"]), (5.0, ["a3@5.0"])])),
    ]


def test_an_idle_child_lets_calls_gather_before_it_scores_and_takes_a_backlog_at_once(monkeypatch):
    """The first call finds the child idle: it waits ``gather_seconds`` (the calls that arrive
    meanwhile join it); calls already waiting are taken without a wait; 0 takes each as it comes."""
    read, write = shadow_process._SPAWN.Pipe(duplex=False)
    message = lambda n: pickle.dumps(("score", (0, "toy", "2", float(n), [])))  # noqa: E731
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # three calls arrive while the child waits
        slept.append(seconds)
        for n in (2, 3, 4):
            write.send_bytes(message(n))

    monkeypatch.setattr(shadow_process.time, "sleep", sleep)
    shared = [0, 0]
    write.send_bytes(message(1))
    gathered = shadow_process._next_messages(read, shared, gather_seconds=0.01)
    assert slept == [0.01] and [m[1][3] for m in gathered] == [1.0, 2.0, 3.0, 4.0]
    assert shared[0] == sum(shadow_process._FRAME.size + len(message(n)) for n in (1, 2, 3, 4))

    for n in (5, 6):  # a backlog: no wait
        write.send_bytes(message(n))
    assert [m[1][3] for m in shadow_process._next_messages(read, shared, 0.01)] == [5.0, 6.0] and len(slept) == 1
    write.send_bytes(message(7))
    assert [m[1][3] for m in shadow_process._next_messages(read, shared, 0.0)] == [7.0] and len(slept) == 1
    write.close()
    with pytest.raises(EOFError):
        shadow_process._next_messages(read, shared, 0.01)


def test_the_child_scores_merged_calls_together_and_counts_the_stale_ones(stack):
    """Three calls in one: the one that waited past the lag is stale, the other two are scored as
    one model call whose rows keep each request's id and record indexes."""
    from modelops.serving.champion import ModelSlot
    from modelops.serving.columns import check_records

    config = CONFIGS["toy"]
    models = shadow_process._ChildModels(stack["uri"], "auto")
    assert models.load(config, stack["v2"]).version == stack["v2"]
    spec = ModelSlot(config).spec

    def item(request_id: str, records: list[dict]):
        columns = check_records(config, spec, records, ("body", "records"))
        return (request_id, None, ("body", "records"), shadow_process._pack(columns))  # as the worker sends it

    class Blocks:
        def __init__(self):
            self.blocks = []

        def enqueue(self, stream, model_name, day, block, schema):
            self.blocks.append((stream, block, schema))

    writer, now = Blocks(), time.monotonic()
    calls = [
        (now - 60.0, [item("old", [record(0)])]),
        (now, [item("a", [record(1), record(2)])]),
        (now, [item("b", [record(3)]), item("c", [record(4), record(5), record(6)])]),
    ]
    counts = models.score("toy", stack["v2"], calls, writer, max_lag=5.0)
    assert counts == {"stale_requests": 1, "scored_records": 6, "failed_requests": 0, "model_calls": 1}
    assert len(writer.blocks) == 1  # one model call, one block
    stream, block, schema = writer.blocks[0]
    assert stream == "shadow" and block.length == 6
    assert block.columns["request_id"] == ["a", "a", "b", "c", "c", "c"]
    assert block.columns["record_index"].tolist() == [0, 1, 0, 0, 1, 2]
    # The shadow stream holds keys and outputs: the features live in the served row.
    assert not set(config.feature_names) & set(block.columns) and not set(config.feature_names) & set(schema.names)
    frame = pd.DataFrame([record(i) for i in range(1, 7)])[config.feature_names]
    assert [str(v) for v in block.columns["prediction"]] == [str(v) for v in stack["shadow"].predict(frame)]
    assert models.score("toy", stack["v2"], [(now - 60.0, [item("late", [record(7)])])], writer, 5.0) == {
        "stale_requests": 1
    }


def test_a_call_crosses_the_pipe_as_raw_bytes_and_comes_back_whole():
    """Numeric columns travel as their float64 bytes (NaN kept), the rest as sent."""
    from modelops.serving.columns import RequestColumns

    columns = RequestColumns(
        3, {"x0": np.array([1.5, np.nan, -2.0])}, {"segment": ["low", None, "high"]}, {"note": ["a", "b", "c"]}
    )
    packed = shadow_process._pack(columns)
    assert isinstance(packed[1]["x0"], bytes)
    back = shadow_process._unpack(pickle.loads(pickle.dumps(packed)))
    assert back.length == 3 and back.categorical == columns.categorical and back.passthrough == columns.passthrough
    np.testing.assert_array_equal(back.numeric["x0"], columns.numeric["x0"])
    assert back.numeric["x0"].dtype == np.float64
    assert back.numeric["x0"].flags.writeable  # as the worker's arrays: a step may write in place
