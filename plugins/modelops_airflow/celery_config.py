"""Celery's configuration for the workers: Airflow's default, plus the libraries to preload.

``[celery] celery_config_options = modelops_airflow.celery_config.CELERY_CONFIG`` (set by the
local stack in Celery mode and by docker-compose.yaml). Celery imports ``imports`` in the
worker's main process when it starts, before it forks its pool; Airflow's supervisor forks each
task process from a pool process, so a task finds pandas, scikit-learn, MLflow and Great
Expectations imported (``modelops.preload`` says why and which).
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from modelops.preload import PRELOADED_MODULES

CELERY_CONFIG = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *PRELOADED_MODULES),
}
