"""Ingest stage: S3 arrival events on SQS, per-file validation, dead letters and reconciliation.

Modules: ``settings`` (the ``MODELOPS_INGEST_*`` knobs), ``queues`` (queue names and SQS calls),
``messages`` (the S3 event format), ``validator`` (the GX suite, memoised), ``ingestor`` (one
message, one transaction), ``inflight`` (what a consumer holds), ``consumer`` (the consume loop),
``reconcile`` (files whose notification was lost), ``dead_letters``, and ``steps`` (the ingest
DAGs' task callables).

The names below are what tools and tests outside the stage use (``from modelops import ingest``);
they are loaded on first use, so importing the package (as the DAG files do) stays cheap.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "RECONCILE_EVENT_NAME": ("modelops.ingest.messages", "RECONCILE_EVENT_NAME"),
    "consume": ("modelops.ingest.consumer", "consume"),
    "error_key": ("modelops.layout", "ingest_error_key"),
    "queue_depth": ("modelops.ingest.queues", "queue_depth"),
    "queue_url": ("modelops.ingest.queues", "queue_url"),
    "reconcile": ("modelops.ingest.reconcile", "reconcile"),
    "result_key": ("modelops.layout", "ingest_result_key"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)
