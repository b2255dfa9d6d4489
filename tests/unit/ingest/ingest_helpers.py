"""Helpers of the ingest unit tests: a fake validator, S3 events, uploads and a consume run against
moto's in-process S3 + SQS (the ``aws`` fixture of this folder's conftest.py)."""

from __future__ import annotations

import datetime as dt
import json

from modelops import batches
from modelops.data.validation import ValidationOutcome
from modelops.ingest.consumer import consume
from modelops.ingest.ingestor import Ingestor
from modelops.ingest.queues import queue_depth
from modelops.ingest.settings import IngestSettings
from modelops.local import datagen
from modelops.store import Store

BUCKET = "bucket"
DAY = dt.date(2026, 11, 1)


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


def _settings(**overrides) -> IngestSettings:
    return IngestSettings(
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
    return batches.to_csv_bytes(datagen.generate_batch("churn", DAY, 20, seed=seed))


def _consume(aws, model, validator=None, **settings):
    validator = validator or FakeValidator()
    ingestor = Ingestor(model, aws["store"], known_models={"churn", "delivery_time"}, validator=validator)
    return consume(model, settings=_settings(**settings), store=aws["store"], sqs=aws["sqs"], ingestor=ingestor)


def _keys(store: Store, prefix: str) -> list[str]:
    return sorted(item.key for item in store.list(prefix))


def _depth(aws, url=None) -> dict:
    return queue_depth(aws["sqs"], url or aws["url"])
