"""A registered version made the platform's way, on a throw-away SQLite MLflow and moto's S3:
daily batches in the raw zone, the snapshot manifest over them (key, ETag, SHA-256, rows), one
candidate trained by the real ``train_candidates`` step (which records the version tags and the
declaration) and registered with the lineage tags ``register`` sets."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from modelops import registry
from modelops.batches import to_csv_bytes
from modelops.config import ModelConfig
from modelops.layout import raw_batch_key, snapshot_key
from modelops.local import datagen
from modelops.store import Store
from modelops.training import steps

RUN_ID = "manual__2026-12-02T10:00:00+00:00"
DAG_ID = "retrain_test"
DAYS = [dt.date(2026, 11, 20) + dt.timedelta(days=i) for i in range(3)]


@dataclass
class Registered:
    model: ModelConfig
    version: str
    manifest: dict
    record: dict


def put_batches(model: ModelConfig, store: Store, frames: list) -> list[dict]:
    """Each frame as a day's CSV in the raw zone; the manifest entries of what was written."""
    entries = []
    for day, frame in zip(DAYS, frames, strict=True):
        parquet = model.data.file_format == "parquet"
        key = raw_batch_key(model.name, day, "batch.parquet" if parquet else "batch.csv")
        body = frame.to_parquet(index=False) if parquet else to_csv_bytes(frame)
        store.put_bytes(key, body)
        etag = store.client.head_object(Bucket=store.bucket, Key=key)["ETag"].strip('"')
        entries.append({"key": key, "etag": etag, "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                        "day": str(day), "rows": len(frame)})  # fmt: skip
    return entries


def write_manifest(model: ModelConfig, store: Store, entries: list[dict]) -> dict:
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry['key']}\0{entry['sha256']}\n".encode())
    manifest = {
        "manifest_version": 1, "model": model.name, "run_id": RUN_ID, "as_of": "2026-11-23T00:00:00+00:00",
        "window": {"first_day": str(DAYS[0]), "last_day": str(DAYS[-1]), "days": len(DAYS)},
        "source": store.uri(f"raw/{model.name}/"), "objects": entries, "unreadable": [], "excluded": [],
        "rows": sum(e["rows"] for e in entries), "dataset_hash": digest.hexdigest(),
    }  # fmt: skip
    key = snapshot_key(model.name, RUN_ID)
    store.put_json(key, manifest)
    return manifest | {"uri": store.uri(key), "manifest_uri": store.uri(key)}


def churn_frames(rows: int = 250) -> list:
    return [datagen.generate_batch("churn", day, rows, seed=3) for day in DAYS]


def train_and_register(model: ModelConfig, store: Store, frames: list, candidate: str) -> Registered:
    """Snapshot, train ``candidate`` with the real step, register it with its lineage tags."""
    manifest = write_manifest(model, store, put_batches(model, store, frames))
    parent = steps.start_tracking(model, RUN_ID, DAG_ID, manifest)
    record = steps.train_candidates(model, RUN_ID, candidate, parent, store)
    assert record["model_uri"], record
    client = registry.client()
    tags = {
        "dataset_hash": manifest["dataset_hash"], "manifest_uri": manifest["uri"], "airflow_run_id": RUN_ID,
        "airflow_dag_id": DAG_ID, "candidate": candidate, "training_data": manifest["uri"],
    } | steps.trained_versions(model, record["mlflow_run_id"], client)  # fmt: skip
    version = registry.register_version(
        model.name, record["model_uri"], record["mlflow_run_id"], tags, mlflow_client=client
    )
    return Registered(model, str(version.version), manifest, record)
