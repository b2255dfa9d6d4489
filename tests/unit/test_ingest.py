"""Ingestion against in-process S3 + SQS (moto's mock_aws): message checks, outcomes, idempotency,
retries into the dead-letter queue. A fake validator stands in for Great Expectations (the
integration tests run the real suite)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from moto import mock_aws

from modelops import bootstrap, datagen, ingest
from modelops.config import get_model
from modelops.storage import Store
from modelops.validation import ValidationOutcome

BUCKET = "bucket"
DAY = dt.date(2026, 11, 1)


@pytest.fixture
def model():
    return get_model("churn")


class FakeValidator:
    """Passes unless the bytes contain ``BAD``; parses like the real one (so unreadable files fail)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, data, loader, name):
        self.calls += 1
        loader()
        ok = b"BAD" not in data
        return (
            ValidationOutcome(
                suite_name="churn",
                data_name=name,
                success=ok,
                statistics={"evaluated_expectations": 1, "successful_expectations": int(ok)},
                failures=[] if ok else [{"expectation_type": "expect_x", "column": "plan", "kwargs": {}}],
                result_json={"success": ok, "results": []},
            ),
            False,
        )


@pytest.fixture
def aws(monkeypatch, model):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MODELOPS_BUCKET": BUCKET,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        store = Store(BUCKET)
        store.ensure_bucket()
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName=bootstrap.dead_letter_queue_name("churn"))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=bootstrap.queue_name("churn"),
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        yield {"store": store, "sqs": sqs, "url": url, "dlq": dlq}


def _settings(**overrides) -> ingest.IngestSettings:
    return ingest.IngestSettings(
        **{"concurrency": 3, "visibility_seconds": 30, "retry_delay_seconds": 0, "wait_seconds": 0, **overrides}
    )


def _event(key: str, bucket: str = BUCKET, etag: str | None = None) -> str:
    from urllib.parse import quote_plus

    obj = {"key": quote_plus(key), "size": 1}
    if etag:
        obj["eTag"] = etag
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "eventTime": dt.datetime.now(dt.UTC).isoformat(),
                    "s3": {"bucket": {"name": bucket}, "object": obj},
                }
            ]
        }
    )


def _put(aws, key: str, data: bytes, notify: bool = True) -> str:
    etag = aws["store"].put_bytes(key, data)
    if notify:
        aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=_event(key, etag=etag))
    return etag


def _csv(seed: int = 0) -> bytes:
    return datagen.to_csv_bytes(datagen.generate_batch("churn", DAY, 20, seed=seed))


def _consume(aws, model, validator=None, **settings):
    validator = validator or FakeValidator()
    ingestor = ingest.Ingestor(model, aws["store"], known_models={"churn", "delivery_time"}, validator=validator)
    return ingest.consume(model, settings=_settings(**settings), store=aws["store"], sqs=aws["sqs"], ingestor=ingestor)


def _keys(store: Store, prefix: str) -> list[str]:
    return sorted(item.key for item in store.list(prefix))


def _depth(aws, url=None) -> dict:
    return ingest.queue_depth(aws["sqs"], url or aws["url"])


# ---------------------------------------------------------------------------------------------
# parse_message
# ---------------------------------------------------------------------------------------------


def test_test_event_is_acknowledged_as_nothing_to_do(model):
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
    assert ingest.parse_message(body, bucket=BUCKET, model=model, known_models={"churn"}) == []


def test_event_key_is_url_decoded(model):
    events = ingest.parse_message(
        _event("raw/churn/dt=2026-11-01/a file+b.csv"), bucket=BUCKET, model=model, known_models={"churn"}
    )
    assert events[0].key == "raw/churn/dt=2026-11-01/a file+b.csv"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "not an S3 event object"),
        (json.dumps({"hello": "world"}), "no 'Records' list"),
        (_event("raw/churn/dt=2026-11-01/a.csv", bucket="other"), "not the platform bucket"),
        (_event("raw/delivery_time/dt=2026-11-01/a.csv"), "belongs to model 'delivery_time'"),
        (_event("raw/nobody/dt=2026-11-01/a.csv"), "names no known model"),
        (_event("raw/churn/a.csv"), "dt=YYYY-MM-DD partition"),
    ],
)
def test_malformed_messages_are_poison_with_a_reason(model, body, problem):
    with pytest.raises(ingest.PoisonMessage, match=problem):
        ingest.parse_message(body, bucket=BUCKET, model=model, known_models={"churn", "delivery_time"})


def test_settings_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.setenv("MODELOPS_INGEST_CONCURRENCY", "7")
    monkeypatch.setenv("MODELOPS_INGEST_RETRY_DELAY_SECONDS", "2")
    settings = ingest.IngestSettings.from_env()
    assert (settings.concurrency, settings.retry_delay_seconds, settings.visibility_seconds) == (7, 2, 300)
    monkeypatch.setenv("MODELOPS_INGEST_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="MODELOPS_INGEST_CONCURRENCY='0' must be at least 1"):
        ingest.IngestSettings.from_env()


# ---------------------------------------------------------------------------------------------
# consume
# ---------------------------------------------------------------------------------------------


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
        ingest.result_key("churn", good, store.client.head_object(Bucket=BUCKET, Key=good)["ETag"].strip('"'))
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


# ---------------------------------------------------------------------------------------------
# The trigger that wakes ingest_<model> (runs in the triggerer; reads the depth, never receives)
# ---------------------------------------------------------------------------------------------


def test_trigger_fires_on_visible_messages_without_receiving_them(aws):
    import asyncio

    from modelops.sqs_watch import QueueHasMessagesTrigger

    name = bootstrap.queue_name("churn")
    trigger = QueueHasMessagesTrigger(name, poll_seconds=0.01, idle_seconds=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "modelops.sqs_watch.QueueHasMessagesTrigger"
    assert kwargs == {"queue_name": name, "poll_seconds": 0.01, "idle_seconds": 0.05}

    async def first_event(t):
        async for event in t.run():
            return event.payload

    assert asyncio.run(first_event(trigger))["status"] == "idle"
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody="x")
    assert asyncio.run(first_event(QueueHasMessagesTrigger(**kwargs))) == {
        "status": "messages",
        "queue": name,
        "visible": 1,
    }
    attrs = aws["sqs"].receive_message(QueueUrl=aws["url"], MessageSystemAttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ][0]["Attributes"]
    assert attrs["ApproximateReceiveCount"] == "1"  # the trigger's polls were not receives
