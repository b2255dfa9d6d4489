"""Reconciliation: announce raw files whose S3 notification never arrived.

What ``reconcile_<model>`` runs daily (and ``python -m modelops.ingest reconcile``). A file
uploaded before the model's queue and notification existed, a message lost with the local
endpoint, a notification misconfiguration or a message past the queue's retention leaves a raw
file without a result marker. :func:`reconcile` lists ``raw/<model>/``, and for every file version
without a marker sends the queue the S3 event S3 would have sent (``eventName``
``ObjectCreated:Reconcile``, ``configurationId`` ``modelops-reconcile``); the consumer handles it
like any other. Re-announcing a file that is queued or being processed is harmless: the marker
makes the second message a duplicate.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING

from modelops.ingest.messages import reconciliation_event
from modelops.ingest.queues import SQS_BATCH, queue_url
from modelops.layout import ingest_result_key, ingest_results_prefix, partition_date
from modelops.store import ObjectInfo, Store

if TYPE_CHECKING:
    from modelops.config import ModelConfig

log = logging.getLogger(__name__)

#: Keys listed in a reconciliation's result (the counts are always complete).
MAX_REPORTED_KEYS = 100


def reconcile(
    model: ModelConfig,
    store: Store,
    sqs,
    *,
    since: dt.date | None = None,
    dry_run: bool = False,
    limit: int | None = None,
) -> dict:
    """Announce on the model's queue every raw file version that has no result marker.

    Lists only ``model.raw_prefix`` (partitions ``dt=`` on or after ``since`` if given). Keys outside
    a ``dt=`` partition are counted as ``not_partitioned`` and never announced (the consumer would
    refuse them as poison). ``limit`` caps the messages sent; the rest are counted as ``deferred``
    and found by the next run. Safe to repeat: a file announced twice is ingested once.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    listed, already_done, not_partitioned, missing = _unmarked_files(model, store, since)
    chosen = missing if limit is None else missing[:limit]
    url = None
    announced, failed = 0, []
    if not dry_run and chosen:
        url = queue_url(sqs, model.name)
        announced, failed = _announce(store, sqs, url, chosen)
    if not_partitioned:
        log.warning(
            "%d key(s) under %s are not in a dt=YYYY-MM-DD partition and are not announced: %s",
            len(not_partitioned), model.raw_prefix, not_partitioned[:5],
        )  # fmt: skip
    result = {
        "model": model.name,
        "prefix": store.uri(model.raw_prefix),
        "since": since.isoformat() if since else None,
        "dry_run": dry_run,
        "listed": listed,
        "already_done": already_done,
        "missing": len(missing),
        "announced": announced,
        "deferred": len(missing) - len(chosen),
        "not_partitioned": len(not_partitioned),
        # What was announced (or, in a dry run, would be), capped; the counts above are complete.
        "keys": [item.key for item in chosen[:MAX_REPORTED_KEYS]],
        "keys_truncated": len(chosen) > MAX_REPORTED_KEYS,
        "queue": url,
    }
    log.info("reconcile %s: %s", model.name, summarize_reconciliation(result))
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(chosen)} announcements to {url} failed (first: {failed[:3]}); "
            "the files stay without a marker: run reconcile again"
        )
    return result


def _unmarked_files(
    model: ModelConfig, store: Store, since: dt.date | None
) -> tuple[int, int, list[str], list[ObjectInfo]]:
    """``(listed, already done, keys outside any partition, files without a marker)`` of the raw prefix."""
    done = {item.key for item in store.list(ingest_results_prefix(model.name))}
    listed, already_done, not_partitioned, missing = 0, 0, [], []
    for item in store.list(model.raw_prefix):
        day = partition_date(item.key)
        if day is None or item.key.endswith("/"):
            not_partitioned.append(item.key)
            continue
        if since is not None and day < since:
            continue
        listed += 1
        if ingest_result_key(model.name, item.key, item.etag) in done:
            already_done += 1
        else:
            missing.append(item)
    return listed, already_done, not_partitioned, missing


def _announce(store: Store, sqs, url: str, files: list[ObjectInfo]) -> tuple[int, list[str]]:
    """Send one reconciliation event per file, in batches; ``(sent, failures)``."""
    announced, failed = 0, []
    for start in range(0, len(files), SQS_BATCH):
        batch = files[start : start + SQS_BATCH]
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(
                    reconciliation_event(store.bucket, item.key, item.etag, item.size, item.last_modified)
                ),
            }
            for i, item in enumerate(batch)
        ]
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        announced += len(response.get("Successful", []))
        for entry in response.get("Failed", []):
            failed.append(f"{batch[int(entry['Id'])].key}: {entry.get('Code')} {entry.get('Message', '')}".strip())
    return announced, failed


def summarize_reconciliation(result: dict) -> str:
    """One line for the log and the command line."""
    scope = f"partitions from {result['since']}" if result["since"] else "all partitions"
    line = (
        f"{result['model']}: {result['listed']} raw file(s) in {scope} of {result['prefix']}, "
        f"{result['already_done']} already ingested, {result['missing']} without a result marker"
    )
    if result["dry_run"]:
        line += f"; dry run, nothing sent: {result['missing'] - result['deferred']} would be announced"
    else:
        line += f"; {result['announced']} announced"
    if result["deferred"]:
        line += f", {result['deferred']} left for the next run (limit)"
    if result["not_partitioned"]:
        line += f"; {result['not_partitioned']} key(s) outside any dt= partition ignored"
    return line
