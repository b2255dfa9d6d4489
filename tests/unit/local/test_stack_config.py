"""StackConfig: the executor modes of the local stack and what each gives its components."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.local.stack_config import StackConfig
from modelops.settings import SettingError

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"


def test_default_is_the_local_executor_on_sqlite(tmp_path: Path):
    env = StackConfig(home=tmp_path).environment()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/airflow/airflow.db?timeout=30"
    assert not any(key.startswith("AIRFLOW__CELERY") for key in env)
    assert env["MODELOPS_SERVING_WORKERS"] == "1"


def test_celery_mode_uses_redis_and_postgres_with_the_stacks_own_key_prefix(tmp_path: Path):
    cfg = StackConfig(home=tmp_path, executor="celery", airflow_db_url=PG, serving_workers=2, airflow_port=9999)
    env = cfg.environment()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    # The driver is kept: SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql:// URL.
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + PG
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "modelops-9999-"
    assert env["MODELOPS_SERVING_WORKERS"] == "2"


def test_celery_on_sqlite_and_unknown_executors_are_refused_with_the_fix(tmp_path: Path):
    with pytest.raises(SettingError, match="MODELOPS_AIRFLOW_DB_URL"):
        StackConfig(home=tmp_path, executor="celery")
    with pytest.raises(SettingError, match="MODELOPS_EXECUTOR must be one of"):
        StackConfig(home=tmp_path, executor="kubernetes")


def test_from_env_reads_the_mode(tmp_path: Path):
    cfg = StackConfig.from_env(
        {
            "MODELOPS_HOME": str(tmp_path),
            "MODELOPS_EXECUTOR": "Celery",
            "MODELOPS_AIRFLOW_DB_URL": PG,
            "MODELOPS_CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
            "MODELOPS_SERVING_WORKERS": "3",
        }
    )
    assert (cfg.executor, cfg.celery_broker_url, cfg.serving_workers) == ("celery", "redis://127.0.0.1:6379/3", 3)
    with pytest.raises(SettingError, match="MODELOPS_SERVING_WORKERS"):
        StackConfig.from_env({"MODELOPS_HOME": str(tmp_path), "MODELOPS_SERVING_WORKERS": "0"})


def _module_exists(dotted: str) -> bool:
    """Whether ``dotted`` names an installed module, without importing it (or its parents)."""
    import importlib.util

    top, *rest = dotted.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None:
        return False
    if not rest:
        return True
    base = Path(spec.submodule_search_locations[0]).joinpath(*rest)
    return (base / "__init__.py").exists() or base.with_suffix(".py").exists()


def test_local_executor_workers_start_with_the_libraries_tasks_import(tmp_path: Path):
    """multiprocessing skips a preload module that fails to import without a word: every name must exist."""
    from modelops.preload import PRELOADED_MODULES

    env = StackConfig(home=tmp_path).environment()
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    preloaded = env["AIRFLOW__CORE__MP_FORKSERVER_PRELOAD"].split(",")
    assert preloaded == list(PRELOADED_MODULES)
    assert {"pandas", "sklearn.ensemble", "mlflow", "great_expectations"} <= set(preloaded)
    assert not any(name.startswith("modelops") for name in preloaded), "own code must be imported fresh per task"
    missing = [name for name in preloaded if not _module_exists(name)]
    assert not missing, f"not installed: {missing}"


def test_celery_workers_are_not_given_the_local_executors_start_method(tmp_path: Path):
    env = StackConfig(home=tmp_path, executor="celery", airflow_db_url=PG).environment()
    assert "AIRFLOW__SCHEDULER__MP_START_METHOD" not in env
    assert env["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == "0.2"


def test_celery_workers_preload_the_same_libraries_locally_and_in_compose(tmp_path: Path):
    """Celery's config is Airflow's default plus ``imports`` (imported before the pool forks)."""
    import importlib

    import yaml

    from modelops.local.stack_config import CELERY_CONFIG_OPTIONS, REPO
    from modelops.preload import PRELOADED_MODULES

    env = StackConfig(home=tmp_path, executor="celery", airflow_db_url=PG).environment()
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_CONFIG_OPTIONS
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    assert compose["x-airflow-env"]["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CELERY_CONFIG_OPTIONS
    module, _, name = CELERY_CONFIG_OPTIONS.rpartition(".")
    config = getattr(importlib.import_module(module), name)
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    assert {k: v for k, v in config.items() if k != "imports"} == {
        k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"
    }
    assert set(PRELOADED_MODULES) <= set(config["imports"])


def test_compose_schedules_as_fast_as_the_local_stack():
    """The scheduling settings are the same in docker-compose.yaml's Airflow environment."""
    import yaml

    from modelops.local.stack_config import REPO, SCHEDULING

    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    environment = compose["x-airflow-env"]
    assert {key: str(environment.get(key)) for key in SCHEDULING} == SCHEDULING


def test_the_mlflow_server_runs_no_job_runner_locally_or_in_compose(tmp_path: Path):
    """MLflow's GenAI job runner (its huey consumers) is off in both stacks."""
    import yaml

    from modelops.local.stack_config import MLFLOW_SERVER, REPO

    assert MLFLOW_SERVER == {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env = StackConfig(home=tmp_path).environment()
    assert {key: env[key] for key in MLFLOW_SERVER} == MLFLOW_SERVER
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    environment = compose["services"]["mlflow"]["environment"]
    assert {key: str(environment.get(key)) for key in MLFLOW_SERVER} == MLFLOW_SERVER
