"""Data arrival: consume a model's SQS queue of S3 notifications, validate each new raw file once.

What ``ingest_<model>`` runs (``consume``); importable and testable without Airflow.

One message is one S3 event (moto and S3 send one record per message; several are handled).
For each record:

1. **check the message**: a valid S3 event for this bucket, under this model's ``raw/`` prefix,
   for an object that exists. Anything else is *poison*: the error is recorded under
   ``ingest/<model>/errors/<message-id>.json`` and the message becomes visible again after a short
   retry delay; after ``maxReceiveCount`` receives SQS moves it to the dead-letter queue.
   ``s3:TestEvent`` (sent when the notification configuration is set) is acknowledged, no-op.
2. **idempotency**: the result marker ``ingest/<model>/results/<sha256(key, etag)>.json`` exists →
   the file was already handled; the message is deleted without reprocessing.
3. **validate** with the model's Great Expectations suite (``expectations/<model>.json``, the
   suite training uses). An unreadable file (truncated, not CSV, wrong schema) is invalid *data*,
   not a poison message: it is quarantined with a report.
4. **copy** to ``validated/<model>/dt=.../<file>`` or ``quarantine/<model>/dt=.../<file>``
   (deterministic keys, server-side copy), write the validation report (JSON + Data Docs HTML),
   then the result marker; only then is the message deleted.

Visibility: messages are received with an explicit visibility timeout, which a heartbeat thread
keeps extending while the file is processed, so a long file never reappears while its worker
lives, and a killed worker's message reappears after at most one visibility window. The consumer
receives only as many messages as it has free workers, so a burst waits in the queue (where a
wait costs no receive count) rather than in memory.

**Reconciliation** (``reconcile``, what ``reconcile_<model>`` runs daily): a file whose notification
never arrived (uploaded before the model's queue and notification existed, a message lost with the
local endpoint, a notification misconfiguration, a message past the queue's retention) has no
result marker. ``reconcile`` lists ``raw/<model>/``, and for every file version without a marker
sends the queue the S3 event S3 would have sent (``eventName`` ``ObjectCreated:Reconcile``,
``configurationId`` ``modelops-reconcile``); the consumer handles it like any other. Re-announcing a
file that is queued or being processed is harmless: the marker makes the second message a
duplicate. Also a CLI::

    python -m modelops.ingest reconcile --model churn [--since 2026-11-01] [--dry-run] [--limit N]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import socket
import sys
import threading
import time
import urllib.parse
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelops import settings as _settings
from modelops.ingest.queues import dead_letter_queue_name, queue_name
from modelops.layout import partition_date
from modelops.store import Store

if TYPE_CHECKING:
    from modelops.config import ModelConfig
    from modelops.data.validation import ValidationOutcome

log = logging.getLogger(__name__)

RESULTS = "results"
ERRORS = "errors"
INFLIGHT = "inflight"
MAX_ERROR_HISTORY = 20
MAX_BODY_CHARS = 20_000
#: A failed message due back within this many seconds keeps the run alive to take it again.
MAX_RETRY_WAIT_SECONDS = 10
#: The in-flight record is rewritten at most this often (and whenever an idle consumer takes work).
INFLIGHT_REFRESH_SECONDS = 2.0
#: How a reconciliation announcement names itself; ``parse_message`` accepts any ``ObjectCreated:*``.
RECONCILE_EVENT_NAME = "ObjectCreated:Reconcile"
RECONCILE_CONFIGURATION_ID = "modelops-reconcile"
#: Keys listed in a reconciliation's result (the counts are always complete).
MAX_REPORTED_KEYS = 100


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def _env_number(name: str, default: float, minimum: float, cast=float):
    raw = os.environ.get(name)
    if raw in (None, ""):
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class IngestSettings:
    """Tuning knobs, from the environment so the test stack can use small values."""

    #: Files processed at once by one consumer (threads; GX itself runs one at a time).
    concurrency: int = 4
    #: Visibility timeout asked for on receive; the heartbeat extends it every third of it.
    visibility_seconds: int = 300
    #: How long a failed message stays invisible before its next attempt.
    retry_delay_seconds: int = 30
    #: A consume run stops receiving after this long; the next continuous run goes on.
    max_seconds: float = 900.0
    #: Long-poll wait of a receive; an empty receive with nothing in flight ends the run.
    wait_seconds: int = 1

    @classmethod
    def from_env(cls) -> IngestSettings:
        return cls(
            concurrency=_env_number("MODELOPS_INGEST_CONCURRENCY", 4, 1, int),
            visibility_seconds=_env_number("MODELOPS_INGEST_VISIBILITY_SECONDS", 300, 6, int),
            retry_delay_seconds=_env_number("MODELOPS_INGEST_RETRY_DELAY_SECONDS", 30, 0, int),
            max_seconds=_env_number("MODELOPS_INGEST_MAX_SECONDS", 900, 1, float),
            wait_seconds=_env_number("MODELOPS_INGEST_WAIT_SECONDS", 1, 0, int),
        )


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def object_id(key: str, etag: str) -> str:
    """One file version: the idempotency key of ingestion."""
    return hashlib.sha256(f"{key}\n{etag}".encode()).hexdigest()


def result_key(model: str, key: str, etag: str) -> str:
    return f"ingest/{model}/{RESULTS}/{object_id(key, etag)}.json"


def error_key(model: str, message_id: str) -> str:
    return f"ingest/{model}/{ERRORS}/{message_id}.json"


def inflight_key(model: str, worker: str) -> str:
    return f"ingest/{model}/{INFLIGHT}/{worker}.json"


def destination_key(model: ModelConfig, raw_key: str, outcome: str) -> str:
    """``validated/<model>/<rest>`` or ``quarantine/<model>/<rest>`` for ``raw/<model>/<rest>``."""
    rest = raw_key[len(model.raw_prefix) :]
    return f"{'validated' if outcome == 'validated' else 'quarantine'}/{model.name}/{rest}"


def report_keys(model: ModelConfig, raw_key: str, outcome: str) -> tuple[str, str]:
    """Quarantined files get their report beside them, where operators look; validated files get
    it under ``ingest/<model>/reports/``, so ``validated/`` holds only data training can read."""
    rest = raw_key[len(model.raw_prefix) :]
    base = f"quarantine/{model.name}/{rest}" if outcome == "quarantined" else f"ingest/{model.name}/reports/{rest}"
    return f"{base}.validation.json", f"{base}.validation.html"


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


class PoisonMessage(ValueError):
    """The message cannot be processed as it is (not an S3 event, missing object, wrong model)."""


@dataclass(frozen=True)
class ObjectEvent:
    bucket: str
    key: str
    etag: str | None
    event_time: str | None
    event_name: str


def parse_message(body: str, *, bucket: str, model: ModelConfig, known_models: set[str]) -> list[ObjectEvent]:
    """The object-created records of an S3 notification; ``[]`` for ``s3:TestEvent``.

    Raises :class:`PoisonMessage` naming what is wrong, so the error record says it.
    """
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise PoisonMessage(f"message body is not JSON ({exc}); starts {str(body)[:80]!r}") from None
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
        return parse_message(payload["Message"], bucket=bucket, model=model, known_models=known_models)  # via SNS
    if not isinstance(payload, dict):
        raise PoisonMessage(f"message body is JSON {type(payload).__name__}, not an S3 event object")
    if payload.get("Event") == "s3:TestEvent":
        return []
    records = payload.get("Records")
    if not isinstance(records, list) or not records:
        raise PoisonMessage(f"not an S3 event: no 'Records' list (keys: {sorted(payload)[:10]})")
    events = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise PoisonMessage(f"{where}: not an S3 record (eventSource={_get(record, 'eventSource')!r})")
        name = str(record.get("eventName", ""))
        if not name.startswith("ObjectCreated:"):
            raise PoisonMessage(f"{where}: event {name!r} is not an object-created event")
        s3 = record.get("s3") or {}
        event_bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        if not event_bucket or not obj.get("key"):
            raise PoisonMessage(f"{where}: missing s3.bucket.name or s3.object.key")
        if event_bucket != bucket:
            raise PoisonMessage(f"{where}: bucket {event_bucket!r} is not the platform bucket {bucket!r}")
        key = urllib.parse.unquote_plus(obj["key"])
        if not key.startswith(model.raw_prefix):
            owner = key.split("/")[1] if key.startswith("raw/") and key.count("/") >= 2 else None
            if owner in known_models:
                raise PoisonMessage(f"{where}: {key} belongs to model {owner!r}, not to {model.name!r}'s queue")
            raise PoisonMessage(
                f"{where}: {key} is not under {model.raw_prefix} and names no known model "
                f"(known: {sorted(known_models)})"
            )
        if partition_date(key) is None or key.endswith("/"):
            raise PoisonMessage(f"{where}: {key} is not a file in a dt=YYYY-MM-DD partition of {model.raw_prefix}")
        events.append(
            ObjectEvent(event_bucket, key, (obj.get("eTag") or obj.get("etag")), record.get("eventTime"), name)
        )
    return events


def _get(value, key):
    return value.get(key) if isinstance(value, dict) else None


# --------------------------------------------------------------------------------------------
# Validation (GX is slow to import and pure Python: one validation at a time per process)
# --------------------------------------------------------------------------------------------


class SuiteValidator:
    """Validates frames against one suite file, reusing one GX context; results are memoised by
    (suite bytes, file bytes), since validation is a pure function of both."""

    def __init__(self, suite_path, cache_size: int = 4096):
        self.suite_path = suite_path
        self.suite_sha = hashlib.sha256(open(suite_path, "rb").read()).hexdigest()  # noqa: SIM115
        self._lock = threading.Lock()
        self._context = None
        self._cache: dict[str, ValidationOutcome] = {}
        self._cache_size = cache_size
        self.hits = 0
        self.misses = 0

    def __call__(self, data: bytes, frame_loader, data_name: str) -> tuple[ValidationOutcome, bool]:
        from modelops.data import validation

        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None:
                self.hits += 1
                return dataclasses.replace(cached, data_name=data_name), True
            self.misses += 1
            frame = frame_loader()
            if self._context is None:
                self._context = validation.make_context()
            outcome = validation.validate_dataframe(frame, self.suite_path, data_name=data_name, context=self._context)
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[digest] = outcome
            return outcome, False


def unreadable_outcome(model: ModelConfig, data_name: str, problem: str) -> ValidationOutcome:
    """A failed validation for a file that could not even be parsed: quarantined like any bad data."""
    from modelops.data.validation import ValidationOutcome

    return ValidationOutcome(
        suite_name=model.suite_path.stem,
        data_name=data_name,
        success=False,
        statistics={"evaluated_expectations": 0, "successful_expectations": 0, "unsuccessful_expectations": 1},
        failures=[
            {
                "expectation_type": "file_is_readable",
                "column": None,
                "kwargs": {"file_format": model.data.file_format},
                "observed_value": None,
                "unexpected_count": None,
                "unexpected_percent": None,
                "element_count": None,
                "sample_unexpected_values": [],
                "exception": problem,
                "notes": "The file could not be parsed; no expectation was evaluated.",
            }
        ],
        result_json={"success": False, "results": [], "statistics": {}, "meta": {"unreadable": problem}},
    )


# --------------------------------------------------------------------------------------------
# Processing one message
# --------------------------------------------------------------------------------------------


@dataclass
class Received:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: str | None = None
    received_at: float = field(default_factory=time.time)


class Ingestor:
    """Handles messages of one model's queue. Thread-safe: workers share it."""

    def __init__(
        self,
        model: ModelConfig,
        store: Store | None = None,
        known_models: set[str] | None = None,
        validator=None,
    ):
        from modelops.config import load_all_models

        self.model = model
        self.store = store or Store()
        self.known_models = known_models if known_models is not None else set(load_all_models())
        self.validator = validator or SuiteValidator(model.suite_path)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock_for(self, oid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(oid, threading.Lock())

    def handle(self, message: Received) -> list[dict]:
        """Process every record of ``message``; return one result per record. Raises on failure
        (the caller records it and lets the message become visible again)."""
        events = parse_message(message.body, bucket=self.store.bucket, model=self.model, known_models=self.known_models)
        if not events:
            log.info("message %s is an s3:TestEvent: acknowledged", message.message_id)
            return [{"status": "test_event"}]
        return [self._handle_event(event, message) for event in events]

    def _handle_event(self, event: ObjectEvent, message: Received) -> dict:
        from botocore.exceptions import ClientError

        try:
            response = self.store.client.get_object(Bucket=self.store.bucket, Key=event.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise PoisonMessage(
                    f"object s3://{self.store.bucket}/{event.key} does not exist (deleted, or the event is wrong); "
                    "upload it again or drop this message"
                ) from None
            raise
        etag = response["ETag"].strip('"')
        oid = object_id(event.key, etag)
        marker = result_key(self.model.name, event.key, etag)
        with self._lock_for(oid):  # two messages for one file version in one batch: one does the work
            if self.store.exists(marker):
                response["Body"].close()
                log.info(
                    "%s (etag %s) already ingested: message %s is a duplicate", event.key, etag, message.message_id
                )
                return {"status": "duplicate", "key": event.key, "etag": etag, "marker": marker}
            data = response["Body"].read()
            return self._ingest(event, message, etag, data, marker, response.get("LastModified"))

    def _ingest(self, event: ObjectEvent, message: Received, etag: str, data: bytes, marker: str, modified) -> dict:
        from modelops import batches
        from modelops.data import validation

        model = self.model
        started = time.perf_counter()
        name = f"s3://{self.store.bucket}/{event.key}"
        reused = False
        try:
            outcome, reused = self.validator(data, lambda: batches.read_batch(data, model.data.file_format, name), name)
        except batches.BatchReadError as exc:
            outcome = unreadable_outcome(model, name, str(exc))
        verdict = "validated" if outcome.success else "quarantined"
        destination = destination_key(model, event.key, verdict)
        other = destination_key(model, event.key, "quarantined" if outcome.success else "validated")
        json_key, html_key = report_keys(model, event.key, verdict)
        client, bucket = self.store.client, self.store.bucket
        client.copy_object(
            Bucket=bucket,
            Key=destination,
            CopySource={"Bucket": bucket, "Key": event.key},
            CopySourceIfMatch=f'"{etag}"',
            MetadataDirective="COPY",
        )
        # A new version of a key may change verdict: a file is in exactly one of the two places.
        stale = [other, *report_keys(model, event.key, "quarantined" if outcome.success else "validated")]
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale], "Quiet": True})
        report = {
            "model": model.name,
            "source": self.store.uri(event.key),
            "etag": etag,
            "verdict": verdict,
            "destination": self.store.uri(destination),
            "summary": validation.summarize_failures(outcome),
            **outcome.to_dict(),
            "result": outcome.result_json,
        }
        self.store.put_json(json_key, report)
        self.store.put_text(html_key, validation.render_data_docs_html(outcome), "text/html; charset=utf-8")
        now = dt.datetime.now(dt.UTC)
        event_time = _parse_time(event.event_time) or (modified.astimezone(dt.UTC) if modified else None)
        result = {
            "status": verdict,
            "model": model.name,
            "key": event.key,
            "etag": etag,
            "event_etag": event.etag,
            "destination": self.store.uri(destination),
            "report_json": self.store.uri(json_key),
            "report_html": self.store.uri(html_key),
            "success_percent": outcome.statistics.get("success_percent"),
            "failed_expectations": [f["expectation_type"] for f in outcome.failures],
            "message_id": message.message_id,
            "receive_count": message.receive_count,
            "event_name": event.event_name,  # ObjectCreated:Reconcile: announced by `reconcile`
            "event_time": event_time.isoformat() if event_time else None,
            "processed_at": now.isoformat(),
            "latency_seconds": round((now - event_time).total_seconds(), 3) if event_time else None,
            "processing_seconds": round(time.perf_counter() - started, 3),
            "validation_reused": reused,
            "worker": _worker_id(),
        }
        self.store.put_json(marker, result)  # last: its presence means "done"
        log.info("%s → %s (%s)", event.key, destination, validation.summarize_failures(outcome).splitlines()[0])
        return result

    # Errors --------------------------------------------------------------------------------------
    def record_error(self, message: Received, exc: BaseException) -> dict:
        """Append the failure to the message's error record (what the dead-letter handler reads)."""
        key = error_key(self.model.name, message.message_id)
        now = dt.datetime.now(dt.UTC).isoformat()
        text = f"{type(exc).__name__}: {exc}"
        try:
            record = self.store.get_json(key) if self.store.exists(key) else None
        except Exception:  # a corrupt record must not hide the new error
            record = None
        record = record or {
            "message_id": message.message_id,
            "model": self.model.name,
            "body": message.body[:MAX_BODY_CHARS],
            "first_error": text,
            "first_error_at": now,
            "attempts": [],
        }
        record["attempts"] = [
            *record.get("attempts", []),
            {
                "receive_count": message.receive_count,
                "error": text,
                "at": now,
                "poison": isinstance(exc, PoisonMessage),
            },
        ][-MAX_ERROR_HISTORY:]
        record.update(
            last_error=text,
            last_error_at=now,
            receive_count=message.receive_count,
            poison=isinstance(exc, PoisonMessage),
        )
        self.store.put_json(key, record)
        return record


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _forget_dead_workers(store: Store, model_name: str) -> None:
    """In-flight records of killed consumers on this host: their messages are back in the queue."""
    import psutil

    host = socket.gethostname()
    for item in store.list(f"ingest/{model_name}/{INFLIGHT}/"):
        try:
            record = store.get_json(item.key)
        except Exception:
            continue
        if record.get("host") == host and not psutil.pid_exists(int(record.get("pid", -1))):
            log.warning("consumer %s died with messages in flight; they are redelivered", record.get("worker"))
            store.client.delete_object(Bucket=store.bucket, Key=item.key)


