"""The ingest stage's tuning knobs (``MODELOPS_INGEST_*`` and the dead-letter webhook).

Why a module: the consumer, the dead-letter handler and the DAG's queue sensors are tuned per
deployment (the test stack uses small values); every knob is read and checked here, through
:mod:`modelops.settings`, so a bad value raises an error naming its variable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from modelops.settings import env_float, env_int, env_str

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSettings:
    """Tuning knobs of one consume run, from the environment so the test stack can use small values."""

    #: Files processed at once by one consumer (threads; GX itself runs one at a time).
    concurrency: int = 4
    #: Visibility timeout asked for on receive; the heartbeat extends it every third of it.
    visibility_seconds: int = 300
    #: How long a failed message stays invisible before its next attempt.
    retry_delay_seconds: int = 30
    #: A consume run stops receiving after this long; the next continuous run goes on.
    max_seconds: float = 900.0
    #: Long-poll wait of a receive; an empty receive with nothing in flight ends the run.
    wait_seconds: int = 1
    #: Worker processes that run Great Expectations (it holds the GIL: threads alone use one core);
    #: 0 validates in the consumer's own threads. Capped at the machine's cores.
    validation_processes: int = 2

    @classmethod
    def from_env(cls) -> IngestSettings:
        return cls(
            concurrency=env_int("MODELOPS_INGEST_CONCURRENCY", 4, minimum=1),
            visibility_seconds=env_int("MODELOPS_INGEST_VISIBILITY_SECONDS", 300, minimum=6),
            retry_delay_seconds=env_int("MODELOPS_INGEST_RETRY_DELAY_SECONDS", 30, minimum=0),
            max_seconds=env_float("MODELOPS_INGEST_MAX_SECONDS", 900.0, minimum=1),
            wait_seconds=env_int("MODELOPS_INGEST_WAIT_SECONDS", 1, minimum=0),
            validation_processes=env_int("MODELOPS_INGEST_VALIDATION_PROCESSES", 2, minimum=0),
        )


@dataclass(frozen=True)
class QueueWatchSettings:
    """How the DAGs' queue sensors poll a queue's depth (read when the DAG file is parsed)."""

    #: Seconds between two depth reads of the trigger.
    poll_seconds: float = 5.0
    #: The sensor gives up (status ``idle``) after this long without a visible message.
    idle_seconds: float = 3600.0

    @classmethod
    def from_env(cls) -> QueueWatchSettings:
        return cls(
            poll_seconds=env_float("MODELOPS_INGEST_POLL_SECONDS", 5.0),
            idle_seconds=env_float("MODELOPS_INGEST_IDLE_SECONDS", 3600.0),
        )


def dead_letter_webhook_url() -> str | None:
    """Where a dead-letter notification is POSTed as JSON; None (log only) when unset."""
    return env_str("MODELOPS_DEAD_LETTER_WEBHOOK_URL")
