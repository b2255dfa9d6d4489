"""Shared wiring for the generated DAGs: which models exist, the ``@dag`` header every DAG shares,
the run's as-of date, and how a step's refusal fails a task without retries.

Kept light (no pandas/sklearn/mlflow imports, Airflow only inside functions): DAG files import
it at parse time, and it stays importable and testable without Airflow.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from modelops import config as model_config

log = logging.getLogger(__name__)

#: Early enough for backfills of any realistic history: a run dated before a task's start_date
#: gets no task instances (and "succeeds" empty).
START_DATE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


#: Every ``<kind>_<model>`` DAG the files in dags/ build for each declared model.
DAG_KINDS = ("smoke", "retrain", "monitor", "deploy", "rollback", "ingest", "dead_letters", "redrive", "reconcile")


def dag_id(kind: str, model: str) -> str:
    """``<kind>_<model>``: the id of one of a model's DAGs (``dag_id("retrain", "churn")``)."""
    if kind not in DAG_KINDS:
        raise ValueError(f"DAG kind '{kind}' is not one of dagkit.DAG_KINDS {DAG_KINDS}")
    return f"{kind}_{model}"


def declared_models() -> list[model_config.ModelConfig]:
    """The valid model declarations. Invalid ones are skipped here so one typo does not take
    every model's DAGs down; ``dags/model_configs.py`` reports them as an import error."""
    models, errors = model_config.load_models_and_errors()
    for error in errors:
        log.error("skipping a model declaration: %s", error)
    return models


def default_args(model: model_config.ModelConfig, retries: int = 1) -> dict:
    return {
        "owner": model.owner,
        "retries": retries,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": True,
    }


def dag_header(
    model: model_config.ModelConfig,
    kind: str,
    *,
    doc_md: str | None,
    description: str,
    schedule: Any,
    timeout: dt.timedelta,
    max_active_runs: int = 1,
    tags: Sequence[str] | None = None,
    args: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The keyword arguments of ``@dag`` for the ``<kind>_<model>`` DAG: what every modelops DAG
    states (UTC start date, no catch-up, owner and retries, a run timeout, tags for the UI's filter).

    ``tags`` default to ``[kind]``; ``"modelops"`` and the model's name are always added.
    """
    header = {
        "dag_id": dag_id(kind, model.name),
        "doc_md": doc_md,
        "description": description,
        "schedule": schedule,
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": max_active_runs,
        "tags": ["modelops", *(tags if tags is not None else [kind]), model.name],
        "default_args": dict(args) if args is not None else default_args(model),
        "dagrun_timeout": timeout,
        **extra,
    }
    if params is not None:
        header["params"] = dict(params)
    return header


@contextlib.contextmanager
def fail_without_retry(*refusals: type[BaseException], prefix: str = "") -> Iterator[None]:
    """Inside a task: turn a step's refusal (bad data, bad params, a failed smoke test) into
    ``AirflowFailException``, so the task fails at once instead of retrying what cannot succeed.
    Any other exception propagates unchanged and is retried as usual."""
    try:
        yield
    except refusals as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{prefix}{exc}") from None


def requested_as_of(context) -> dt.datetime | None:
    """The latest ``as_of`` carried in the extra of the asset events that triggered the run (a
    retrain requested by monitoring stands for the day that asked), or None if there is none."""
    found = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = event.get("extra") if isinstance(event, dict) else getattr(event, "extra", None)
            value = (extra or {}).get("as_of")
            if value:
                moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
                found.append(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    return max(found, default=None)


def as_of(context) -> dt.datetime:
    """The instant a run stands for: the ``as_of`` of the asset events that triggered it (a
    monitoring day's retrain request), else its data interval end, else ``run_after`` for manual
    and asset-triggered runs (whose ``logical_date`` may be None). Never ``now()``."""
    requested = requested_as_of(context)
    if requested is not None:
        return requested
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return value
    return context["dag_run"].run_after


def as_of_date(context) -> dt.date:
    return as_of(context).astimezone(dt.UTC).date()


def retrain_request_asset(model_name: str):
    """The Asset whose events ask for a retrain of ``model_name`` (emitted by monitoring)."""
    from airflow.sdk import Asset

    return Asset(name=f"{model_name}_retrain_request", uri=f"modelops://retrain-request/{model_name}", group="modelops")


def retrain_schedule(model: model_config.ModelConfig):
    """The model's cron schedule or a retrain request, whichever comes first; requests only if no cron."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    request = retrain_request_asset(model.name)
    if not model.schedule.retrain:
        return request
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(model.schedule.retrain, timezone="UTC"), assets=request)


def check_run_params() -> None:
    """Fail the run at once if its conf holds a key the DAG has no param for (a typo would
    otherwise run silently with the default); retrying cannot help."""
    from airflow.sdk import get_current_context

    from modelops.run_params import RunParamsError, check_conf_keys

    context = get_current_context()
    dag = context["dag"]
    with fail_without_retry(RunParamsError):
        check_conf_keys(context["dag_run"].conf, dag.params.keys(), dag.dag_id)


def guard_run_params() -> None:
    """Call last in a ``@dag`` function: a ``check_run_params`` task runs before every other task."""
    from airflow.sdk import task

    check = task(task_id="check_run_params")(check_run_params)().operator
    for root in check.dag.roots:
        if root is not check:
            check >> root