def _worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


# --------------------------------------------------------------------------------------------
# The consumer loop
# --------------------------------------------------------------------------------------------


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


def receive(sqs, url: str, count: int, visibility: int, wait_seconds: int) -> list[Received]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, count)),
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


class _Heartbeat(threading.Thread):
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
            for start in range(0, len(batch), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": self.visibility}
                    for i, m in enumerate(batch[start : start + 10])
                ]
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
                except Exception:  # a missed beat costs at most a redelivery, which is idempotent
                    log.warning("could not extend message visibility", exc_info=True)


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
    if store is None or sqs is None:
        import boto3
        from botocore.config import Config

        # Every worker and the heartbeat share the clients: one pooled connection each.
        config = Config(max_pool_connections=settings.concurrency + 4)
        kwargs = _settings.load().boto3_kwargs()
        store = store or Store(client=boto3.client("s3", config=config, **kwargs))
        sqs = sqs or boto3.client("sqs", config=config, **kwargs)
    ingestor = ingestor or Ingestor(model, store)
    url = queue_url(sqs, model.name)
    heartbeat = _Heartbeat(sqs, url, settings.visibility_seconds)
    heartbeat.start()
    worker = _worker_id()
    inflight = inflight_key(model.name, worker)
    counts: dict[str, int] = {}
    started = time.monotonic()
    pending: dict[Future, Received] = {}
    retry_until = 0.0

    def write_inflight() -> None:
        store.put_json(
            inflight,
            {
                "worker": worker,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "updated_at": dt.datetime.now(dt.UTC).isoformat(),
                "messages": [{"message_id": m.message_id, "receive_count": m.receive_count} for m in pending.values()],
            },
        )

    def fail(message: Received, exc: BaseException) -> None:
        nonlocal retry_until
        heartbeat.remove(message)
        kind = "poison" if isinstance(exc, PoisonMessage) else "failed"
        log.warning("message %s (receive %d) failed: %s", message.message_id, message.receive_count, exc)
        try:
            ingestor.record_error(message, exc)
        finally:
            try:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=settings.retry_delay_seconds
                )
            except Exception:
                log.warning("could not shorten visibility of %s", message.message_id, exc_info=True)
        counts[kind] = counts.get(kind, 0) + 1
        if settings.retry_delay_seconds <= MAX_RETRY_WAIT_SECONDS:
            retry_until = max(retry_until, time.monotonic() + settings.retry_delay_seconds + settings.wait_seconds)

    def finish(done: set[Future]) -> None:
        """Record failures; delete (in batches) the messages whose results are written."""
        succeeded = []
        for future in done:
            message = pending.pop(future)
            try:
                results = future.result()
            except Exception as exc:
                fail(message, exc)
                continue
            heartbeat.remove(message)
            succeeded.append(message)
            for result in results:
                counts[result["status"]] = counts.get(result["status"], 0) + 1
        for start in range(0, len(succeeded), 10):
            chunk = succeeded[start : start + 10]
            try:
                response = sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)],
                )
                failed = response.get("Failed", [])
            except Exception as exc:
                failed = [{"Id": str(i), "Message": str(exc)} for i in range(len(chunk))]
            for item in failed:  # e.g. an expired receipt: the redelivery finds the marker and is deleted then
                log.warning("could not delete message %s after processing it: %s", chunk[int(item["Id"])].message_id,
                            item.get("Message"))  # fmt: skip
                counts["delete_failed"] = counts.get("delete_failed", 0) + 1

    _forget_dead_workers(store, model.name)
    refill_at = max(1, settings.concurrency // 2)  # receive in batches, not one call per finished file
    inflight_written = 0.0
    try:
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix=f"ingest-{model.name}") as pool:
            while True:
                out_of_time = time.monotonic() - started > settings.max_seconds
                free = settings.concurrency - len(pending)
                was_idle = not pending
                batch = []
                if not out_of_time and free > 0 and (was_idle or free >= refill_at):
                    batch = receive(
                        sqs, url, free, settings.visibility_seconds, 0 if pending else settings.wait_seconds
                    )
                for message in batch:
                    heartbeat.add(message)
                    pending[pool.submit(ingestor.handle, message)] = message
                if batch:
                    counts["received"] = counts.get("received", 0) + len(batch)
                    if was_idle or time.monotonic() - inflight_written >= INFLIGHT_REFRESH_SECONDS:
                        write_inflight()
                        inflight_written = time.monotonic()
                if not pending:
                    # Messages that just failed come back after the retry delay: a short delay is
                    # waited for here rather than paying for a new run (and a new process) per retry.
                    if not batch and (out_of_time or time.monotonic() >= retry_until):
                        break
                    continue
                # The queue just gave messages and there is room for more: ask again at once.
                more = bool(batch) and settings.concurrency - len(pending) >= refill_at and not out_of_time
                done, _ = wait(list(pending), timeout=0 if more else None, return_when=FIRST_COMPLETED)
                finish(done)
    finally:
        heartbeat.stopped.set()
        try:
            store.client.delete_object(Bucket=store.bucket, Key=inflight)
        except Exception:
            log.warning("could not remove %s", inflight, exc_info=True)
    summary = {
        "model": model.name,
        "queue": url,
        "seconds": round(time.monotonic() - started, 2),
        "counts": counts,
    }
    validator = ingestor.validator
    if isinstance(validator, SuiteValidator):
        summary["validations"] = {"run": validator.misses, "reused": validator.hits}
    log.info("ingest %s: %s", model.name, summary)
    return summary


