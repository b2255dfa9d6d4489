"""In-flight records: which consumer process holds which messages right now.

Why a module: a consumer writes ``ingest/<model>/inflight/<host>-<pid>.json`` while it works and
removes it when it stops, so an operator (and the integration tests) can see what is being
processed; a record left by a killed process on this host is removed by the next consumer,
since SQS has already made that process's messages visible again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Iterable

from modelops.ingest.queues import Received
from modelops.layout import ingest_inflight_key, ingest_inflight_prefix
from modelops.store import Store

log = logging.getLogger(__name__)


def worker_id() -> str:
    """This consumer process, as the in-flight record and the result marker name it."""
    return f"{socket.gethostname()}-{os.getpid()}"


class InflightRecord:
    """The in-flight record of this process for one model."""

    def __init__(self, store: Store, model_name: str):
        self.store = store
        self.worker = worker_id()
        self.key = ingest_inflight_key(model_name, self.worker)

    def write(self, messages: Iterable[Received]) -> None:
        self.store.put_json(
            self.key,
            {
                "worker": self.worker,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "updated_at": dt.datetime.now(dt.UTC).isoformat(),
                "messages": [{"message_id": m.message_id, "receive_count": m.receive_count} for m in messages],
            },
        )

    def remove(self) -> None:
        try:
            self.store.client.delete_object(Bucket=self.store.bucket, Key=self.key)
        except Exception:
            log.warning("could not remove %s", self.key, exc_info=True)


def forget_dead_workers(store: Store, model_name: str) -> None:
    """In-flight records of killed consumers on this host: their messages are back in the queue."""
    import psutil

    host = socket.gethostname()
    for item in store.list(ingest_inflight_prefix(model_name)):
        try:
            record = store.get_json(item.key)
        except Exception:
            continue
        if record.get("host") == host and not psutil.pid_exists(int(record.get("pid", -1))):
            log.warning("consumer %s died with messages in flight; they are redelivered", record.get("worker"))
            store.client.delete_object(Bucket=store.bucket, Key=item.key)
