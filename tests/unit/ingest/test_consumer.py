"""Ingestion against in-process S3 + SQS (moto's mock_aws): outcomes, idempotency, retries into the
dead-letter queue. A fake validator stands in for Great Expectations (the integration tests run
the real suite)."""

from __future__ import annotations

import json

from tests.unit.ingest.ingest_helpers import BUCKET, DAY, FakeValidator, _consume, _csv, _depth, _event, _keys, _put

from modelops.layout import ingest_result_key
from modelops.local import bootstrap, datagen


def test_valid_invalid_and_unreadable_files_each_land_once_with_a_report(aws, model):
    good, bad, cut = (f"raw/churn/dt=2026-11-01/{name}.csv" for name in ("good", "bad", "cut"))
    _put(aws, good, _csv())
    _put(aws, bad, _csv(1).replace(b"premium", b"BAD", 1))
    _put(aws, cut, datagen.corrupt_batch(datagen.generate_batch("churn", DAY, 20), "truncated_file"))
    summary = _consume(aws, model)

    store = aws["store"]
    assert summary["counts"] == {"received": 3, "validated": 1, "quarantined": 2}
    assert _keys(store, "validated/") == ["validated/churn/dt=2026-11-01/good.csv"]
    assert _keys(store, "quarantine/") == sorted(
        f"quarantine/churn/dt=2026-11-01/{n}" for n in ("bad.csv", "bad.csv.validation.html",
                                                         "bad.csv.validation.json", "cut.csv",
                                                         "cut.csv.validation.html", "cut.csv.validation.json")
    )  # fmt: skip
    assert store.get_bytes("validated/churn/dt=2026-11-01/good.csv") == store.get_bytes(good)
    assert store.exists("ingest/churn/reports/dt=2026-11-01/good.csv.validation.json")
    cut_report = store.get_json("quarantine/churn/dt=2026-11-01/cut.csv.validation.json")
    assert cut_report["verdict"] == "quarantined" and "truncated file" in cut_report["summary"]
    assert _depth(aws) == {"visible": 0, "in_flight": 0}
    assert _keys(store, "ingest/churn/inflight/") == []
    marker = store.get_json(
        ingest_result_key("churn", good, store.client.head_object(Bucket=BUCKET, Key=good)["ETag"].strip('"'))
    )
    assert marker["status"] == "validated" and marker["receive_count"] == 1 and marker["latency_seconds"] >= 0


def test_redelivered_and_duplicate_messages_never_produce_a_second_copy(aws, model):
    key = "raw/churn/dt=2026-11-01/good.csv"
    etag = _put(aws, key, _csv())
    for _ in range(3):  # S3 may deliver an event more than once
        aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=_event(key, etag=etag))
    validator = FakeValidator()
    summary = _consume(aws, model, validator)
    assert summary["counts"]["validated"] == 1 and summary["counts"]["duplicate"] == 3
    assert validator.calls == 1
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=_event(key, etag=etag))
    assert _consume(aws, model, validator)["counts"] == {"received": 1, "duplicate": 1}
    assert validator.calls == 1
    assert _keys(aws["store"], "validated/") == ["validated/churn/dt=2026-11-01/good.csv"]


def test_a_new_version_that_turns_bad_leaves_only_the_quarantined_copy(aws, model):
    key = "raw/churn/dt=2026-11-01/f.csv"
    _put(aws, key, _csv())
    _consume(aws, model)
    _put(aws, key, _csv().replace(b"premium", b"BAD", 1))
    _consume(aws, model)
    assert _keys(aws["store"], "validated/") == []
    assert "quarantine/churn/dt=2026-11-01/f.csv" in _keys(aws["store"], "quarantine/")
    assert not aws["store"].exists("ingest/churn/reports/dt=2026-11-01/f.csv.validation.json")


def test_test_event_is_deleted_not_retried(aws, model):
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=json.dumps({"Event": "s3:TestEvent"}))
    assert _consume(aws, model)["counts"] == {"received": 1, "test_event": 1}
    assert _depth(aws) == {"visible": 0, "in_flight": 0}


def test_poison_is_recorded_and_reaches_the_dlq_after_max_receives(aws, model):
    missing = "raw/churn/dt=2026-11-01/missing.csv"
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=_event(missing))
    # Retry delay 0: the message comes straight back; the 6th receive moves it to the DLQ instead.
    assert _consume(aws, model)["counts"] == {"received": 5, "poison": 5}
    assert _depth(aws)["visible"] == 0 and _depth(aws, aws["dlq"])["visible"] == 1
    (record_key,) = _keys(aws["store"], "ingest/churn/errors/")
    record = aws["store"].get_json(record_key)
    assert record["receive_count"] == bootstrap.MAX_RECEIVE_COUNT
    assert [a["receive_count"] for a in record["attempts"]] == [1, 2, 3, 4, 5]
    assert "does not exist" in record["first_error"] and record["poison"] is True


def test_processing_error_returns_the_message_without_copying(aws, model):
    key = "raw/churn/dt=2026-11-01/good.csv"
    _put(aws, key, _csv())

    def broken(data, loader, name):
        raise RuntimeError("GX blew up")

    assert _consume(aws, model, broken, retry_delay_seconds=30)["counts"] == {"received": 1, "failed": 1}
    assert _keys(aws["store"], "validated/") == [] and _keys(aws["store"], "ingest/churn/results/") == []
    assert _depth(aws) == {"visible": 0, "in_flight": 1}  # back after the retry delay
    (record_key,) = _keys(aws["store"], "ingest/churn/errors/")
    assert aws["store"].get_json(record_key)["last_error"] == "RuntimeError: GX blew up"


def test_consumer_stops_receiving_after_its_time_budget(aws, model):
    for i in range(4):
        _put(aws, f"raw/churn/dt=2026-11-01/f{i}.csv", _csv(i))
    summary = _consume(aws, model, concurrency=1, max_seconds=1e-9)
    assert summary["counts"] == {}  # out of time before the first receive: everything stays queued
    assert _depth(aws)["visible"] == 4
