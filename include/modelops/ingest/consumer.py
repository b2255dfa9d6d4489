"""Data arrival: consume a model's SQS queue of S3 notifications, validate each new raw file once.

What ``ingest_<model>`` runs (``consume``); importable and testable without Airflow.

One message is one S3 event (moto and S3 send one record per message; several are handled).
For each record (:class:`~modelops.ingest.ingestor.Ingestor`):

1. **check the message**: a valid S3 event for this bucket, under this model's ``raw/`` prefix,
   for an object that exists. Anything else is *poison*: the error is recorded under
   ``ingest/<model>/errors/<message-id>.json`` and the message becomes visible again after a short
   retry delay; after ``maxReceiveCount`` receives SQS moves it to the dead-letter queue.
   ``s3:TestEvent`` (sent when the notification configuration is set) is acknowledged, no-op.
2. **idempotency**: the result marker ``ingest/<model>/results/<sha256(key, etag)>.json`` exists →
   the file was already handled; the message is deleted without reprocessing.
3. **validate** with the model's Great Expectations suite (``expectations/<model>.json``, the
   suite training uses), in ``validation_processes`` worker processes (GX holds the GIL; the
   thread that owns the message waits for its file's result, so nothing below changes). An unreadable file (truncated, not CSV, wrong schema) is invalid *data*,
   not a poison message: it is quarantined with a report.
4. **copy** to ``validated/<model>/dt=.../<file>`` or ``quarantine/<model>/dt=.../<file>``
   (deterministic keys, server-side copy), write the validation report (JSON + Data Docs HTML),
   then the result marker; only then is the message deleted.

Visibility: messages are received with an explicit visibility timeout, which a heartbeat thread
keeps extending while the file is processed, so a long file never reappears while its worker
lives, and a killed worker's message reappears after at most one visibility window. The consumer
receives only as many messages as it has free workers, so a burst waits in the queue (where a
wait costs no receive count) rather than in memory.

Files whose notification never arrived are found by :mod:`modelops.ingest.reconcile`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from modelops import settings as _settings
from modelops.ingest.inflight import InflightRecord, forget_dead_workers
from modelops.ingest.ingestor import Ingestor
from modelops.ingest.messages import PoisonMessage
from modelops.ingest.queues import SQS_BATCH, Received, VisibilityHeartbeat, queue_url, receive
from modelops.ingest.settings import IngestSettings
from modelops.ingest.validator import SuiteValidator, make_validator
from modelops.store import Store

if TYPE_CHECKING:
    from modelops.config import ModelConfig

log = logging.getLogger(__name__)

#: A failed message due back within this many seconds keeps the run alive to take it again.
MAX_RETRY_WAIT_SECONDS = 10
#: The in-flight record is rewritten at most this often (and whenever an idle consumer takes work).
INFLIGHT_REFRESH_SECONDS = 2.0


def _clients(settings: IngestSettings, store: Store | None, sqs):
    """S3 and SQS clients every worker and the heartbeat share: one pooled connection each."""
    if store is not None and sqs is not None:
        return store, sqs
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=settings.concurrency + 4)
    kwargs = _settings.load().boto3_kwargs()
    store = store or Store(client=boto3.client("s3", config=config, **kwargs))
    sqs = sqs or boto3.client("sqs", config=config, **kwargs)
    return store, sqs


class _ConsumeRun:
    """The state of one consume run: messages in progress, counts, and when a retry is due."""

    def __init__(self, model: ModelConfig, settings: IngestSettings, store: Store, sqs, ingestor: Ingestor):
        self.model, self.settings, self.store, self.sqs, self.ingestor = model, settings, store, sqs, ingestor
        self.url = queue_url(sqs, model.name)
        self.heartbeat = VisibilityHeartbeat(sqs, self.url, settings.visibility_seconds)
        self.heartbeat.start()
        self.inflight = InflightRecord(store, model.name)
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self.pending: dict[Future, Received] = {}
        self.retry_until = 0.0
        #: Seconds spent in SQS calls of this run (the cost split's receive and delete shares).
        self.sqs_seconds = {"receive": 0.0, "delete": 0.0}

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def fail(self, message: Received, exc: BaseException) -> None:
        """Record the failure and let the message come back after the retry delay."""
        settings = self.settings
        self.heartbeat.remove(message)
        kind = "poison" if isinstance(exc, PoisonMessage) else "failed"
        log.warning("message %s (receive %d) failed: %s", message.message_id, message.receive_count, exc)
        try:
            self.ingestor.record_error(message, exc)
        finally:
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url,
                    ReceiptHandle=message.receipt_handle,
                    VisibilityTimeout=settings.retry_delay_seconds,
                )
            except Exception:
                log.warning("could not shorten visibility of %s", message.message_id, exc_info=True)
        self.count(kind)
        if settings.retry_delay_seconds <= MAX_RETRY_WAIT_SECONDS:
            due = time.monotonic() + settings.retry_delay_seconds + settings.wait_seconds
            self.retry_until = max(self.retry_until, due)

    def finish(self, done: set[Future]) -> None:
        """Record failures; delete (in batches) the messages whose results are written."""
        succeeded = []
        for future in done:
            message = self.pending.pop(future)
            try:
                results = future.result()
            except Exception as exc:
                self.fail(message, exc)
                continue
            self.heartbeat.remove(message)
            succeeded.append(message)
            for result in results:
                self.count(result["status"])
        for start in range(0, len(succeeded), SQS_BATCH):
            self._delete(succeeded[start : start + SQS_BATCH])

    def _delete(self, chunk: list[Received]) -> None:
        started = time.perf_counter()
        try:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)],
            )
            failed = response.get("Failed", [])
        except Exception as exc:
            failed = [{"Id": str(i), "Message": str(exc)} for i in range(len(chunk))]
        self.sqs_seconds["delete"] += time.perf_counter() - started
        for item in failed:  # e.g. an expired receipt: the redelivery finds the marker and is deleted then
            message_id = chunk[int(item["Id"])].message_id
            log.warning("could not delete message %s after processing it: %s", message_id, item.get("Message"))
            self.count("delete_failed")

    def loop(self, pool: ThreadPoolExecutor) -> None:
        """Receive while there is room and time, hand messages to the pool, settle what finishes."""
        settings = self.settings
        refill_at = max(1, settings.concurrency // 2)  # receive in batches, not one call per finished file
        inflight_written = 0.0
        while True:
            out_of_time = time.monotonic() - self.started > settings.max_seconds
            free = settings.concurrency - len(self.pending)
            was_idle = not self.pending
            batch = []
            if not out_of_time and free > 0 and (was_idle or free >= refill_at):
                wait_seconds = 0 if self.pending else settings.wait_seconds
                asked = time.perf_counter()
                batch = receive(self.sqs, self.url, free, settings.visibility_seconds, wait_seconds)
                if batch:  # an empty long poll is waiting, not cost
                    self.sqs_seconds["receive"] += time.perf_counter() - asked
            for message in batch:
                self.heartbeat.add(message)
                self.pending[pool.submit(self.ingestor.handle, message)] = message
            if batch:
                self.count("received", len(batch))
                if was_idle or time.monotonic() - inflight_written >= INFLIGHT_REFRESH_SECONDS:
                    self.inflight.write(self.pending.values())
                    inflight_written = time.monotonic()
            if not self.pending:
                # Messages that just failed come back after the retry delay: a short delay is
                # waited for here rather than paying for a new run (and a new process) per retry.
                if not batch and (out_of_time or time.monotonic() >= self.retry_until):
                    break
                continue
            # The queue just gave messages and there is room for more: ask again at once.
            more = bool(batch) and settings.concurrency - len(self.pending) >= refill_at and not out_of_time
            done, _ = wait(list(self.pending), timeout=0 if more else None, return_when=FIRST_COMPLETED)
            self.finish(done)

    def stop(self) -> None:
        self.heartbeat.stopped.set()
        self.inflight.remove()

    def summary(self) -> dict:
        summary = {
            "model": self.model.name,
            "queue": self.url,
            "seconds": round(time.monotonic() - self.started, 2),
            "counts": self.counts,
        }
        validator = self.ingestor.validator
        if isinstance(validator, SuiteValidator):
            summary["validations"] = {
                "run": validator.misses,
                "reused": validator.hits,
                "processes": getattr(validator, "processes", 0),
            }
        steps = {**self.ingestor.step_seconds, **{f"sqs_{k}": v for k, v in self.sqs_seconds.items()}}
        summary["step_seconds"] = {step: round(seconds, 3) for step, seconds in steps.items()}
        return summary


def consume(
    model: ModelConfig,
    *,
    settings: IngestSettings | None = None,
    store: Store | None = None,
    sqs=None,
    ingestor: Ingestor | None = None,
) -> dict:
    """Drain the model's queue with bounded concurrency; stop when empty or out of time."""
    settings = settings or IngestSettings.from_env()
    store, sqs = _clients(settings, store, sqs)
    owned = ingestor is None  # a validator this run started (worker processes) is stopped by it
    ingestor = ingestor or Ingestor(model, store, validator=make_validator(model, settings.validation_processes))
    try:
        run = _ConsumeRun(model, settings, store, sqs, ingestor)
        forget_dead_workers(store, model.name)
        try:
            with ThreadPoolExecutor(settings.concurrency, thread_name_prefix=f"ingest-{model.name}") as pool:
                run.loop(pool)
        finally:
            run.stop()
    finally:
        if owned:
            ingestor.validator.close()
    summary = run.summary()
    log.info("ingest %s: %s", model.name, summary)
    return summary
