"""Worker heartbeats: each serving worker says in S3 who it is and which version of each model it serves.

With several workers (uvicorn processes or replicas) a reload request lands on one of them only;
the others follow the ``champion`` alias by themselves (:mod:`modelops.serving.follower`). The
deploy stage reads these records to know when every live worker serves the deployed version
(:mod:`modelops.deploy.convergence`). One JSON object per worker at
:func:`modelops.layout.serving_worker_key`, overwritten every poll interval and whenever what the
worker serves changes, deleted at clean shutdown. A worker that died without deleting its record
stops counting once its heartbeat is older than ``STALE_AFTER_POLLS`` of its own poll intervals.

Cheap to import (no FastAPI, no MLflow): the deploy stage reads records through it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.layout import SERVING_WORKERS_PREFIX, serving_worker_key

log = logging.getLogger(__name__)

#: The response header of ``/predict`` naming the worker that answered (several share one address).
WORKER_HEADER = "X-Modelops-Worker"
#: A heartbeat older than this many of the worker's poll intervals means the worker is gone.
STALE_AFTER_POLLS = 3


def new_worker_id() -> str:
    """``<host>-<pid>-<6 hex>``: unique across hosts, processes, and a pid reused after a restart."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerIdentity:
    """Who a serving worker is (``X-Modelops-Worker``, ``GET /health``, its heartbeat's key)."""

    id: str = field(default_factory=new_worker_id)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "pid": self.pid, "started_at": self.started_at.isoformat()}


def heartbeat_record(
    worker: WorkerIdentity, models: Mapping[str, Mapping[str, Any]], poll_seconds: float, now: dt.datetime
) -> dict[str, Any]:
    """The JSON a worker writes: its identity, when, its poll interval, and per model what it serves
    (``{"version": "3" | None, "alias": "champion" | None}``)."""
    return worker.describe() | {
        "worker_id": worker.id,
        "heartbeat_at": now.isoformat(),
        "poll_seconds": poll_seconds,
        "models": {name: dict(served) for name, served in sorted(models.items())},
    }


def write_heartbeat(store: Any, record: Mapping[str, Any]) -> None:
    store.put_bytes(
        serving_worker_key(record["worker_id"]), json.dumps(record, sort_keys=True).encode(), "application/json"
    )


def delete_heartbeat(store: Any, worker_id: str) -> None:
    store.client.delete_object(Bucket=store.bucket, Key=serving_worker_key(worker_id))


def read_heartbeats(store: Any) -> list[dict[str, Any]]:
    """Every heartbeat record in the bucket, live or stale; an unreadable one is skipped (logged)."""
    records = []
    for item in store.list(SERVING_WORKERS_PREFIX):
        try:
            records.append(json.loads(store.get_bytes(item.key)))
        except Exception as exc:  # noqa: BLE001 - deleted meanwhile, or not JSON: not a live worker
            log.debug("heartbeat %s skipped: %s", item.key, exc)
    return records


def is_live(record: Mapping[str, Any], now: dt.datetime) -> bool:
    """Heartbeat younger than ``STALE_AFTER_POLLS`` × the worker's own poll interval."""
    try:
        beat = dt.datetime.fromisoformat(record["heartbeat_at"])
        poll = float(record["poll_seconds"])
    except (KeyError, TypeError, ValueError):
        return False
    return poll > 0 and (now - beat).total_seconds() < STALE_AFTER_POLLS * poll


def live_workers(store: Any, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The heartbeat records of the workers alive now, by worker id; stale ones are left out."""
    now = now or dt.datetime.now(dt.UTC)
    records = read_heartbeats(store)
    live = [r for r in records if is_live(r, now)]
    if len(live) < len(records):
        stale = sorted(str(r.get("worker_id")) for r in records if not is_live(r, now))
        log.debug("stale serving heartbeats ignored: %s", ", ".join(stale))
    return sorted(live, key=lambda r: str(r["worker_id"]))


def served_version(record: Mapping[str, Any], model: str, field: str = "version") -> str | None:
    """The version of ``model`` a heartbeat record says its worker serves (None: none, or unknown model);
    ``field="shadow"``: the version it scores in shadow."""
    served = (record.get("models") or {}).get(model) or {}
    version = served.get(field)
    return None if version is None else str(version)
