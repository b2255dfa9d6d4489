"""One real local stack per test session: moto, MLflow and Airflow 3 on free ports.

The stack runs from a temporary folder, so a developer's own `make up` stack (default ports,
`.local/`) is untouched. Set MODELOPS_TEST_AIRFLOW_DB_URL / MODELOPS_TEST_MLFLOW_DB_URL to run the
same tests with PostgreSQL metadata and backend stores, and MODELOPS_TEST_EXECUTOR=celery to run
them on the production topology (CeleryExecutor with the machine's Redis, a worker per queue, two
serving workers): what `.ci/run` does second.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import psutil
import pytest

from modelops.config import EXPECTATIONS_DIR
from modelops.local.stack import Stack, StackConfig

pytestmark = pytest.mark.integration

#: The as-of "today" of the test history: fixed, so every run generates the same data.
TODAY = dt.date(2026, 11, 20)


def _unscheduled_models(folder: Path) -> Path:
    """The shipped declarations (and their code packages) with retraining on request only: tests trigger every retrain
    themselves, so an unpaused DAG's own scheduled run cannot race them. Monitoring stays
    @daily (its scheduled run for yesterday finds no traffic and reports "no data")."""
    import yaml

    from modelops.config import MODELS_DIR

    folder.mkdir()
    for package in sorted(p for p in MODELS_DIR.iterdir() if (p / "__init__.py").is_file()):
        shutil.copytree(package, folder / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(MODELS_DIR.glob("*.yaml")):
        declaration = yaml.safe_load(path.read_text())
        declaration["schedule"] = {"retrain": None, "monitor": "@daily"}
        (folder / path.name).write_text(yaml.safe_dump(declaration, sort_keys=False))
    return folder


@pytest.fixture(scope="session")
def stack(request):
    home = Path(tempfile.mkdtemp(prefix="modelops-it-"))
    models_dir = _unscheduled_models(home / "models")
    # Suites in a copy too: a test may declare a new model (YAML + suite) without touching the repo.
    expectations_dir = home / "expectations"
    shutil.copytree(EXPECTATIONS_DIR, expectations_dir)
    os.environ["MODELOPS_MODELS_DIR"] = str(models_dir)
    os.environ["MODELOPS_EXPECTATIONS_DIR"] = str(expectations_dir)
    celery = os.environ.get("MODELOPS_TEST_EXECUTOR", "local") == "celery"
    config = StackConfig.ephemeral(
        home,
        airflow_db_url=os.environ.get("MODELOPS_TEST_AIRFLOW_DB_URL") or None,
        mlflow_db_url=os.environ.get("MODELOPS_TEST_MLFLOW_DB_URL") or None,
        # The production topology (.ci/run's second pass): Celery workers per queue, two serving workers.
        executor="celery" if celery else "local",
        celery_broker_url=os.environ.get("MODELOPS_TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        serving_workers=2 if celery else 1,
        # Capture files every 2 s, so tests see their traffic in S3 without waiting a minute.
        extra_env={
            "MODELOPS_MODELS_DIR": str(models_dir),
            "MODELOPS_EXPECTATIONS_DIR": str(expectations_dir),
            "MODELOPS_CAPTURE_FLUSH_SECONDS": "2",
            # Ingestion: short windows so redelivery, retries and dead letters happen within seconds.
            "MODELOPS_INGEST_VISIBILITY_SECONDS": "15",
            "MODELOPS_INGEST_RETRY_DELAY_SECONDS": "1",
            "MODELOPS_INGEST_POLL_SECONDS": "1",
            "MODELOPS_INGEST_CONCURRENCY": "8",
            "MODELOPS_INGEST_MAX_SECONDS": "600",
        },
    )
    running = Stack(config)
    try:
        running.up(load_history=False)
    except Exception:
        _dump_logs(running)
        running.down(save=False)
        raise
    # Point every client in this test process at the stack, as `make up` does for tasks; the
    # commands a test runs (`python -m modelops...`) find the code as the stack's components do,
    # also when pytest was started without the Makefile's PYTHONPATH.
    client_env = {**config.client_env(), "PYTHONPATH": config.environment()["PYTHONPATH"]}
    saved_env = {key: os.environ.get(key) for key in client_env}
    os.environ.update(client_env)
    from modelops.local import bootstrap

    bootstrap.load_history(config, today=TODAY)
    yield running

    family = _process_family(running)
    running.down(save=False)
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    leftovers = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    if request.session.testsfailed:
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            _dump_errors(running)
    if os.environ.get("MODELOPS_TEST_KEEP_HOME"):
        print(f"the stack's home (logs, databases) is kept: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    assert not leftovers, f"`down` left processes behind: {[(p.pid, p.cmdline()) for p in leftovers]}"


def _process_family(stack: Stack) -> list[psutil.Process]:
    family = []
    for pid in filter(None, stack.running().values()):
        try:
            root = psutil.Process(pid)
            family += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return family


def _dump_logs(stack: Stack) -> None:
    for path in sorted(stack.logs.glob("*.log")):
        print(f"----- {path.name} -----")
        print("\n".join(path.read_text(errors="replace").splitlines()[-30:]))


def _dump_errors(stack: Stack, last: int = 3, lines_each: int = 20) -> None:
    """After a failed test, each component's last errors: the stack's home goes with the session,
    and a server-side error (an API server's 500) is only explained there. Tests provoke errors on
    purpose too, so the last few are printed, not only the last."""
    for path in sorted(stack.logs.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback") or "[error" in line]
        if starts:
            print(f"----- {path.name}: {len(starts)} error(s) or traceback(s), the last {last} -----")
            for start in starts[-last:]:
                print("\n".join(lines[start : start + lines_each]))


@pytest.fixture(scope="session")
def models_dir(stack) -> Path:
    """The declarations the running stack reads (a copy; tests may add models to it)."""
    return Path(stack.config.extra_env["MODELOPS_MODELS_DIR"])


@pytest.fixture(scope="session")
def expectations_dir(stack) -> Path:
    return Path(stack.config.extra_env["MODELOPS_EXPECTATIONS_DIR"])


@pytest.fixture(scope="session")
def today() -> dt.date:
    return TODAY


@pytest.fixture(scope="session")
def airflow(stack):
    from modelops.airflow_api import AirflowClient

    cfg = stack.config
    return AirflowClient(cfg.airflow_url, cfg.admin_user, cfg.admin_password)


@pytest.fixture(scope="session")
def store(stack):
    from modelops.store import Store

    return Store(stack.config.bucket)


@pytest.fixture(scope="session")
def mlflow_client(stack):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=stack.config.mlflow_url)


@pytest.fixture(scope="session")
def first_promotion(airflow, today):
    """The first churn champion: a normal run on the loaded history, as of its last day."""
    airflow.wait_for_dag("retrain_churn")
    airflow.unpause("retrain_churn")
    as_of = dt.datetime.combine(today, dt.time(), dt.UTC)
    run = airflow.trigger("retrain_churn", logical_date=as_of.isoformat())
    finished = airflow.wait_for_run("retrain_churn", run["dag_run_id"], timeout=900)
    assert finished["state"] == "success", airflow.failure_logs("retrain_churn", run["dag_run_id"])
    return finished
