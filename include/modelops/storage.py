"""The S3 layout and the few S3 operations every step needs.

Keys are derived from the model, the partition date and the run id only (see DESIGN.md), so a
cleared and re-run task overwrites the same objects instead of adding new ones.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from modelops import settings as _settings

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")


def partition(prefix: str, model: str, day: dt.date) -> str:
    """``<prefix>/<model>/dt=YYYY-MM-DD/`` for raw, validated, quarantine, capture, feedback, monitoring."""
    return f"{prefix}/{model}/dt={day.isoformat()}/"


def partition_date(key: str) -> dt.date | None:
    match = _PARTITION.search(key)
    return dt.date.fromisoformat(match.group(1)) if match else None


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ':' and '+'; keep keys portable and readable."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", run_id)


def snapshot_key(model: str, run_id: str) -> str:
    return f"snapshots/{model}/{safe_run_id(run_id)}/manifest.json"


def decision_key(model: str, run_id: str) -> str:
    return f"decisions/{model}/{safe_run_id(run_id)}.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    last_modified: dt.datetime | None = None


class Store:
    """A bucket seen through boto3. Construct one per task; it is cheap."""

    def __init__(self, bucket: str | None = None, client=None):
        settings = _settings.load()
        self.bucket = bucket or settings.bucket
        self.client = client or _settings.s3_client(settings)

    def uri(self, key: str) -> str:
        return s3_uri(self.bucket, key)

    def key_of(self, uri: str) -> str:
        """The key of an ``s3://<this bucket>/<key>`` URI (refuses another bucket's)."""
        prefix = f"s3://{self.bucket}/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri} is not in bucket s3://{self.bucket}")
        return uri[len(prefix) :]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["ETag"].strip('"'), item["Size"], item.get("LastModified"))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return response["ETag"].strip('"')

    def get_json(self, key: str):
        return json.loads(self.get_bytes(key))

    def put_json(self, key: str, value) -> str:
        body = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        return self.put_bytes(key, body, "application/json")

    def update_json(self, key: str, **fields) -> bool:
        """Add ``fields`` to the JSON object at ``key``; False (and nothing written) if it is absent."""
        if not self.exists(key):
            return False
        record = self.get_json(key)
        record.update(fields)
        self.put_json(key, record)
        return True

    def put_text(self, key: str, text: str, content_type: str = "text/plain; charset=utf-8") -> str:
        return self.put_bytes(key, text.encode(), content_type)

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            log.info("creating bucket %s", self.bucket)
            self.client.create_bucket(Bucket=self.bucket)
