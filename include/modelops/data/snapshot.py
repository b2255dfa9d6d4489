"""Training snapshots: exactly which batches one training run read, and their content hash.

A snapshot is the dataset version. It lists the complete daily partitions inside the training
window that ends at the run's as-of instant (so a backfill for a past date sees only data up to
that date), with each object's ETag, size, row count and SHA-256; the dataset hash is the
SHA-256 over those. Every file is judged on its own with the batch suite (ingestion's verdict
is reused for the same ETag, see :mod:`modelops.data.batch_screen`): a failing file is left out and
listed under ``excluded`` with the reason, so it never reaches training. Later tasks read the data back through the manifest and refuse objects that
changed since (ETag mismatch), so every step of a run sees the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from modelops.config import ModelConfig
from modelops.layout import partition_date, snapshot_key, validated_prefix
from modelops.store import Store

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


class SnapshotError(RuntimeError):
    """The snapshot cannot be taken or read back; the message says which object and why."""


def nothing_to_train(model: ModelConfig, window: Window, store: Store, prefix: str, as_of: dt.datetime) -> dict:
    """The outcome of an empty window: not an error, the run just has nothing to do."""
    message = (
        f"model '{model.name}': nothing to train in window {window.first_day}..{window.last_day}: no batches in "
        f"s3://{store.bucket}/{prefix} (as of {as_of.isoformat()}); trigger with a larger training_window_days "
        "or an as_of after the data's last day"
    )
    log.warning(message)
    return {"nothing_to_train": True, "message": message, "model": model.name,
            "window": {"first_day": str(window.first_day), "last_day": str(window.last_day)}}  # fmt: skip


@dataclass(frozen=True)
class Window:
    first_day: dt.date
    last_day: dt.date

    @classmethod
    def ending_at(cls, as_of: dt.datetime, days: int) -> Window:
        """The last ``days`` complete UTC days before ``as_of`` (a day counts once it has ended)."""
        as_of = as_of.astimezone(dt.UTC)
        last = as_of.date() - dt.timedelta(days=1)
        return cls(first_day=last - dt.timedelta(days=days - 1), last_day=last)

    def contains(self, day: dt.date) -> bool:
        return self.first_day <= day <= self.last_day


def source_prefix(model: ModelConfig) -> str:
    """Where training reads batches: the raw zone, or the validated copies ingestion made."""
    return model.raw_prefix if model.data.training_source == "raw" else validated_prefix(model.name)


def _screen_objects(model: ModelConfig, objects, store: Store) -> tuple[list, list, list, str]:
    """Hash, count and judge every object of the window, in key order: the kept entries, the
    unreadable and the excluded ones, and the dataset hash over the kept ones."""
    from modelops.batches import BatchReadError, read_batch
    from modelops.data import batch_screen

    entries, unreadable, excluded = [], [], []
    dataset_hash = hashlib.sha256()
    for item in sorted(objects, key=lambda o: o.key):
        body = store.get_bytes(item.key)
        digest = hashlib.sha256(body).hexdigest()
        entry = {
            "key": item.key,
            "etag": item.etag,
            "size": item.size,
            "sha256": digest,
            "day": str(partition_date(item.key)),
        }
        try:
            entry["rows"] = len(read_batch(body, model.data.file_format, store.uri(item.key)))
        except BatchReadError as exc:
            entry["rows"] = None
            unreadable.append({"key": item.key, "error": str(exc)})
        verdict = batch_screen.judge(model, item.key, item.etag, body, store)
        if not verdict.pop("passed"):
            excluded.append(entry | verdict)
            continue
        dataset_hash.update(f"{item.key}\0{digest}\n".encode())
        entries.append(entry)
    return entries, unreadable, excluded, dataset_hash.hexdigest()


def take_snapshot(
    model: ModelConfig, as_of: dt.datetime, window_days: int, run_id: str, store: Store | None = None
) -> dict:
    """Write ``snapshots/<model>/<run_id>/manifest.json`` and return the manifest.

    Files that fail the batch suite (unreadable ones included) are left out and listed under
    ``excluded`` (unreadable ones also under ``unreadable``); fewer than
    ``batch_screen.MIN_TRAINING_ROWS`` rows left after exclusions is a :class:`SnapshotError`.
    An empty window returns :func:`nothing_to_train` and writes nothing.
    """
    from modelops.data import batch_screen

    store = store or Store()
    window = Window.ending_at(as_of, window_days)
    prefix = source_prefix(model)
    objects = [o for o in store.list(prefix) if (day := partition_date(o.key)) and window.contains(day)]
    if not objects:
        return nothing_to_train(model, window, store, prefix, as_of)
    entries, unreadable, excluded, dataset_hash = _screen_objects(model, objects, store)
    rows = sum(e["rows"] or 0 for e in entries)
    if excluded and rows < batch_screen.MIN_TRAINING_ROWS:
        raise SnapshotError(
            f"model '{model.name}': only {rows} rows left in {window.first_day}..{window.last_day} after excluding "
            f"{len(excluded)} of {len(objects)} files that failed the batch suite (minimum {batch_screen.MIN_TRAINING_ROWS}): "
            f"{batch_screen.describe(excluded)}. Fix or replace those files, or widen training_window_days"
        )
    if excluded:
        log.warning("snapshot for %s excludes %d files: %s", model.name, len(excluded), batch_screen.describe(excluded))
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "model": model.name,
        "run_id": run_id,
        "as_of": as_of.astimezone(dt.UTC).isoformat(),
        "window": {"first_day": str(window.first_day), "last_day": str(window.last_day), "days": window_days},
        "source": store.uri(prefix),
        "objects": entries,
        "unreadable": unreadable,
        "excluded": excluded,
        "rows": rows,
        "dataset_hash": dataset_hash,
    }
    key = snapshot_key(model.name, run_id)
    store.put_json(key, manifest)
    manifest["uri"] = store.uri(key)
    log.info(
        "snapshot %s: %d objects, %d rows, %d excluded, hash %s",
        manifest["uri"], len(entries), manifest["rows"], len(excluded), manifest["dataset_hash"][:12],
    )  # fmt: skip
    return manifest


def load_manifest(model: str, run_id: str, store: Store | None = None) -> dict:
    store = store or Store()
    key = snapshot_key(model, run_id)
    manifest = store.get_json(key)
    manifest["uri"] = store.uri(key)
    return manifest


def load_snapshot_frame(model: ModelConfig, manifest: dict, store: Store | None = None):
    """The snapshot's rows as one DataFrame, read through the manifest (readable objects only)."""
    import pandas as pd

    from modelops.batches import read_batch

    store = store or Store()
    unreadable = {item["key"] for item in manifest.get("unreadable", [])}
    frames = []
    for entry in manifest["objects"]:
        if entry["key"] in unreadable:
            continue
        response = store.client.get_object(Bucket=store.bucket, Key=entry["key"])
        etag = response["ETag"].strip('"')
        if etag != entry["etag"]:
            raise SnapshotError(
                f"{store.uri(entry['key'])} changed since the snapshot was taken (ETag {etag} != {entry['etag']}); "
                "clear the whole run to take a new snapshot"
            )
        frames.append(read_batch(response["Body"].read(), model.data.file_format, store.uri(entry["key"])))
    if not frames:
        raise SnapshotError(f"snapshot {manifest.get('uri')} has no readable objects")
    return pd.concat(frames, ignore_index=True, sort=False)
