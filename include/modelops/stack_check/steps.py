"""The task callables of the ``smoke_<model>`` DAG: the end-to-end proof of the stack.

Read a model's raw history from S3, log an MLflow run. If this works, boto3 reaches the S3
endpoint, MLflow's tracking server records runs, and its artifacts land in the platform's bucket.
(Not the post-deploy check of a served version: that is :mod:`modelops.deploy.verification`.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from modelops import settings as _settings
from modelops.config import ModelConfig
from modelops.layout import partition_date
from modelops.records import Record
from modelops.store import Store

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HistorySummary(Record):
    """Row counts of the raw batches the stack check read, per day."""

    model: str
    as_of: str
    batches: int
    unreadable: list[str]
    rows: int
    first_day: str
    last_day: str
    rows_per_day: dict[str, int]


@dataclasses.dataclass(frozen=True)
class StackCheckRun(Record):
    """The MLflow run the stack check logged, and where its artifacts landed."""

    mlflow_run_id: str
    artifact_uri: str
    experiment_id: str


def _rows_per_day(model: ModelConfig, keys, store: Store) -> tuple[dict[str, int], list[str]]:
    """Rows per partition day, and the keys that could not be read (a data problem, not a stack one)."""
    from modelops.batches import BatchReadError, read_batch

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
    return rows_per_day, unreadable


def read_raw_history(model: ModelConfig, as_of: dt.date, store: Store | None = None) -> dict:
    """Count the rows of every raw batch dated on or before the run's as-of date."""
    store = store or Store()
    keys = [item for item in store.list(model.raw_prefix) if (partition_date(item.key) or dt.date.max) <= as_of]
    if not keys:
        raise FileNotFoundError(
            f"no raw batches for model '{model.name}' in s3://{store.bucket}/{model.raw_prefix} on or before {as_of}; "
            "did `make up` load the history?"
        )
    rows_per_day, unreadable = _rows_per_day(model, keys, store)
    summary = HistorySummary(
        model=model.name,
        as_of=as_of.isoformat(),
        batches=len(keys),
        unreadable=unreadable,
        rows=sum(rows_per_day.values()),
        first_day=min(rows_per_day),
        last_day=max(rows_per_day),
        rows_per_day=rows_per_day,
    )
    log.info(
        "%s: %d batches, %d rows, %s..%s",
        model.name,
        summary.batches,
        summary.rows,
        summary.first_day,
        summary.last_day,
    )
    return summary.to_json()


def log_mlflow_run(model: ModelConfig, summary: dict, *, dag_id: str, run_id: str) -> dict:
    """Log the history summary as an MLflow run (one per Airflow run: a re-run reuses it)."""
    import mlflow

    history = HistorySummary.from_json(summary)
    settings = _settings.load()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.set_experiment(f"smoke/{model.name}")
    existing = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.airflow_run_id = '{run_id}'",
        output_format="list",
    )
    run_kwargs = {"run_id": existing[0].info.run_id} if existing else {"run_name": f"smoke {history.as_of}"}
    with mlflow.start_run(**run_kwargs) as run:
        mlflow.set_tags({"airflow_dag_id": dag_id, "airflow_run_id": run_id, "model": model.name})
        mlflow.log_params({"as_of": history.as_of, "first_day": history.first_day, "last_day": history.last_day})
        mlflow.log_metrics({"batches": history.batches, "rows": history.rows})
        mlflow.log_dict(history.to_json(), "history_summary.json")
        artifact_uri = run.info.artifact_uri
    return StackCheckRun(
        mlflow_run_id=run.info.run_id, artifact_uri=artifact_uri, experiment_id=experiment.experiment_id
    ).to_json()
