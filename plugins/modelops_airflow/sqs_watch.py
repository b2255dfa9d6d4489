"""Wait for messages in an SQS queue without receiving them: a deferrable sensor and its trigger.

Why not Airflow's ``SqsSensorTrigger`` (what an ``AssetWatcher`` on an ``sqs://`` queue runs)? It
*receives* messages: by default it deletes them on reception, before any task has processed them
(a failed run then loses them and the dead-letter queue never sees them); with deletion off,
every poll while the pipeline is busy counts as a receive, so valid messages walk towards the
dead-letter queue. This trigger only reads ``ApproximateNumberOfMessages`` (GetQueueAttributes,
which never counts as a receive) and fires when it is above zero; the ``consume`` task then
receives only what it can process now.

The trigger runs in the triggerer, which imports it by the class path it was serialized with,
``modelops_airflow.sqs_watch.QueueHasMessagesTrigger`` (``plugins/`` and ``include/`` are on the
``PYTHONPATH`` of every component). It reads the endpoint and region from the environment like
every other client here (``AWS_ENDPOINT_URL`` locally, unset in AWS).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)


class _QueueProbe:
    """One client and queue URL per watched queue (creating a boto3 client costs more than a poll)."""

    def __init__(self, queue_name: str):
        self.queue_name = queue_name
        self._sqs = None
        self._url: str | None = None

    def depth(self) -> dict[str, Any]:
        if self._sqs is None:
            from modelops import settings

            self._sqs = settings.sqs_client()
        try:
            if self._url is None:
                self._url = self._sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            attrs = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["ApproximateNumberOfMessages"])
        except Exception:
            self._url = None  # the queue may have been re-created (a restarted local endpoint)
            raise
        return {"queue": self.queue_name, "visible": int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))}


def _depth(queue_name: str) -> dict[str, Any]:
    return _QueueProbe(queue_name).depth()


class QueueHasMessagesTrigger(BaseTrigger):
    """Fires ``{"status": "messages", "visible": n}`` once the queue holds visible messages, or
    ``{"status": "idle"}`` after ``idle_seconds`` without any (so an idle DAG run ends cleanly)."""

    def __init__(self, queue_name: str, poll_seconds: float = 5.0, idle_seconds: float = 3600.0):
        super().__init__()
        self.queue_name = queue_name
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"queue_name": self.queue_name, "poll_seconds": self.poll_seconds, "idle_seconds": self.idle_seconds},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.idle_seconds
        probe = _QueueProbe(self.queue_name)
        failures = 0
        while True:
            try:
                depth = await asyncio.to_thread(probe.depth)
                failures = 0
            except Exception as exc:  # the endpoint may be restarting: keep watching, say so
                failures += 1
                hint = " (`make provision` creates missing queues)" if "NonExistentQueue" in str(exc) else ""
                self.log.warning(
                    "cannot read the depth of %s (%d in a row): %s%s", self.queue_name, failures, exc, hint
                )
                depth = {"visible": 0}
            if depth["visible"] > 0:
                yield TriggerEvent({"status": "messages", **depth})
                return
            if time.monotonic() >= deadline:
                yield TriggerEvent({"status": "idle", "queue": self.queue_name, "visible": 0})
                return
            await asyncio.sleep(self.poll_seconds)


class WaitForQueueMessages(BaseOperator):
    """Succeeds as soon as ``queue_name`` holds visible messages; waits deferred (no worker slot)."""

    template_fields = ("queue_name",)
    ui_color = "#e8f4fa"

    def __init__(self, *, queue_name: str, poll_seconds: float = 5.0, idle_seconds: float = 3600.0, **kwargs):
        super().__init__(**kwargs)
        self.queue_name = queue_name
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds

    def execute(self, context) -> dict:
        depth = _depth(self.queue_name)  # a burst already waiting needs no trip through the triggerer
        if depth["visible"] > 0:
            return {"status": "messages", **depth}
        self.defer(
            trigger=QueueHasMessagesTrigger(self.queue_name, self.poll_seconds, self.idle_seconds),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> dict:
        event = event or {}
        log.info("queue %s: %s", self.queue_name, event)
        return event
