"""The ingest queues of a model: their names, the settings the ingestion design fixes, and the few
SQS operations the consumer needs (find, measure, receive, keep messages invisible while working).

Why a module: provisioning (``modelops.local.bootstrap`` locally, infrastructure code in AWS)
creates the queues with these values; the consumer, the dead-letter handler, reconciliation and
the ingest DAGs find them by these names, and nothing else talks to SQS directly.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: SQS settings from the ingestion design: redrive after 5 receives, visibility ≥ 6 × processing.
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_S = 300
DLQ_RETENTION_S = 14 * 24 * 3600
#: The most entries one SQS batch call takes.
SQS_BATCH = 10


def queue_name(model: str) -> str:
    return f"modelops-ingest-{model.replace('_', '-')}"


def dead_letter_queue_name(model: str) -> str:
    return f"{queue_name(model)}-dlq"


def queue_url(sqs, model_name: str, *, dead_letter: bool = False) -> str:
    name = dead_letter_queue_name(model_name) if dead_letter else queue_name(model_name)
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        raise RuntimeError(
            f"SQS queue {name!r} for model {model_name!r} does not exist; `make provision` (or `make up`) "
            "creates the queues of every declared model"
        ) from None


def queue_depth(sqs, url: str) -> dict[str, int]:
    """Visible and in-flight counts; GetQueueAttributes does not count as a receive."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


@dataclass
class Received:
    """One received message, with what the error record and the result marker need of it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: str | None = None
    received_at: float = field(default_factory=time.time)


def receive(sqs, url: str, count: int, visibility: int, wait_seconds: int) -> list[Received]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(SQS_BATCH, count)),
        VisibilityTimeout=visibility,
        WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"],
        MessageAttributeNames=["All"],
    )
    out = []
    for item in response.get("Messages", []):
        attrs = item.get("Attributes", {})
        sent = attrs.get("SentTimestamp")
        out.append(
            Received(
                message_id=item["MessageId"],
                receipt_handle=item["ReceiptHandle"],
                body=item.get("Body", ""),
                receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
                sent_at=dt.datetime.fromtimestamp(int(sent) / 1000, dt.UTC).isoformat() if sent else None,
            )
        )
    return out


class VisibilityHeartbeat(threading.Thread):
    """Extends the visibility of in-flight messages every third of the visibility timeout."""

    def __init__(self, sqs, url: str, visibility: int):
        super().__init__(name="ingest-visibility-heartbeat", daemon=True)
        self.sqs, self.url, self.visibility = sqs, url, visibility
        self.messages: dict[str, Received] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def add(self, message: Received) -> None:
        with self.lock:
            self.messages[message.message_id] = message

    def remove(self, message: Received) -> None:
        with self.lock:
            self.messages.pop(message.message_id, None)

    def run(self) -> None:
        while not self.stopped.wait(max(1.0, self.visibility / 3)):
            with self.lock:
                batch = list(self.messages.values())
            for start in range(0, len(batch), SQS_BATCH):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": self.visibility}
                    for i, m in enumerate(batch[start : start + SQS_BATCH])
                ]
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
                except Exception:  # a missed beat costs at most a redelivery, which is idempotent
                    log.warning("could not extend message visibility", exc_info=True)
