"""End-to-end proof of the stack: read a model's raw history from S3, log an MLflow run.

What the ``smoke_<model>`` DAG runs. If this works, boto3 reaches the S3 endpoint, MLflow's
tracking server records runs, and its artifacts land in the platform's bucket.
"""

from __future__ import annotations

import datetime as dt
import logging

from modelops import settings as _settings
from modelops.config import ModelConfig
from modelops.layout import partition_date
from modelops.store import Store

log = logging.getLogger(__name__)


def read_history(model: ModelConfig, as_of: dt.date, store: Store | None = None) -> dict:
    """Row counts of every raw batch dated on or before ``as_of`` (later data is invisible)."""
    from modelops.batches import BatchReadError, read_batch

    store = store or Store()
    keys = [item for item in store.list(model.raw_prefix) if (partition_date(item.key) or dt.date.max) <= as_of]
    if not keys:
        raise FileNotFoundError(
            f"no raw batches for model '{model.name}' in s3://{store.bucket}/{model.raw_prefix} on or before {as_of}; "
            "did `make up` load the history?"
        )
    rows_per_day: dict[str, int] = {}
    unreadable = []
    for item in keys:
        try:
            frame = read_batch(store.get_bytes(item.key), model.data.file_format, store.uri(item.key))
        except BatchReadError as exc:  # a data problem, not a stack problem: report it, go on
            log.warning("%s", exc)
            unreadable.append(item.key)
            continue
        day = partition_date(item.key).isoformat()
        rows_per_day[day] = rows_per_day.get(day, 0) + len(frame)
    summary = {
        "model": model.name,
        "as_of": as_of.isoformat(),
        "batches": len(keys),
        "unreadable": unreadable,
        "rows": sum(rows_per_day.values()),
        "first_day": min(rows_per_day),
        "last_day": max(rows_per_day),
        "rows_per_day": rows_per_day,
    }
    log.info(
        "%s: %d batches, %d rows, %s..%s",
        model.name,
        summary["batches"],
        summary["rows"],
        summary["first_day"],
        summary["last_day"],
    )
    return summary


def log_smoke_run(model: ModelConfig, summary: dict, *, dag_id: str, run_id: str) -> dict:
    """One MLflow run per Airflow run: a re-run finds and reuses it instead of adding another."""
    import mlflow

    settings = _settings.load()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.set_experiment(f"smoke/{model.name}")
    existing = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.airflow_run_id = '{run_id}'",
        output_format="list",
    )
    run_kwargs = {"run_id": existing[0].info.run_id} if existing else {"run_name": f"smoke {summary['as_of']}"}
    with mlflow.start_run(**run_kwargs) as run:
        mlflow.set_tags({"airflow_dag_id": dag_id, "airflow_run_id": run_id, "model": model.name})
        mlflow.log_params(
            {"as_of": summary["as_of"], "first_day": summary["first_day"], "last_day": summary["last_day"]}
        )
        mlflow.log_metrics({"batches": summary["batches"], "rows": summary["rows"]})
        mlflow.log_dict(summary, "history_summary.json")
        artifact_uri = run.info.artifact_uri
    return {"mlflow_run_id": run.info.run_id, "artifact_uri": artifact_uri, "experiment_id": experiment.experiment_id}
