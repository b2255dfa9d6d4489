"""Shared wiring for the generated DAGs: which models exist, default args, the run's as-of date.

Kept light (no pandas/sklearn/mlflow imports): DAG files import it at parse time.
"""

from __future__ import annotations

import datetime as dt
import logging

from modelops import config as model_config

log = logging.getLogger(__name__)

#: Early enough for backfills of any realistic history: a run dated before a task's start_date
#: gets no task instances (and "succeeds" empty).
START_DATE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


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
    from airflow.sdk.exceptions import AirflowFailException

    from modelops.run_params import RunParamsError, check_conf_keys

    context = get_current_context()
    dag = context["dag"]
    try:
        check_conf_keys(context["dag_run"].conf, dag.params.keys(), dag.dag_id)
    except RunParamsError as exc:
        raise AirflowFailException(str(exc)) from None


def guard_run_params() -> None:
    """Call last in a ``@dag`` function: a ``check_run_params`` task runs before every other task."""
    from airflow.sdk import task

    check = task(task_id="check_run_params")(check_run_params)().operator
    for root in check.dag.roots:
        if root is not check:
            check >> root
