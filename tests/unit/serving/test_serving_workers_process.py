"""``python -m modelops.serving --workers 2`` for real: two worker processes with distinct ids answer on
one port, and each runs its shutdown (heartbeat, capture flush) on SIGTERM. No MLflow server: an empty
SQLite registry (no champion), and an S3 endpoint nobody listens on (writes fail, logged)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from tests.unit.local_mlflow import fresh_tracking_uri

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry_uri(tmp_path) -> str:
    """An empty SQLite registry, migrated once here (two workers migrating one new file at once collide)."""
    from mlflow.tracking import MlflowClient

    uri = fresh_tracking_uri(tmp_path)
    MlflowClient(tracking_uri=uri).search_registered_models()
    return uri


def test_two_workers_answer_with_distinct_ids_and_each_shuts_down_cleanly(tmp_path, registry_uri, aws_env):
    port = free_port()
    env = os.environ | {
        "PYTHONPATH": f"{REPO / 'include'}:{REPO / 'plugins'}",
        "MLFLOW_TRACKING_URI": registry_uri,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: S3 writes fail, logged
        "MODELOPS_SERVING_WORKERS": "2",
        "MODELOPS_SERVING_ALIAS_POLL_SECONDS": "1",
    }
    log = tmp_path / "serving.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelops.serving", "--port", str(port), "--host", "127.0.0.1"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < 2 and time.monotonic() < deadline and process.poll() is None:
            try:  # a new connection each time: the kernel hands it to either worker
                seen.add(requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["worker"]["id"])
            except requests.ConnectionError:
                time.sleep(0.2)
        assert len(seen) == 2, f"worker ids seen: {seen}\n{log.read_text()[-3000:]}"
        assert len({worker_id.rsplit("-", 2)[1] for worker_id in seen}) == 2  # two processes (pids)
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=90)
    text = log.read_text()
    assert returncode == 0, text[-3000:]
    for worker_id in seen:
        assert f"serving worker {worker_id} stopped" in text, text[-3000:]
    assert text.count("capture closed:") == 2
