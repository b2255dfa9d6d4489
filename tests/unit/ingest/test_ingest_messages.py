"""The S3 event format of the ingest queue: what is poison and why, and the reconciliation event."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from tests.unit.ingest.ingest_helpers import BUCKET, _event

from modelops.ingest.messages import PoisonMessage, parse_event_time, parse_message, reconciliation_event


def test_test_event_is_acknowledged_as_nothing_to_do(model):
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
    assert parse_message(body, bucket=BUCKET, model=model, known_models={"churn"}) == []


def test_event_key_is_url_decoded(model):
    events = parse_message(
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
    with pytest.raises(PoisonMessage, match=problem):
        parse_message(body, bucket=BUCKET, model=model, known_models={"churn", "delivery_time"})


def test_reconciliation_event_is_an_object_created_event_the_consumer_parses(model):
    key = "raw/churn/dt=2026-11-01/a file+b=c.csv"
    created = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)
    body = json.dumps(reconciliation_event(BUCKET, key, "abc123", 42, created))
    assert "a+file%2Bb%3Dc.csv" in body  # URL-encoded as S3 does; parse_message decodes it
    (event,) = parse_message(body, bucket=BUCKET, model=model, known_models={"churn"})
    assert (event.key, event.etag, event.event_name) == (key, "abc123", "ObjectCreated:Reconcile")
    assert parse_event_time(event.event_time) == created
