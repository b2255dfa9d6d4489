"""What the page's buttons do: check the submitted fields, name the DAG, trigger it as the caller.

The checks mirror the ``Param``s of the DAGs they trigger (a bad value is refused here with a
message naming the field rather than by a failed run). Pure functions, except
:func:`trigger_in_airflow`, which imports Airflow when it is called.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from modelops.dagkit import DAG_KINDS
from modelops.run_params import MESSAGE_ID_PATTERN, VERSION_PATTERN

log = logging.getLogger(__name__)

REASON_MIN, REASON_MAX = 3, 1000
DEFAULT_ROLLBACK_VERSION = "previous-champion"
_CONFIRMED = {"yes", "on", "true", "1"}


class RequestError(ValueError):
    """A submitted field the action cannot use (answered 400); the message names the field."""


class TriggerError(RuntimeError):
    """Airflow refused the run; ``status_code`` is what the page answers."""

    def __init__(self, message: str, status_code: int = 502):
        super().__init__(message)
        self.status_code = status_code


def model_of_dag(dag_id: str, models: Iterable[str]) -> str | None:
    """The declared model whose DAG ``dag_id`` is (``retrain_churn`` -> ``churn``), else None."""
    models = set(models)
    for kind in DAG_KINDS:
        prefix = f"{kind}_"
        if dag_id.startswith(prefix) and dag_id[len(prefix) :] in models:
            return dag_id[len(prefix) :]
    return None


def rollback_conf(version: str | None, reason: str | None, confirm: str | None) -> dict:
    """The rollback DAG's ``conf`` from the form, or :class:`RequestError` naming the bad field."""
    version = (version or "").strip() or DEFAULT_ROLLBACK_VERSION
    if not re.fullmatch(VERSION_PATTERN, version):
        raise RequestError(
            f"version {version!r} is not a version number or one of champion, previous-champion, challenger"
        )
    reason = (reason or "").strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise RequestError(
            f"reason must be {REASON_MIN} to {REASON_MAX} characters (got {len(reason)}): "
            "say why, it is recorded in the alias history with your name"
        )
    if (confirm or "").strip().lower() not in _CONFIRMED:
        raise RequestError("confirm: tick the confirmation box to roll back; nothing was triggered")
    return {"version": version, "reason": reason}


def redrive_conf(message_id: str) -> dict:
    """The redrive DAG's ``conf`` for one dead letter."""
    if not re.fullmatch(MESSAGE_ID_PATTERN, message_id):
        raise RequestError(
            f"message id {message_id!r} is not a dead-letter message id (letters, digits and '-', up to 128)"
        )
    return {"message_ids": [message_id], "all": False}


def trigger_in_airflow(dag_id: str, conf: dict, user: Any) -> str:
    """Create a manual run of ``dag_id`` in this API server's database, triggered by ``user`` from
    the UI (what Airflow's own Trigger button records). Returns the run id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(
            dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user.get_name(), conf=conf
        )
    except DagNotFound as exc:
        raise TriggerError(f"DAG {dag_id} is not in Airflow ({exc}); is dags/ parsed?", 404) from exc
    except DagRunAlreadyExists as exc:
        raise TriggerError(f"a run of {dag_id} with this id already exists; try again", 409) from exc
    except ValueError as exc:
        raise TriggerError(f"Airflow refused the run of {dag_id}: {exc}", 400) from exc
    if run is None:
        raise TriggerError(f"Airflow created no run of {dag_id}")
    log.info("triggered %s run %s for %s", dag_id, run.run_id, user.get_name())
    return run.run_id
