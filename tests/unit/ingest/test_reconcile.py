"""Reconciliation against in-process S3 + SQS: files whose notification never arrived are announced
once, and only those; the command line prints a summary."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.unit.ingest.ingest_helpers import BUCKET, FakeValidator, _consume, _csv, _depth, _keys, _put

from modelops.config import get_model
from modelops.ingest.__main__ import main
from modelops.ingest.messages import RECONCILE_EVENT_NAME, parse_message
from modelops.ingest.reconcile import reconcile
from modelops.layout import ingest_result_key


def _reconcile(aws, model, **kwargs) -> dict:
    return reconcile(model, aws["store"], aws["sqs"], **kwargs)


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
        (event,) = parse_message(message["Body"], bucket=BUCKET, model=model, known_models={"churn"})
        assert event.event_name == RECONCILE_EVENT_NAME
        keys.append(event.key)
    return sorted(keys)


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
    marker = store.get_json(ingest_result_key("churn", key, etag))
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
    assert reconcile(late, aws["store"], aws["sqs"], dry_run=True)["missing"] == 1
    with pytest.raises(RuntimeError, match="make provision"):
        reconcile(late, aws["store"], aws["sqs"])


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
    assert main(["reconcile", "--model", "churn", "--since", "2026-11-01", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "churn: 1 raw file(s) in partitions from 2026-11-01" in out
    assert "dry run, nothing sent: 1 would be announced" in out
    assert _depth(aws)["visible"] == 0
    assert main(["reconcile", "--model", "churn"]) == 0
    assert "2 without a result marker; 2 announced" in capsys.readouterr().out
    assert _depth(aws)["visible"] == 2

    with pytest.raises(SystemExit) as exited:
        main(["reconcile", "--model", "nobody"])
    assert exited.value.code == 2
    from modelops.config import load_all_models

    assert f"unknown model 'nobody'; declared: {sorted(load_all_models())}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reconcile", "--model", "churn", "--since", "2026-13-01"])
    assert "'2026-13-01' is not a date; expected YYYY-MM-DD" in capsys.readouterr().err
    assert _depth(aws)["visible"] == 2
