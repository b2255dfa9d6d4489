"""MLflow bookkeeping of a retrain run: one parent run per Airflow run, one child run per candidate.

Kept apart from the steps so what is logged where (tags, params, metrics, the model artifact)
reads in one place, and so a re-run finds its earlier MLflow runs by tags instead of adding new
ones. MLflow is imported inside functions: the DAG file imports the steps at parse time.
"""

from __future__ import annotations

import logging
from typing import Any

from modelops import settings as _settings
from modelops.config import ModelConfig
from modelops.layout import experiment_name, safe_run_id

log = logging.getLogger(__name__)

PARENT_ROLE = "retrain"
CANDIDATE_ROLE = "candidate"


def configured_mlflow():
    """The ``mlflow`` module pointed at the configured tracking server."""
    import mlflow

    mlflow.set_tracking_uri(_settings.load().mlflow_tracking_uri)
    return mlflow


def find_run(mlflow, experiment_id: str, **tags) -> object | None:
    """The first MLflow run of the experiment carrying every one of ``tags``, or None."""
    clauses = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
    runs = mlflow.search_runs(experiment_ids=[experiment_id], filter_string=clauses, output_format="list")
    return runs[0] if runs else None


def start_parent_run(model: ModelConfig, run_id: str, dag_id: str, snapshot: dict) -> dict[str, str]:
    """One MLflow parent run per Airflow run (found again on re-run), candidates nest under it."""
    mlflow = configured_mlflow()
    experiment = mlflow.set_experiment(experiment_name(model.name))
    existing = find_run(mlflow, experiment.experiment_id, airflow_run_id=run_id, modelops_role=PARENT_ROLE)
    kwargs = {"run_id": existing.info.run_id} if existing else {"run_name": f"retrain {safe_run_id(run_id)}"}
    with mlflow.start_run(**kwargs) as run:
        mlflow.set_tags(
            {
                "airflow_dag_id": dag_id,
                "airflow_run_id": run_id,
                "modelops_role": PARENT_ROLE,
                "model": model.name,
                "dataset_hash": snapshot["dataset_hash"],
                "manifest_uri": snapshot["manifest_uri"],
            }
        )
        mlflow.log_params(
            {"window_days": snapshot["window"]["days"], "window_last_day": snapshot["window"]["last_day"]}
        )
        mlflow.log_metric("snapshot_rows", snapshot["rows"])
    return {"parent_run_id": run.info.run_id, "experiment_id": experiment.experiment_id}


def recorded_candidate(mlflow, run_id: str, candidate: str, parent: dict) -> tuple[object | None, dict | None]:
    """The candidate's earlier child run of this Airflow run, and its recorded result if it finished."""
    existing = find_run(
        mlflow, parent["experiment_id"], airflow_run_id=run_id, modelops_role=CANDIDATE_ROLE, candidate=candidate
    )
    if existing is not None and existing.info.status == "FINISHED" and existing.data.tags.get("model_uri"):
        log.info("%s already trained in MLflow run %s; reusing its result", candidate, existing.info.run_id)
        return existing, mlflow.artifacts.load_dict(f"runs:/{existing.info.run_id}/candidate_result.json")
    return existing, None


def _log_candidate_metrics(mlflow, result: Any) -> None:
    for metric, values in result.cv_metrics.items():
        if values["mean"] is not None:
            mlflow.log_metric(f"cv_{metric}", values["mean"])
            mlflow.log_metric(f"cv_{metric}_std", values["std"] or 0.0)
    for metric, value in result.train_metrics.items():
        if value is not None:
            mlflow.log_metric(f"train_{metric}", value)
    mlflow.log_metrics({"fit_seconds": result.fit_seconds, "search_seconds": result.search_seconds})


def log_candidate(
    mlflow, model: ModelConfig, run_id: str, candidate: str, parent: dict, existing, result: Any, X
) -> dict[str, Any]:
    """Log a fitted :class:`~modelops.training.candidate.CandidateResult` as a child run; returns its record."""
    from mlflow.models import infer_signature

    from modelops.training.trust import trusted_types_for
    from modelops.usercode.loader import package_dir

    trusted = trusted_types_for(model, candidate, result.model)  # refuses before anything is logged
    code_folder = package_dir(model)
    kwargs = {"run_id": existing.info.run_id} if existing else {"run_name": candidate}
    with mlflow.start_run(
        **kwargs, experiment_id=parent["experiment_id"], parent_run_id=parent["parent_run_id"], nested=True
    ) as run:
        mlflow.set_tags(
            {"airflow_run_id": run_id, "modelops_role": CANDIDATE_ROLE, "candidate": candidate, "model": model.name}
        )
        mlflow.log_params({f"param_{k}": v for k, v in result.params.items()} | {"candidate": candidate})
        _log_candidate_metrics(mlflow, result)
        example = X.head(5)
        info = mlflow.sklearn.log_model(
            result.model,
            name="model",
            signature=infer_signature(example, result.model.predict(example)),
            input_example=example,
            skops_trusted_types=trusted,
            # The model's own code travels with it: serving and a reload years later use this copy.
            code_paths=[str(code_folder)] if code_folder is not None else None,
        )
        record = result.to_dict() | {
            "mlflow_run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "parent_run_id": parent["parent_run_id"],
        }
        mlflow.log_dict(record, "candidate_result.json")
        mlflow.set_tag("model_uri", info.model_uri)
        mlflow.set_tag("rules", "passed" if result.passed else "failed: " + "; ".join(result.failure_reasons)[:4000])
    return record


def log_failed_candidate(mlflow, model: ModelConfig, run_id: str, candidate: str, parent: dict, existing,
                         error: Exception) -> dict[str, Any]:  # fmt: skip
    """Record a candidate whose code (the model's own) failed: a child run marked FAILED with the
    error's file, line and traceback, and a record the selection skips (it is not retried: the
    fix is theirs). Clearing the task after a fix trains it again."""
    from modelops.usercode.loader import UserCodeError

    details = error.to_dict() if isinstance(error, UserCodeError) else {"problem": str(error)}
    reason = str(error)
    kwargs = {"run_id": existing.info.run_id} if existing else {"run_name": candidate}
    with mlflow.start_run(
        **kwargs, experiment_id=parent["experiment_id"], parent_run_id=parent["parent_run_id"], nested=True
    ) as run:
        mlflow.set_tags(
            {"airflow_run_id": run_id, "modelops_role": CANDIDATE_ROLE, "candidate": candidate, "model": model.name,
             "rules": f"failed: {reason}"[:4000], "error": reason[:4000]}
        )  # fmt: skip
        record = {
            "candidate": candidate, "problem_type": model.problem_type, "primary_metric": model.metrics.primary,
            "cv_primary": None, "params": {}, "passed": False, "failure_reasons": [reason], "error": details,
            "mlflow_run_id": run.info.run_id, "model_uri": None, "parent_run_id": parent["parent_run_id"],
        }  # fmt: skip
        mlflow.log_dict(record, "candidate_result.json")
        if details.get("traceback"):
            mlflow.log_text(details["traceback"], "error_traceback.txt")
    mlflow.MlflowClient().set_terminated(run.info.run_id, status="FAILED")
    return record
