"""The ingest queues of a model: their names and the settings the ingestion design fixes.

Provisioning (``modelops.local.bootstrap`` locally, infrastructure code in AWS) creates them with
these values; the consumer and the ingest DAG find them by these names.
"""

from __future__ import annotations

#: SQS settings from the ingestion design: redrive after 5 receives, visibility ≥ 6 × processing.
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_S = 300
DLQ_RETENTION_S = 14 * 24 * 3600


def queue_name(model: str) -> str:
    return f"modelops-ingest-{model.replace('_', '-')}"


def dead_letter_queue_name(model: str) -> str:
    return f"{queue_name(model)}-dlq"