# --------------------------------------------------------------------------------------------
# Reconciliation: announce files whose notification never arrived
# --------------------------------------------------------------------------------------------


def reconciliation_event(bucket: str, key: str, etag: str, size: int, created: dt.datetime | None) -> dict:
    """The S3 ``ObjectCreated`` notification S3 would have sent for an existing object.

    The key is URL-encoded as S3 encodes it (``parse_message`` decodes it); ``eventTime`` is when the
    object landed, so the marker's latency says how long the file really waited.
    """
    created = (created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventTime": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": RECONCILE_EVENT_NAME,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": RECONCILE_CONFIGURATION_ID,
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size, "eTag": etag},
                },
            }
        ]
    }


def reconcile(
    model: ModelConfig,
    store: Store,
    sqs,
    *,
    since: dt.date | None = None,
    dry_run: bool = False,
    limit: int | None = None,
) -> dict:
    """Announce on the model's queue every raw file version that has no result marker.

    Lists only ``model.raw_prefix`` (partitions ``dt=`` on or after ``since`` if given). Keys outside
    a ``dt=`` partition are counted as ``not_partitioned`` and never announced (the consumer would
    refuse them as poison). ``limit`` caps the messages sent; the rest are counted as ``deferred``
    and found by the next run. Safe to repeat: a file announced twice is ingested once.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    done = {item.key for item in store.list(f"ingest/{model.name}/{RESULTS}/")}
    listed, already_done, not_partitioned, missing = 0, 0, [], []
    for item in store.list(model.raw_prefix):
        day = partition_date(item.key)
        if day is None or item.key.endswith("/"):
            not_partitioned.append(item.key)
            continue
        if since is not None and day < since:
            continue
        listed += 1
        if result_key(model.name, item.key, item.etag) in done:
            already_done += 1
        else:
            missing.append(item)
    chosen = missing if limit is None else missing[:limit]
    url = None
    announced = 0
    failed: list[str] = []
    if not dry_run and chosen:
        url = queue_url(sqs, model.name)
        for start in range(0, len(chosen), 10):
            batch = chosen[start : start + 10]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(
                        reconciliation_event(store.bucket, item.key, item.etag, item.size, item.last_modified)
                    ),
                }
                for i, item in enumerate(batch)
            ]
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            announced += len(response.get("Successful", []))
            for entry in response.get("Failed", []):
                failed.append(f"{batch[int(entry['Id'])].key}: {entry.get('Code')} {entry.get('Message', '')}".strip())
    if not_partitioned:
        log.warning(
            "%d key(s) under %s are not in a dt=YYYY-MM-DD partition and are not announced: %s",
            len(not_partitioned), model.raw_prefix, not_partitioned[:5],
        )  # fmt: skip
    result = {
        "model": model.name,
        "prefix": store.uri(model.raw_prefix),
        "since": since.isoformat() if since else None,
        "dry_run": dry_run,
        "listed": listed,
        "already_done": already_done,
        "missing": len(missing),
        "announced": announced,
        "deferred": len(missing) - len(chosen),
        "not_partitioned": len(not_partitioned),
        # What was announced (or, in a dry run, would be), capped; the counts above are complete.
        "keys": [item.key for item in chosen[:MAX_REPORTED_KEYS]],
        "keys_truncated": len(chosen) > MAX_REPORTED_KEYS,
        "queue": url,
    }
    log.info("reconcile %s: %s", model.name, summarize_reconciliation(result))
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(chosen)} announcements to {url} failed (first: {failed[:3]}); "
            "the files stay without a marker: run reconcile again"
        )
    return result


def summarize_reconciliation(result: dict) -> str:
    scope = f"partitions from {result['since']}" if result["since"] else "all partitions"
    line = (
        f"{result['model']}: {result['listed']} raw file(s) in {scope} of {result['prefix']}, "
        f"{result['already_done']} already ingested, {result['missing']} without a result marker"
    )
    if result["dry_run"]:
        line += f"; dry run, nothing sent: {result['missing'] - result['deferred']} would be announced"
    else:
        line += f"; {result['announced']} announced"
    if result["deferred"]:
        line += f", {result['deferred']} left for the next run (limit)"
    if result["not_partitioned"]:
        line += f"; {result['not_partitioned']} key(s) outside any dt= partition ignored"
    return line


def _date_argument(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; expected YYYY-MM-DD, e.g. 2026-11-01") from None


def _limit_argument(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def main(argv: list[str] | None = None) -> int:
    from modelops.config import load_all_models

    parser = argparse.ArgumentParser(prog="python -m modelops.ingest", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    again = commands.add_parser(
        "reconcile", help="announce raw files that have no ingest result (their notification was lost)"
    )
    again.add_argument("--model", required=True)
    again.add_argument(
        "--since", type=_date_argument, metavar="YYYY-MM-DD", help="only partitions dt= on or after this day"
    )
    again.add_argument("--dry-run", action="store_true", help="count and list, send nothing")
    again.add_argument("--limit", type=_limit_argument, metavar="N", help="announce at most N files")
    again.add_argument("--json", action="store_true", help="print the full result (keys included) as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    models = load_all_models()
    if args.model not in models:
        parser.error(f"unknown model {args.model!r}; declared: {sorted(models)}")
    from botocore.exceptions import BotoCoreError

    try:
        result = reconcile(
            models[args.model], Store(), _settings.sqs_client(), since=args.since, dry_run=args.dry_run,
            limit=args.limit,
        )  # fmt: skip
    except RuntimeError as exc:  # the queue is missing, or sends failed: the message says what to do
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:  # no endpoint or no credentials
        print(f"error: {exc}; is this shell pointed at the stack (`eval $(make -s env)`)?", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else summarize_reconciliation(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
