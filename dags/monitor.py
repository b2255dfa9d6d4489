"""
### monitor_&lt;model&gt;: one day of live traffic against the training baseline

Daily (and backfillable). For the run's day (its data interval):

1. **build_report**: streams the day's captured serving traffic from `capture/<model>/dt=<day>/`
   into bounded per-feature profiles of each served version, joins ground-truth labels from
   `feedback/`, and compares with the baseline the version was trained with: data quality (a
   GX suite derived from the baseline's constraints), drift per feature (KS / Wasserstein for
   numeric, chi-square / Jensen-Shannon for categorical, PSI for all; Benjamini-Hochberg with
   effect-size floors), prediction drift and realised performance. Writes
   `monitoring/<model>/dt=<day>/report.json` and a self-contained `report.html` (the task log
   prints a link to it). A day without traffic is a "no data" report, not a failure.
2. **decide**: retrain or not, with reasons, honouring a cooldown and a budget of retrain requests
   per window; recorded per day (re-running a day replaces its decision and never asks twice).
3. **request_retrain**: only when asked for: an Asset event that schedules `retrain_<model>`, with
   the reasons and the run's `as_of` instant in its extra (the retrain's window ends there).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, get_current_context, task

from modelops.dagkit import START_DATE, declared_models, default_args, retrain_request_asset


def _day(context) -> dt.date:
    """The day a run judges: its data interval (a daily run at midnight judges the day before);
    a zero-length interval (a manual run of an unscheduled DAG) judges the day before it."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return start.astimezone(dt.UTC).date()
    moment = end if end is not None else context["dag_run"].run_after
    return (moment.astimezone(dt.UTC) - dt.timedelta(days=1)).date()


def _now(context) -> dt.datetime:
    end = context.get("data_interval_end")
    return end if end is not None else context["dag_run"].run_after


def build_monitor_dag(model):
    request = retrain_request_asset(model.name)

    @dag(
        dag_id=f"monitor_{model.name}",
        doc_md=__doc__,
        description=f"Daily drift, quality and performance of '{model.name}' against its training baseline",
        schedule=model.schedule.monitor,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=4,
        tags=["modelops", "monitor", model.name],
        default_args=default_args(model),
        dagrun_timeout=dt.timedelta(hours=1),
    )
    def monitor():
        @task
        def build_report() -> dict:
            from modelops.monitoring.report import run_monitor

            context = get_current_context()
            return run_monitor(model, _day(context), _now(context))

        @task
        def decide(summary: dict) -> dict:
            from modelops.monitoring.report import run_decide

            context = get_current_context()
            return run_decide(model, dt.date.fromisoformat(summary["day"]), _now(context))

        @task.short_circuit
        def retrain_requested(decision: dict) -> bool:
            return bool(decision["emit_retrain_request"])

        @task(outlets=[request])
        def request_retrain(decision: dict, summary: dict) -> dict:
            context = get_current_context()
            extra = {
                "model": model.name,
                "day": decision["day"],
                # The instant the monitored run stands for: the retrain trains on the window
                # ending there (a replayed or backfilled day is not "now").
                "as_of": _now(context).isoformat(),
                "reasons": decision["reasons"],
                "report_uri": summary["report_uri"],
            }
            context["outlet_events"][request].extra = extra
            return extra

        summary = build_report()
        decision = decide(summary)
        retrain_requested(decision) >> request_retrain(decision, summary)

    return monitor()


for _model in declared_models():
    globals()[f"monitor_{_model.name}"] = build_monitor_dag(_model)
