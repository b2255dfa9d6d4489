"""Handling one message of a model's ingest queue: check it, skip a file already ingested,
validate the file, place it in ``validated/`` or ``quarantine/`` with its report, write the marker.

Why a module: this is the per-message transaction the consume loop runs on its worker threads;
it is idempotent (the result marker, written last, means "done"), so a redelivered or duplicate
message costs a marker read and nothing else. Failures are appended to the message's error
record, which the dead-letter handler reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import TYPE_CHECKING

from modelops.ingest.inflight import worker_id
from modelops.ingest.messages import ObjectEvent, PoisonMessage, parse_event_time, parse_message
from modelops.ingest.queues import Received
from modelops.ingest.validator import SuiteValidator, unreadable_outcome
from modelops.layout import (
    ingest_destination_key,
    ingest_error_key,
    ingest_object_id,
    ingest_result_key,
    validation_report_keys,
)
from modelops.store import Store

if TYPE_CHECKING:
    from modelops.config import ModelConfig
    from modelops.data.validation import ValidationOutcome

log = logging.getLogger(__name__)

#: Attempts kept in a message's error record; bodies are cut to this many characters there.
MAX_ERROR_HISTORY = 20
MAX_BODY_CHARS = 20_000


def _other(verdict: str) -> str:
    return "quarantined" if verdict == "validated" else "validated"


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
        #: Seconds spent per step over all files this ingestor handled (the consume summary's cost split).
        self.step_seconds: dict[str, float] = {}
        self._steps_guard = threading.Lock()

    def _add_steps(self, timings: dict[str, float]) -> None:
        with self._steps_guard:
            for step, seconds in timings.items():
                self.step_seconds[step] = self.step_seconds.get(step, 0.0) + seconds

    def _lock_for(self, oid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(oid, threading.Lock())

    def _rest(self, raw_key: str) -> str:
        """``<rest>`` of ``<raw prefix><rest>``: the part the validated/quarantine keys keep."""
        return raw_key[len(self.model.raw_prefix) :]

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

        started = time.perf_counter()
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
        marker = ingest_result_key(self.model.name, event.key, etag)
        # Two messages for one file version in one batch: one does the work.
        with self._lock_for(ingest_object_id(event.key, etag)):
            if self.store.exists(marker):
                response["Body"].close()
                log.info(
                    "%s (etag %s) already ingested: message %s is a duplicate", event.key, etag, message.message_id
                )
                return {"status": "duplicate", "key": event.key, "etag": etag, "marker": marker}
            data = response["Body"].read()
            timings = {"s3_get": time.perf_counter() - started}
            return self._ingest(event, message, etag, data, marker, response.get("LastModified"), timings)

    def _ingest(
        self, event: ObjectEvent, message: Received, etag: str, data: bytes, marker: str, modified, timings: dict
    ) -> dict:
        from modelops.data import validation

        started = time.perf_counter()
        outcome, reused = self._validate(data, self.store.uri(event.key))
        validated = time.perf_counter()
        timings.update(outcome.timings)
        timings["validate_wait"] = validated - started  # validation as this thread saw it (incl. queueing for GX)
        verdict = "validated" if outcome.success else "quarantined"
        destination = self._place(event.key, etag, verdict)
        placed = time.perf_counter()
        json_key, html_key = self._write_report(event.key, etag, verdict, destination, outcome)
        timings.update(s3_place=placed - validated, report=time.perf_counter() - placed)
        now = dt.datetime.now(dt.UTC)
        event_time = parse_event_time(event.event_time) or (modified.astimezone(dt.UTC) if modified else None)
        result = {
            "status": verdict,
            "model": self.model.name,
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
            "worker": worker_id(),
            "received_at": dt.datetime.fromtimestamp(message.received_at, dt.UTC).isoformat(),
            "step_seconds": {step: round(seconds, 4) for step, seconds in timings.items()},
        }
        before_marker = time.perf_counter()
        self.store.put_json(marker, result)  # last: its presence means "done"
        self._add_steps({**timings, "marker": time.perf_counter() - before_marker})
        log.info("%s → %s (%s)", event.key, destination, validation.summarize_failures(outcome).splitlines()[0])
        return result

    def _validate(self, data: bytes, name: str) -> tuple[ValidationOutcome, bool]:
        """The suite's verdict (and whether it was reused); an unreadable file fails validation."""
        from modelops import batches

        try:
            return self.validator(data, lambda: batches.read_batch(data, self.model.data.file_format, name), name)
        except batches.BatchReadError as exc:
            return unreadable_outcome(self.model, name, str(exc)), False

    def _place(self, raw_key: str, etag: str, verdict: str) -> str:
        """Copy the file to its verdict's zone; remove a copy of an older version from the other one."""
        model, rest = self.model.name, self._rest(raw_key)
        destination = ingest_destination_key(model, rest, verdict)
        client, bucket = self.store.client, self.store.bucket
        client.copy_object(
            Bucket=bucket,
            Key=destination,
            CopySource={"Bucket": bucket, "Key": raw_key},
            CopySourceIfMatch=f'"{etag}"',
            MetadataDirective="COPY",
        )
        # A new version of a key may change verdict: a file is in exactly one of the two places.
        stale = [
            ingest_destination_key(model, rest, _other(verdict)),
            *validation_report_keys(model, rest, _other(verdict)),
        ]
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale], "Quiet": True})
        return destination

    def _write_report(
        self, raw_key: str, etag: str, verdict: str, destination: str, outcome: ValidationOutcome
    ) -> tuple[str, str]:
        """The validation report as JSON and as Data Docs HTML; returns their keys."""
        from modelops.data import validation

        json_key, html_key = validation_report_keys(self.model.name, self._rest(raw_key), verdict)
        report = {
            "model": self.model.name,
            "source": self.store.uri(raw_key),
            "etag": etag,
            "verdict": verdict,
            "destination": self.store.uri(destination),
            "summary": validation.summarize_failures(outcome),
            **outcome.to_dict(),
            "result": outcome.result_json,
        }
        self.store.put_json(json_key, report)
        self.store.put_text(html_key, validation.render_data_docs_html(outcome), "text/html; charset=utf-8")
        return json_key, html_key

    def record_error(self, message: Received, exc: BaseException) -> dict:
        """Append the failure to the message's error record (what the dead-letter handler reads)."""
        key = ingest_error_key(self.model.name, message.message_id)
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
        poison = isinstance(exc, PoisonMessage)
        attempt = {"receive_count": message.receive_count, "error": text, "at": now, "poison": poison}
        record["attempts"] = [*record.get("attempts", []), attempt][-MAX_ERROR_HISTORY:]
        record.update(last_error=text, last_error_at=now, receive_count=message.receive_count, poison=poison)
        self.store.put_json(key, record)
        return record
