"""Validation in worker processes keeps the consumer's SQS promises: the message of a file is
deleted only after its result is written, a worker that dies makes its files come back (not lost,
not dead-lettered while valid), and a new pool takes over."""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.ingest import pool_fakes
from tests.unit.ingest.ingest_helpers import DAY, _consume, _csv, _depth, _keys, _put

from modelops.ingest.validator import PooledSuiteValidator, SuiteValidator, make_validator
from modelops.layout import ingest_result_key
from modelops.local import datagen


def _pool(tmp_path: Path, model) -> PooledSuiteValidator:
    suite = tmp_path / "suite.json"
    suite.write_bytes(model.suite_path.read_bytes())
    return PooledSuiteValidator(suite, "csv", 2, worker=pool_fakes.judge_or_die_once, warm=pool_fakes.no_warm_up)


def test_a_dead_worker_returns_its_files_to_the_queue_and_a_new_pool_finishes_them(aws, model, tmp_path):
    keys = {name: f"raw/churn/dt=2026-11-01/{name}.csv" for name in ("a", "b", "bad", "crash", "cut")}
    _put(aws, keys["a"], _csv(1))
    _put(aws, keys["b"], _csv(2))
    _put(aws, keys["bad"], _csv(3).replace(b"premium", b"BAD", 1))
    _put(aws, keys["crash"], _csv(4).replace(b"premium", b"CRASH", 1))
    _put(aws, keys["cut"], datagen.corrupt_batch(datagen.generate_batch("churn", DAY, 20), "truncated_file"))
    validator = _pool(tmp_path, model)
    try:
        summary = _consume(aws, model, validator, concurrency=4)
    finally:
        validator.close()

    store = aws["store"]
    assert validator.restarts >= 1
    assert summary["counts"]["failed"] >= 1  # the crashed file (and any file sharing its pool)
    assert summary["counts"]["validated"] == 3 and summary["counts"]["quarantined"] == 2
    assert _depth(aws) == {"visible": 0, "in_flight": 0}  # every message deleted, none left behind
    assert _depth(aws, aws["dlq"])["visible"] == 0
    etag = store.client.head_object(Bucket=store.bucket, Key=keys["crash"])["ETag"].strip('"')
    marker = store.get_json(ingest_result_key("churn", keys["crash"], etag))
    assert marker["status"] == "validated" and marker["receive_count"] == 2
    assert len(_keys(store, "ingest/churn/results/")) == 5
    report = store.get_json("ingest/churn/reports/dt=2026-11-01/a.csv.validation.json")
    assert report["result"]["worker_pid"] != os.getpid()  # judged in a worker process
    cut = store.get_json("quarantine/churn/dt=2026-11-01/cut.csv.validation.json")
    assert "truncated file" in cut["summary"]  # an unreadable file's error crosses the process boundary


def test_make_validator_runs_in_process_for_zero_and_caps_processes_at_the_cores(model, monkeypatch):
    class NoPool:
        def shutdown(self, **kwargs):
            pass

    monkeypatch.setattr(PooledSuiteValidator, "_start_pool", lambda self: NoPool())
    assert type(make_validator(model, 0)) is SuiteValidator
    pooled = make_validator(model, 64)
    assert isinstance(pooled, PooledSuiteValidator) and pooled.processes == (os.cpu_count() or 1)


def test_workers_start_under_a_foreign_main_and_leave_with_a_killed_consumer(tmp_path, model):
    """As in an Airflow task: __main__ is a script a worker must not re-run; SIGKILL the consumer."""
    import json
    import signal
    import subprocess
    import sys

    import psutil
    from tests.support.polling import wait_until

    suite = tmp_path / "suite.json"
    suite.write_bytes(model.suite_path.read_bytes())
    consumer = subprocess.Popen(
        [sys.executable, str(Path(pool_fakes.__file__).with_name("pool_main.py")), str(suite)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        report = json.loads(consumer.stdout.readline())
    finally:
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
    assert report["success"] and report["worker_pid"] in report["pids"] and len(report["pids"]) == 2
    wait_until(lambda: not any(psutil.pid_exists(pid) for pid in report["pids"]), "workers gone", timeout=120)
