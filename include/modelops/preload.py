"""The third-party libraries every task process should find already imported.

A retraining step imports pandas, scikit-learn, MLflow and Great Expectations: 2-13 s of imports
per task (benchmarks/retrain.py), paid again by every task process. Both executors can start task
processes from a parent that imported them once:

* LocalExecutor (``make up``): Airflow 3.3's ``[scheduler] mp_start_method = forkserver`` with
  ``[core] mp_forkserver_preload`` (``modelops.local.stack_config``);
* CeleryExecutor (compose, the Celery test pass): Celery's ``imports`` setting, which the worker's
  main process imports before forking its pool (``plugins/modelops_airflow/celery_config.py``);
  the task process is forked from a pool process by Airflow's supervisor.

Only libraries: the project's own modules are imported fresh by each task, so a code change is
picked up without restarting a worker. Light: no imports here, the names only.
"""

from __future__ import annotations

PRELOADED_MODULES = (
    "airflow",
    "airflow.executors.local_executor",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.operators.hitl",
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "boto3",
    "mlflow",
    "mlflow.sklearn",
    "great_expectations",
)
