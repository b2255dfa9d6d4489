"""Where candidate training runs: its Celery queue and each model's Airflow pool.

Training a candidate is the heaviest task the platform has. Under the CeleryExecutor it goes to
the queue named by ``MODELOPS_TRAINING_QUEUE`` (default ``training``), served by workers of its
own (``airflow celery worker -q training``; ``airflow-worker-training`` in docker-compose.yaml),
while every other task stays on the default queue. The LocalExecutor ignores queues.

Each model's pool ``training_<model>`` bounds how many of its candidates train at once, across
all its runs (a backfill included), at the declaration's ``training.parallel_candidates``. A task
whose pool does not exist is never scheduled (it waits in "scheduled" for good), so the pools are
created where the platform is provisioned (``make up``, the compose stack's init) and checked
again at the start of every retrain (:func:`ensure_training_pool`, through the REST API), which
also picks up a changed declaration or a model declared after provisioning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from modelops.airflow_api import AirflowClient, AirflowError
from modelops.config import ModelConfig
from modelops.settings import env_str

log = logging.getLogger(__name__)

DEFAULT_TRAINING_QUEUE = "training"


def training_queue() -> str:
    """The Celery queue candidate training tasks go to (``MODELOPS_TRAINING_QUEUE``)."""
    return env_str("MODELOPS_TRAINING_QUEUE", DEFAULT_TRAINING_QUEUE)


def training_pool(model: str) -> str:
    """The name of ``model``'s training pool."""
    return f"training_{model}"


def ensure_training_pool(model: ModelConfig, client: AirflowClient | None = None) -> dict:
    """Create ``training_<model>`` with the declared slots, or correct its slots; idempotent.

    Returns ``{"pool", "slots", "action"}`` (``created``, ``updated`` or ``unchanged``). Raises
    :class:`AirflowError` naming the pool and the fix when the API server refuses or cannot be reached.
    """
    client = client or AirflowClient.from_env()
    name, slots = training_pool(model.name), model.training.parallel_candidates
    description = f"candidates of {model.name} training at once (training.parallel_candidates)"
    try:
        try:
            current = client.request("GET", f"/pools/{name}")
        except AirflowError as exc:
            if exc.status_code != 404:
                raise
            client.request("POST", "/pools", json={"name": name, "slots": slots, "description": description})
            log.info("pool %s created with %d slots", name, slots)
            return {"pool": name, "slots": slots, "action": "created"}
        if current.get("slots") == slots:
            return {"pool": name, "slots": slots, "action": "unchanged"}
        client.request("PATCH", f"/pools/{name}", json={"slots": slots, "description": description})
        log.info("pool %s: %s -> %d slots (the declaration changed)", name, current.get("slots"), slots)
        return {"pool": name, "slots": slots, "action": "updated"}
    except (AirflowError, OSError) as exc:
        raise AirflowError(
            f"the training pool '{name}' of model '{model.name}' could not be checked or created through "
            f"{client.base_url}: {exc}. Without it the training tasks are never scheduled. Create it with "
            f"`airflow pools set {name} {slots} '{description}'`, or set MODELOPS_AIRFLOW_URL/USER/PASSWORD "
            "for the workers",
            getattr(exc, "status_code", None),
        ) from exc


def ensure_training_pools(
    models: Iterable[ModelConfig] | None = None, client: AirflowClient | None = None
) -> list[dict]:
    """:func:`ensure_training_pool` for every model (default: every valid declaration)."""
    from modelops.config import load_all_models

    client = client or AirflowClient.from_env()
    chosen = list(models) if models is not None else list(load_all_models().values())
    return [ensure_training_pool(model, client) for model in chosen]
