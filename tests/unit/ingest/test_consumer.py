"""Ingestion against in-process S3 + SQS (moto's mock_aws): message checks, outcomes, idempotency,
retries into the dead-letter queue. A fake validator stands in for Great Expectations (the
integration tests run the real suite)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from moto import mock_aws

from modelops.config import get_model
from modelops.data.validation import ValidationOutcome
from modelops.ingest import consumer as ingest
from modelops.local import bootstrap, datagen
from modelops.store import Store

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

    from modelops_airflow.sqs_watch import QueueHasMessagesTrigger

    name = bootstrap.queue_name("churn")
    trigger = QueueHasMessagesTrigger(name, poll_seconds=0.01, idle_seconds=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "modelops_airflow.sqs_watch.QueueHasMessagesTrigger"
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


# ---------------------------------------------------------------------------------------------
# Reconciliation: files whose notification never arrived
# ---------------------------------------------------------------------------------------------


def _reconcile(aws, model, **kwargs) -> dict:
    return ingest.reconcile(model, aws["store"], aws["sqs"], **kwargs)


def _announced_keys(aws, url=None) -> list[str]:
    """Receive everything waiting (then make it visible again) and return the announced keys."""
    url = url or aws["url"]
    messages = []
    while batch := aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
    for message in messages:
        aws["sqs"].change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    model = get_model("churn")
    keys = []
    for message in messages:
        (event,) = ingest.parse_message(message["Body"], bucket=BUCKET, model=model, known_models={"churn"})
        assert event.event_name == ingest.RECONCILE_EVENT_NAME
        keys.append(event.key)
    return sorted(keys)


def test_reconciliation_event_is_an_object_created_event_the_consumer_parses(model):
    key = "raw/churn/dt=2026-11-01/a file+b=c.csv"
    created = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)
    body = json.dumps(ingest.reconciliation_event(BUCKET, key, "abc123", 42, created))
    assert "a+file%2Bb%3Dc.csv" in body  # URL-encoded as S3 does; parse_message decodes it
    (event,) = ingest.parse_message(body, bucket=BUCKET, model=model, known_models={"churn"})
    assert (event.key, event.etag, event.event_name) == (key, "abc123", "ObjectCreated:Reconcile")
    assert ingest._parse_time(event.event_time) == created


def test_reconcile_announces_only_files_without_a_marker_once(aws, model):
    day = "raw/churn/dt=2026-11-01"
    _put(aws, f"{day}/done.csv", _csv())
    _put(aws, f"{day}/bad.csv", _csv(1).replace(b"premium", b"BAD", 1))
    assert _consume(aws, model)["counts"] == {"received": 2, "validated": 1, "quarantined": 1}
    lost = [f"{day}/lost-{i}.csv" for i in range(2)]
    for i, key in enumerate(lost):
        _put(aws, key, _csv(10 + i), notify=False)

    result = _reconcile(aws, model)
    assert {k: result[k] for k in ("listed", "already_done", "missing", "announced", "deferred", "dry_run")} == {
        "listed": 4, "already_done": 2, "missing": 2, "announced": 2, "deferred": 0, "dry_run": False,
    }  # fmt: skip
    assert result["keys"] == lost and result["queue"] == aws["url"]
    # One message per unmarked file; the quarantined file has a marker too, so it is not among them.
    assert _announced_keys(aws) == lost


def test_reconciled_files_are_ingested_by_the_consumer_and_a_second_reconcile_announces_nothing(aws, model):
    key = "raw/churn/dt=2026-11-01/landed before provisioning+1.csv"
    etag = _put(aws, key, _csv(), notify=False)
    assert _reconcile(aws, model)["announced"] == 1

    assert _consume(aws, model)["counts"] == {"received": 1, "validated": 1}
    store = aws["store"]
    assert _keys(store, "validated/") == ["validated/churn/dt=2026-11-01/landed before provisioning+1.csv"]
    assert store.get_bytes(_keys(store, "validated/")[0]) == store.get_bytes(key)
    marker = store.get_json(ingest.result_key("churn", key, etag))
    assert marker["status"] == "validated" and marker["event_name"] == "ObjectCreated:Reconcile"
    assert marker["latency_seconds"] >= 0
    assert _depth(aws) == {"visible": 0, "in_flight": 0}

    again = _reconcile(aws, model)
    assert (again["listed"], again["already_done"], again["announced"], again["keys"]) == (1, 1, 0, [])
    assert _depth(aws) == {"visible": 0, "in_flight": 0}


def test_reannouncing_a_file_whose_notification_is_still_queued_is_a_harmless_duplicate(aws, model):
    key = "raw/churn/dt=2026-11-01/racing.csv"
    _put(aws, key, _csv())  # its notification waits in the queue, not yet consumed
    assert _reconcile(aws, model)["announced"] == 1  # no marker yet: announced a second time
    validator = FakeValidator()
    summary = _consume(aws, model, validator)  # both messages in one receive, handled by two workers
    assert summary["counts"] == {"received": 2, "validated": 1, "duplicate": 1}
    assert validator.calls == 1
    assert _keys(aws["store"], "validated/") == ["validated/churn/dt=2026-11-01/racing.csv"]
    assert len(_keys(aws["store"], "ingest/churn/results/")) == 1


def test_reconcile_dry_run_sends_nothing(aws, model):
    _put(aws, "raw/churn/dt=2026-11-01/lost.csv", _csv(), notify=False)
    result = _reconcile(aws, model, dry_run=True)
    assert (result["missing"], result["announced"], result["dry_run"], result["queue"]) == (1, 0, True, None)
    assert result["keys"] == ["raw/churn/dt=2026-11-01/lost.csv"]
    assert _depth(aws) == {"visible": 0, "in_flight": 0}


def test_reconcile_dry_run_works_before_the_queue_exists_and_a_real_run_says_to_provision(aws):
    late = get_model("delivery_time")  # declared, but the fixture created no queue for it
    aws["store"].put_bytes(f"{late.raw_prefix}dt=2026-11-01/d.csv", b"x")
    assert ingest.reconcile(late, aws["store"], aws["sqs"], dry_run=True)["missing"] == 1
    with pytest.raises(RuntimeError, match="make provision"):
        ingest.reconcile(late, aws["store"], aws["sqs"])


def test_reconcile_since_keeps_only_partitions_on_or_after_the_day(aws, model):
    for day in ("2026-10-31", "2026-11-01", "2026-11-02"):
        _put(aws, f"raw/churn/dt={day}/f.csv", _csv(), notify=False)
    result = _reconcile(aws, model, since=dt.date(2026, 11, 1))
    assert (result["listed"], result["announced"], result["since"]) == (2, 2, "2026-11-01")
    assert _announced_keys(aws) == ["raw/churn/dt=2026-11-01/f.csv", "raw/churn/dt=2026-11-02/f.csv"]


def test_reconcile_never_announces_anything_outside_the_models_raw_partitions(aws, model):
    outside = [
        "raw/churn_v2/dt=2026-11-01/f.csv",  # a prefix of the model's name is not its prefix
        "raw/delivery_time/dt=2026-11-01/f.csv",
        "validated/churn/dt=2026-11-01/f.csv",
        "quarantine/churn/dt=2026-11-01/f.csv",
        "raw/churnf.csv",
    ]
    for key in outside:
        aws["store"].put_bytes(key, _csv())
    aws["store"].put_bytes("raw/churn/README.txt", b"not a batch")  # under the prefix, in no partition
    aws["store"].put_bytes("raw/churn/dt=2026-11-01/", b"")  # a "folder" object
    mine = "raw/churn/dt=2026-11-01/f.csv"
    _put(aws, mine, _csv(), notify=False)
    result = _reconcile(aws, model)
    assert (result["listed"], result["announced"], result["not_partitioned"]) == (1, 1, 2)
    assert _announced_keys(aws) == [mine]


def test_reconcile_sends_in_batches_of_ten_and_limit_defers_the_rest(aws, model, monkeypatch):
    keys = [f"raw/churn/dt=2026-11-01/f{i:02d}.csv" for i in range(23)]
    for key in keys:
        _put(aws, key, b"a,b\n1,2\n", notify=False)
    calls = []
    real = aws["sqs"].send_message_batch
    monkeypatch.setattr(aws["sqs"], "send_message_batch", lambda **kw: calls.append(len(kw["Entries"])) or real(**kw))

    first = _reconcile(aws, model, limit=5)
    assert (first["announced"], first["deferred"], first["keys"]) == (5, 18, keys[:5])
    calls.clear()
    everything = _reconcile(aws, model)
    assert (everything["missing"], everything["announced"], everything["deferred"]) == (23, 23, 0)
    assert calls == [10, 10, 3]
    assert _depth(aws)["visible"] == 28  # 5 + 23: nothing was ingested in between
    with pytest.raises(ValueError, match="limit must be at least 0"):
        _reconcile(aws, model, limit=-1)


def test_reconcile_cli_prints_a_summary_and_refuses_unknown_models_and_bad_dates(aws, model, capsys):
    _put(aws, "raw/churn/dt=2026-11-01/lost.csv", _csv(), notify=False)
    _put(aws, "raw/churn/dt=2026-10-01/old.csv", _csv(), notify=False)
    assert ingest.main(["reconcile", "--model", "churn", "--since", "2026-11-01", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "churn: 1 raw file(s) in partitions from 2026-11-01" in out
    assert "dry run, nothing sent: 1 would be announced" in out
    assert _depth(aws)["visible"] == 0
    assert ingest.main(["reconcile", "--model", "churn"]) == 0
    assert "2 without a result marker; 2 announced" in capsys.readouterr().out
    assert _depth(aws)["visible"] == 2

    with pytest.raises(SystemExit) as exited:
        ingest.main(["reconcile", "--model", "nobody"])
    assert exited.value.code == 2
    assert "unknown model 'nobody'; declared: ['churn', 'delivery_time']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ingest.main(["reconcile", "--model", "churn", "--since", "2026-13-01"])
    assert "'2026-13-01' is not a date; expected YYYY-MM-DD" in capsys.readouterr().err
    assert _depth(aws)["visible"] == 2
