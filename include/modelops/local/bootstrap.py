"""Resources the platform expects to exist, created idempotently by ``make up``.

In AWS the same resources come from infrastructure code; the names and settings here are what
that code must reproduce (see docs/ARCHITECTURE.md, "Wiring in AWS").
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from modelops import config as model_config
from modelops.ingest.queues import (
    DLQ_RETENTION_S,
    MAX_RECEIVE_COUNT,
    VISIBILITY_TIMEOUT_S,
    dead_letter_queue_name,
    queue_name,
)
from modelops.layout import partition_date
from modelops.store import Store

if TYPE_CHECKING:
    from modelops.local.stack_config import StackConfig

log = logging.getLogger(__name__)


def _clients(cfg: StackConfig):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=cfg.access_key, aws_secret_access_key=cfg.secret_key, region_name=cfg.region
    )
    return session.client("s3", endpoint_url=cfg.aws_url), session.client("sqs", endpoint_url=cfg.aws_url)


def create_resources(
    cfg: StackConfig | None = None, models: dict[str, model_config.ModelConfig] | None = None
) -> dict[str, str]:
    """Bucket, one ingest queue + dead-letter queue per model, and the bucket's notifications.

    ``cfg``: a local stack's addresses; None reaches the services named by the environment
    (``modelops.settings``), as tasks and command-line tools do. ``models``: default every declared one.
    """
    if cfg is None:
        from modelops import settings

        s3, sqs, bucket = settings.s3_client(), settings.sqs_client(), settings.load().bucket
    else:
        (s3, sqs), bucket = _clients(cfg), cfg.bucket
    Store(bucket, s3).ensure_bucket()
    models = models if models is not None else model_config.load_all_models()
    queue_configs, urls = [], {}
    for name, model in models.items():
        dlq_url = sqs.create_queue(
            QueueName=dead_letter_queue_name(name), Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=queue_name(name))["QueueUrl"]
        # Set (not create) attributes so an existing queue converges to the declared settings.
        sqs.set_queue_attributes(
            QueueUrl=url,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
                # Messages wait here while ingest_<model> is paused: keep them as long as the DLQ does.
                "MessageRetentionPeriod": str(DLQ_RETENTION_S),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
                ),
            },
        )
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_configs.append(
            {
                "Id": f"ingest-{name}",
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": model.raw_prefix}]}},
            }
        )
        urls[name] = url
    current = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
    # Entries of models not named here are kept: provisioning one new model must not cut the others off.
    ours = {c["Id"] for c in queue_configs}
    wanted = [c for c in current if c.get("Id") not in ours] + queue_configs
    if sorted(json.dumps(c, sort_keys=True) for c in _comparable(current)) != sorted(
        json.dumps(c, sort_keys=True) for c in _comparable(wanted)
    ):
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": wanted}
        )
        log.info("bucket notifications set for %d model(s)", len(wanted))
    return urls


def _comparable(configs: list[dict]) -> list[dict]:
    out = []
    for item in configs:
        rules = item.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        out.append(
            {
                "Id": item.get("Id"),
                "QueueArn": item["QueueArn"],
                "Events": sorted(item["Events"]),
                "Rules": sorted((r["Name"].lower(), r["Value"]) for r in rules),
            }
        )
    return out


def history_days(model: model_config.ModelConfig, today: dt.date) -> list[dt.date]:
    return [today - dt.timedelta(days=offset) for offset in range(model.data.history_days, 0, -1)]


def batch_key(model: model_config.ModelConfig, day: dt.date) -> str:
    """A generated day's file, in the model's own landing zone (its ``raw_prefix``)."""
    return f"{model.raw_prefix}dt={day.isoformat()}/{model.name}-{day.isoformat()}.{model.data.file_format}"


def load_history(
    cfg: StackConfig | None, today: dt.date | None = None, models: dict[str, model_config.ModelConfig] | None = None
) -> int:
    """Generated daily batches for every model that names a generator; existing keys are kept.

    ``cfg``: a local stack's addresses; None writes to the bucket the environment names (the
    compose stack's init), as :func:`create_resources` does."""
    from modelops.batches import to_csv_bytes
    from modelops.local import datagen

    if cfg is None:
        from modelops import settings

        s3, bucket = settings.s3_client(), settings.load().bucket
    else:
        (s3, _), bucket = _clients(cfg), cfg.bucket
    store = Store(bucket, s3)
    today = today or dt.datetime.now(dt.UTC).date()
    models = models if models is not None else model_config.load_all_models()
    written = 0
    for model in models.values():
        if not model.data.generator:
            continue
        # A day that already holds a file is kept as it is: the generator only fills empty days.
        filled = {partition_date(item.key) for item in store.list(model.raw_prefix)}
        for day in history_days(model, today):
            key = batch_key(model, day)
            if day in filled:
                continue
            frame = datagen.generate_batch(model.data.generator, day, model.data.rows_per_day)
            if model.data.file_format == "csv":
                store.put_bytes(key, to_csv_bytes(frame), "text/csv")
            else:
                store.put_bytes(key, frame.to_parquet(index=False), "application/vnd.apache.parquet")
            written += 1
        log.info("%s: history of %d days in s3://%s/%s", model.name, model.data.history_days, bucket, model.raw_prefix)
    return written


def save_bucket_copy(cfg: StackConfig, folder: Path) -> int:
    """Copy the bucket to disk (moto keeps it in memory only), replacing the previous copy.

    A bucket copy, not a training snapshot (:func:`modelops.layout.snapshot_key`): ``make down``
    saves it to ``<home>/s3-snapshot`` and ``make up`` restores it."""
    s3, _ = _clients(cfg)
    store = Store(cfg.bucket, s3)
    staging = folder.with_name(folder.name + ".new")
    if staging.exists():
        import shutil

        shutil.rmtree(staging)
    count = 0
    for item in store.list(""):
        target = staging / "objects" / item.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.get_bytes(item.key))
        count += 1
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "COMPLETE").write_text(json.dumps({"objects": count, "saved_at": dt.datetime.now(dt.UTC).isoformat()}))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    staging.rename(folder)
    return count


def restore_bucket_copy(cfg: StackConfig, folder: Path) -> int:
    """Put a complete bucket copy back into a freshly started endpoint; 0 when there is none."""
    if not (folder / "COMPLETE").exists():
        return 0
    s3, _ = _clients(cfg)
    store = Store(cfg.bucket, s3)
    root = folder / "objects"
    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        store.put_bytes(str(path.relative_to(root)), path.read_bytes())
        count += 1
    return count
