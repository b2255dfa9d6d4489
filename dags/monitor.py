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
4. **judge_shadow**: when a version is in shadow, the report compares it with the champion on the
   same requests; with `gate.require_shadow_days: N` this step promotes it once N days show it no
   worse, ends it when they show it worse, or waits; the evidence goes into its decision record.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, get_current_context, task

from modelops.dagkit import dag_header, declared_models, retrain_request_asset


def build_monitor_dag(model):
    request = retrain_request_asset(model.name)

    @dag(
        **dag_header(
            model,
            "monitor",
            doc_md=__doc__,
            description=f"Daily drift, quality and performance of '{model.name}' against its training baseline",
            schedule=model.schedule.monitor,
            timeout=dt.timedelta(hours=1),
            max_active_runs=4,
        )
    )
    def monitor():
        @task
        def build_report() -> dict:
            """Report the run's day of live traffic against the training baseline (JSON + HTML in S3)."""
            from modelops.monitoring import steps

            return steps.build_report(model, get_current_context())

        @task
        def decide(summary: dict) -> dict:
            """Decide whether the day asks for a retrain (cooldown and budget honoured) and record it."""
            from modelops.monitoring import steps

            return steps.decide(model, summary, get_current_context())

        @task.short_circuit
        def retrain_requested(decision: dict) -> bool:
            """Go on to request_retrain only if the decision asks for a new retrain."""
            from modelops.monitoring import steps

            return steps.retrain_requested(decision)

        @task(outlets=[request])
        def request_retrain(decision: dict, summary: dict) -> dict:
            """Emit the retrain request (an Asset event carrying the reasons and the run's as_of)."""
            from modelops.monitoring import steps

            return steps.request_retrain(model, decision, summary, get_current_context(), request)

        @task
        def judge_shadow(summary: dict) -> dict:
            """Promote, end or keep the shadow on its days of live evidence (gate.require_shadow_days)."""
            from modelops.deploy import steps as deploy_steps

            context = get_current_context()
            day = dt.date.fromisoformat(summary["day"])
            return deploy_steps.judge_shadow(model, day, actor=context["dag"].dag_id, run_id=context["run_id"])

        summary = build_report()
        decision = decide(summary)
        retrain_requested(decision) >> request_retrain(decision, summary)
        judge_shadow(summary)

    return monitor()


for _model in declared_models():
    globals()[f"monitor_{_model.name}"] = build_monitor_dag(_model)
