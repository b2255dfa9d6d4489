"""The ingest DAGs' task callables, named like their task ids (``dags/ingest.py`` wires them).

Why a module: a DAG task body only reads its context and calls one function here; each function
builds the clients it needs and calls the pure stage modules below. Imports of boto3 and of the
modules below happen inside the functions, so the DAG file can import this module at parse time
(for :func:`queue_watch`) without slowing the DAG processor.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops.ingest.queues import dead_letter_queue_name, queue_name
from modelops.ingest.settings import QueueWatchSettings

if TYPE_CHECKING:
    from modelops.config import ModelConfig

log = logging.getLogger(__name__)

#: What a step refuses when the request itself is wrong (retrying cannot help).
REFUSALS: tuple[type[BaseException], ...] = (ValueError, LookupError)


def queue_watch(model_name: str, *, dead_letter: bool = False) -> dict[str, Any]:
    """The queue-depth sensor's arguments for the model's queue (or its dead-letter queue)."""
    watch = QueueWatchSettings.from_env()
    name = dead_letter_queue_name(model_name) if dead_letter else queue_name(model_name)
    return {"queue_name": name, "poll_seconds": watch.poll_seconds, "idle_seconds": watch.idle_seconds}


def consume(model: ModelConfig, waited: Mapping[str, Any]) -> dict:
    """Validate the files the queue announces; copy each to validated/ or quarantine/ with its report."""
    from modelops.ingest.consumer import consume as consume_queue

    return {"sensor": waited, **consume_queue(model)}


def record_dead_letters(model: ModelConfig, waited: Mapping[str, Any]) -> dict:
    """Record each dead letter in S3, notify about it, then delete it from the dead-letter queue."""
    from modelops.ingest.dead_letters import record_dead_letters as record

    return {"sensor": waited, **record(model.name)}


def redrive_dead_letters(
    model: ModelConfig, params: Mapping[str, Any], *, dag_id: str, triggering_user: str | None
) -> dict:
    """Send the chosen dead letters back to the ingest queue and mark them redriven."""
    from modelops.ingest.dead_letters import redrive

    actor = f"{triggering_user} via {dag_id}" if triggering_user else dag_id
    return redrive(model.name, list(params["message_ids"]), all_dead=bool(params["all"]), actor=actor)


def announce_unprocessed_files(model: ModelConfig, params: Mapping[str, Any]) -> dict:
    """Announce on the queue every raw file that has no result marker (its notification was lost)."""
    from modelops import settings
    from modelops.ingest.reconcile import reconcile
    from modelops.store import Store

    since = dt.date.fromisoformat(params["since"]) if params.get("since") else None
    return reconcile(model, Store(), settings.sqs_client(), since=since, dry_run=bool(params["dry_run"]))
