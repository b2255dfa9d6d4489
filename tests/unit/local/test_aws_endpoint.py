"""The compose stack's AWS endpoint: the bucket mirrored to disk survives a restart of moto."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from moto import mock_aws

from modelops.local import aws_endpoint
from modelops.local.stack_config import free_port
from modelops.store import Store

OBJECTS = {"raw/churn/a.csv": b"a,b\n1,2\n", "a": b"file", "a/b": b"under a", "../escape": b"dots", "x y": b""}


def _fill(store: Store, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        store.put_bytes(key, data)


def _contents(store: Store) -> dict[str, bytes]:
    return {item.key: store.get_bytes(item.key) for item in store.list("")}


def test_a_saved_bucket_comes_back_whole_in_a_fresh_endpoint(store, tmp_path):
    _fill(store, OBJECTS)
    counts = aws_endpoint.save_bucket(store, tmp_path)
    assert counts == {"written": len(OBJECTS), "removed": 0, "kept": 0}
    assert all(path.parent == tmp_path / "objects" for path in (tmp_path / "objects").iterdir())
    with mock_aws():  # a new, empty endpoint: what a restarted moto is
        fresh = Store("bucket")
        assert aws_endpoint.restore_bucket(fresh, tmp_path) == len(OBJECTS)
        assert _contents(fresh) == OBJECTS


def test_saves_are_incremental_and_follow_deletions(store, tmp_path):
    _fill(store, OBJECTS)
    aws_endpoint.save_bucket(store, tmp_path)
    assert aws_endpoint.save_bucket(store, tmp_path) == {"written": 0, "removed": 0, "kept": len(OBJECTS)}
    store.put_bytes("a", b"changed")
    store.client.delete_object(Bucket="bucket", Key="x y")
    assert aws_endpoint.save_bucket(store, tmp_path) == {"written": 1, "removed": 1, "kept": len(OBJECTS) - 2}
    assert len(list((tmp_path / "objects").iterdir())) == len(OBJECTS) - 1
    with mock_aws():
        fresh = Store("bucket")
        aws_endpoint.restore_bucket(fresh, tmp_path)
        expected = {**OBJECTS, "a": b"changed"}
        del expected["x y"]
        assert _contents(fresh) == expected


def test_an_interrupted_save_leaves_the_previous_mirror(store, tmp_path, monkeypatch):
    _fill(store, {"one": b"1"})
    aws_endpoint.save_bucket(store, tmp_path)
    _fill(store, {"one": b"2", "two": b"2"})
    calls = []

    def failing_get(key):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("endpoint went away")
        return Store.get_bytes(store, key)

    monkeypatch.setattr(store, "get_bytes", failing_get)
    with pytest.raises(OSError):
        aws_endpoint.save_bucket(store, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())["objects"]
    assert set(manifest) == {"one"}


def test_no_mirror_restores_nothing_and_makes_the_bucket(store, tmp_path):
    with mock_aws():
        fresh = Store("other")
        assert aws_endpoint.restore_bucket(fresh, tmp_path / "none") == 0
        assert list(fresh.list("")) == []


def test_serve_restores_announces_ready_and_saves_on_stop(aws_env, tmp_path, monkeypatch):
    """The real server in a thread: restored bucket and ingest queues at start, final save at stop."""
    monkeypatch.setenv("MODELOPS_BUCKET", "lake")
    state, ready, port = tmp_path / "state", tmp_path / "ready", free_port()
    with mock_aws():  # build a mirror to start from
        seed = Store("lake")
        seed.ensure_bucket()
        _fill(seed, {"kept/before": b"old"})
        aws_endpoint.save_bucket(seed, state)
    stop = threading.Event()
    thread = threading.Thread(target=aws_endpoint.serve, args=("127.0.0.1", port, state, 3600, ready, stop))
    thread.start()
    try:
        for _ in range(300):
            if ready.exists() or not thread.is_alive():
                break
            stop.wait(0.1)
        assert ready.exists(), "the endpoint never said it was ready"
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        live = Store("lake", s3)
        assert live.get_bytes("kept/before") == b"old"
        sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}")
        assert sqs.list_queues().get("QueueUrls"), "ingest queues were not created at start"
        live.put_bytes("written/after", b"new")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and not ready.exists()
    with mock_aws():
        fresh = Store("lake")
        aws_endpoint.restore_bucket(fresh, state)
        assert _contents(fresh) == {"kept/before": b"old", "written/after": b"new"}


def test_serve_refuses_a_mirror_it_cannot_write(tmp_path):
    """A mirror folder that cannot be written (here: beneath a file, which fails for root too):
    the endpoint says so instead of serving a bucket that the next restart would lose."""
    (tmp_path / "a-file").write_text("")
    state = tmp_path / "a-file" / "state"
    with pytest.raises(SystemExit, match=f"{state} is not writable"):
        aws_endpoint.serve("127.0.0.1", free_port(), state, 3600, tmp_path / "ready")
    assert not (tmp_path / "ready").exists()


def test_a_failing_save_reports_unhealthy_until_one_succeeds(store, tmp_path, monkeypatch):
    ready = tmp_path / "ready"
    ready.write_text("1")
    real_save = aws_endpoint.save_bucket

    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(aws_endpoint, "save_bucket", full_disk)
    aws_endpoint._save_logged(store, tmp_path / "state", ready)
    assert not ready.exists()
    monkeypatch.setattr(aws_endpoint, "save_bucket", real_save)
    aws_endpoint._save_logged(store, tmp_path / "state", ready)
    assert ready.exists()
