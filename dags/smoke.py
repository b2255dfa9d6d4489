"""
### smoke_&lt;model&gt;: is the platform wired end to end?

Reads the model's raw history from S3 (through boto3) up to the run's as-of date, then logs an
MLflow run whose artifact lands in the platform's bucket. Trigger it after `make up`: if it is
green, S3, MLflow and Airflow all work together. One DAG per model declared in
`include/models/*.yaml`, generated; no Python is needed to add a model.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, get_current_context, task

from modelops.dagkit import as_of_date, dag_header, declared_models


def build_smoke_dag(model):
    @dag(
        **dag_header(
            model,
            "smoke",
            doc_md=__doc__,
            description=f"Stack check for model '{model.name}': S3 read + MLflow run",
            schedule=None,
            timeout=dt.timedelta(minutes=15),
        )
    )
    def smoke():
        @task
        def read_raw_history() -> dict:
            """Count the rows of every raw batch dated on or before the run's as-of date."""
            from modelops.stack_check import steps

            return steps.read_raw_history(model, as_of_date(get_current_context()))

        @task
        def log_mlflow_run(summary: dict) -> dict:
            """Log the history summary as an MLflow run (one per Airflow run: a re-run reuses it)."""
            from modelops.stack_check import steps

            context = get_current_context()
            return steps.log_mlflow_run(model, summary, dag_id=context["dag"].dag_id, run_id=context["run_id"])

        log_mlflow_run(read_raw_history())

    return smoke()


for _model in declared_models():
    globals()[f"smoke_{_model.name}"] = build_smoke_dag(_model)
