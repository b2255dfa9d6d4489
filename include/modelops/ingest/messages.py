"""S3 event notifications as the ingest queue carries them: parsed on arrival, built for reconciliation.

Why a module: the message format is the contract between the bucket, ``reconcile`` and the
consumer. :func:`parse_message` refuses anything that is not an object-created event for one of
the model's raw partitions as *poison* (the reason is recorded, SQS dead-letters it eventually);
:func:`reconciliation_event` builds the event S3 would have sent for a file whose notification
never arrived, in the same format, so the consumer handles it like any other.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelops.layout import partition_date

if TYPE_CHECKING:
    from modelops.config import ModelConfig

log = logging.getLogger(__name__)

#: How a reconciliation announcement names itself; ``parse_message`` accepts any ``ObjectCreated:*``.
RECONCILE_EVENT_NAME = "ObjectCreated:Reconcile"
RECONCILE_CONFIGURATION_ID = "modelops-reconcile"


class PoisonMessage(ValueError):
    """The message cannot be processed as it is (not an S3 event, missing object, wrong model)."""


@dataclass(frozen=True)
class ObjectEvent:
    """One object-created record of a notification."""

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
    return [
        _parse_record(record, f"Records[{index}]", bucket=bucket, model=model, known_models=known_models)
        for index, record in enumerate(records)
    ]


def _parse_record(record, where: str, *, bucket: str, model: ModelConfig, known_models: set[str]) -> ObjectEvent:
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
    _check_key(key, where, model, known_models)
    return ObjectEvent(event_bucket, key, (obj.get("eTag") or obj.get("etag")), record.get("eventTime"), name)


def _check_key(key: str, where: str, model: ModelConfig, known_models: set[str]) -> None:
    """The key must be a file in a ``dt=`` partition of this model's raw prefix."""
    if not key.startswith(model.raw_prefix):
        owner = key.split("/")[1] if key.startswith("raw/") and key.count("/") >= 2 else None
        if owner in known_models:
            raise PoisonMessage(f"{where}: {key} belongs to model {owner!r}, not to {model.name!r}'s queue")
        raise PoisonMessage(
            f"{where}: {key} is not under {model.raw_prefix} and names no known model (known: {sorted(known_models)})"
        )
    if partition_date(key) is None or key.endswith("/"):
        raise PoisonMessage(f"{where}: {key} is not a file in a dt=YYYY-MM-DD partition of {model.raw_prefix}")


def _get(value, key):
    return value.get(key) if isinstance(value, dict) else None


def parse_event_time(value: str | None) -> dt.datetime | None:
    """An event's ``eventTime`` as an aware datetime (UTC if it names no zone); None if absent or bad."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


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
