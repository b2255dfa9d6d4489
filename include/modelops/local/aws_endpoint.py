"""The compose stack's local AWS endpoint (moto: S3 + SQS) whose bucket survives restarts, and its init.

``python -m modelops.local.aws_endpoint serve``: moto in this process on ``--host``/``--port``. moto
keeps its state in memory, so the bucket is mirrored to ``--state`` (a named volume in
docker-compose.yaml): restored at start, saved every ``MODELOPS_AWS_SAVE_SECONDS`` (only the
objects that changed) and once more on SIGTERM, so ``docker-compose down`` / ``up`` and a restart
of the service keep every object. The ingest queues and the bucket's notifications are recreated at
start (after the restore, so restored raw files announce nothing); messages in flight on SQS are not
kept (ingestion re-announces unprocessed raw files). The healthcheck waits for the file
``MODELOPS_AWS_READY_FILE`` (default /tmp/modelops-aws-ready), written once the bucket is back.

``python -m modelops.local.aws_endpoint provision``: the compose stack's ``modelops-init``, against
whatever the environment names (moto or real AWS): bucket, queues and notifications, every model's
training pool (REST API, ``MODELOPS_AIRFLOW_URL/USER/PASSWORD``) and, unless
``MODELOPS_LOAD_EXAMPLE_HISTORY=false``, the example history. Idempotent.

Tooling only, like the rest of :mod:`modelops.local`: in AWS the bucket is durable by itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from modelops.settings import env_bool, env_float, env_int, env_str
from modelops.store import Store

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def _object_file(key: str) -> str:
    """The file a key is kept in: a hash, so any key (``..``, a key that is another's prefix) is safe."""
    return hashlib.sha256(key.encode()).hexdigest()


def _read_manifest(state: Path) -> dict[str, dict]:
    path = state / MANIFEST
    if not path.exists():
        return {}
    return json.loads(path.read_text())["objects"]


def _write_atomically(path: Path, data: bytes) -> None:
    staging = path.with_name(path.name + ".tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


def save_bucket(store: Store, state: Path) -> dict[str, int]:
    """Mirror the bucket into ``state``: changed objects written, deleted ones removed.

    The manifest (key -> ETag and file) is replaced last and atomically, so an interrupted save
    leaves the previous complete mirror readable. Returns counts of written/removed/kept objects.
    """
    objects = state / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    before = _read_manifest(state)
    after: dict[str, dict] = {}
    written = 0
    for item in store.list(""):
        known = before.get(item.key)
        name = _object_file(item.key)
        if not (known and known["etag"] == item.etag and (objects / name).exists()):
            _write_atomically(objects / name, store.get_bytes(item.key))
            written += 1
        after[item.key] = {"etag": item.etag, "file": name}
    if written or set(before) != set(after):
        document = {"bucket": store.bucket, "saved_at": time.time(), "objects": after}
        _write_atomically(state / MANIFEST, json.dumps(document).encode())
    removed = 0
    for key in set(before) - set(after):
        (objects / before[key]["file"]).unlink(missing_ok=True)
        removed += 1
    return {"written": written, "removed": removed, "kept": len(after) - written}


def restore_bucket(store: Store, state: Path) -> int:
    """Put every object of the mirror back into the (fresh) bucket; 0 when there is no mirror."""
    store.ensure_bucket()
    restored = 0
    for key, entry in _read_manifest(state).items():
        path = state / "objects" / entry["file"]
        if not path.exists():
            log.warning("mirror lacks the file of %s (%s): skipped", key, entry["file"])
            continue
        store.put_bytes(key, path.read_bytes())
        restored += 1
    if restored:
        # Objects uploaded in parts had multipart ETags; put back whole, they have new ones.
        save_bucket(store, state)
    return restored


def _local_store(port: int) -> Store:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=env_str("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env_str("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=env_str("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    return Store(env_str("MODELOPS_BUCKET", "modelops"), client)


def _provision_queues(port: int) -> None:
    from modelops.local import bootstrap
    from modelops.local.stack_config import StackConfig

    cfg = StackConfig(
        home=Path("/nonexistent"),
        aws_port=port,
        bucket=env_str("MODELOPS_BUCKET", "modelops"),
        region=env_str("AWS_DEFAULT_REGION", "us-east-1"),
        access_key=env_str("AWS_ACCESS_KEY_ID", "testing"),
        secret_key=env_str("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    bootstrap.create_resources(cfg)


def check_writable(state: Path) -> None:
    """Refuse to serve a bucket that could not be kept: a mirror that cannot be written loses every
    object at the next restart (e.g. a volume mounted root-owned over a path the image lacks)."""
    probe = state / ".write-probe"
    try:
        state.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(
            f"the bucket's mirror {state} is not writable by uid {os.getuid()}: {exc.strerror}; "
            "mount a volume the user can write there (MODELOPS_AWS_STATE_DIR names the folder)"
        ) from exc


def serve(
    host: str, port: int, state: Path, save_seconds: float, ready: Path, stop: threading.Event | None = None
) -> None:
    """Run moto until SIGTERM/SIGINT (or ``stop``), keeping the bucket mirrored in ``state``.

    ``ready`` exists while the bucket is restored and the endpoint serves (the healthcheck's test).
    """
    from moto.server import ThreadedMotoServer

    check_writable(state)
    ready.unlink(missing_ok=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        store = _local_store(port)
        started = time.monotonic()
        restored = restore_bucket(store, state)
        _provision_queues(port)
        log.info("bucket %s: %d objects restored from %s in %.1f s", store.bucket, restored, state,
                 time.monotonic() - started)  # fmt: skip
        ready.write_text(str(os.getpid()))
        while not stop.wait(save_seconds):
            _save_logged(store, state, ready)
        ready.unlink(missing_ok=True)
        _save_logged(store, state, None)
    finally:
        server.stop()


def _save_logged(store: Store, state: Path, ready: Path | None) -> None:
    """One save; while saves fail the endpoint keeps serving but reports unhealthy (no ``ready``)."""
    try:
        counts = save_bucket(store, state)
    except Exception:  # the next save tries again
        log.exception("could not save the bucket to %s: unhealthy until a save succeeds", state)
        if ready is not None:
            ready.unlink(missing_ok=True)
        return
    if ready is not None and not ready.exists():
        ready.write_text(str(os.getpid()))
    if counts["written"] or counts["removed"]:
        log.info("bucket saved to %s: %s", state, counts)


def provision() -> dict:
    """What the compose stack's ``modelops-init`` does; every step idempotent."""
    from modelops.local import bootstrap
    from modelops.pools import ensure_training_pools

    queues = bootstrap.create_resources()
    pools = ensure_training_pools()
    history = bootstrap.load_history(None) if env_bool("MODELOPS_LOAD_EXAMPLE_HISTORY", True) else 0
    return {"queues": queues, "pools": pools, "history_objects_written": history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.local.aws_endpoint", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="moto with the bucket kept in --state")
    serve_cmd.add_argument("--host", default="0.0.0.0")
    serve_cmd.add_argument("--port", type=int, default=env_int("AWS_ENDPOINT_PORT", 4566, minimum=1, maximum=65535))
    serve_cmd.add_argument(
        "--state", type=Path, default=Path(env_str("MODELOPS_AWS_STATE_DIR", "/var/lib/modelops/aws"))
    )
    commands.add_parser("provision", help="bucket, queues, notifications, training pools, example history")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        save_seconds = env_float("MODELOPS_AWS_SAVE_SECONDS", 30.0, minimum=1)
        ready = Path(env_str("MODELOPS_AWS_READY_FILE", "/tmp/modelops-aws-ready"))
        serve(args.host, args.port, args.state, save_seconds, ready)
    else:
        print(json.dumps(provision(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
