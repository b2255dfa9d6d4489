"""The few S3 operations every step needs, on one bucket seen through boto3.

Where things go in the bucket is ``modelops.layout``'s business; this module only reads and
writes the keys it is given.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from modelops import settings as _settings
from modelops.layout import s3_uri

log = logging.getLogger(__name__)


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
