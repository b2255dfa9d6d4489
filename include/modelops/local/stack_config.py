"""Where the local stack lives and listens, and the environment every component runs with.

Kept apart from :mod:`modelops.local.stack` (which starts and stops the processes) because the
demo, the bootstrap and the scaffold only need the addresses: ``StackConfig.from_env()`` reads
``.env`` and the environment, ``client_env()`` is what a client needs to reach the services, and
``environment()`` is the full environment of an Airflow, MLflow or moto process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from modelops.preload import PRELOADED_MODULES
from modelops.settings import SettingError, env_int, env_str

log = logging.getLogger(__name__)

#: The repository root (include/modelops/local/stack_config.py is three folders below it).
REPO = Path(__file__).resolve().parents[3]
COMPONENTS = (
    "aws",
    "mlflow",
    "serving",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    # Celery mode only (MODELOPS_EXECUTOR=celery): one worker per queue, as docker-compose.yaml has.
    "airflow-worker",
    "airflow-worker-training",
)
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}

#: How fast Airflow notices a finished task and starts the next one, for every executor (the
#: same values are in docker-compose.yaml's ``x-airflow-env``). The scheduler's loop sleeps only
#: when a loop found nothing to do; the default (1 s) puts up to a second between a task's end
#: and its successor being queued, on every step of a sequential chain. The price is an idle
#: scheduler that queries its database five times a second instead of once.
SCHEDULING = {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2"}
#: The MLflow server's job runner (a huey consumer per GenAI job kind: trace rollups, prompt
#: optimisation, scorers) serves features modelops does not use. Off, the server's processes hold
#: ~1.9 GB less RSS (summed over them) and idle at half the CPU (measured 2026-12-07: 2.6 GB and
#: 19 ms/s on, 0.7 GB and 9 ms/s off). The same in docker-compose.yaml's mlflow service.
MLFLOW_SERVER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

#: How long a connection to the local stack's SQLite database waits for another's write to end
#: before it fails with "database is locked" (Python's default is 5 s). The scheduler, the
#: dag-processor, the triggerer, the API server and the task processes all write to one file, and
#: on two busy cores one write can hold the lock past 5 s: the API server then answers a 500
#: ("Database error"; apache/airflow#66726). PostgreSQL (MODELOPS_AIRFLOW_DB_URL) has no such lock.
SQLITE_BUSY_SECONDS = 30

#: Celery's configuration: Airflow's default plus the preloaded libraries (docker-compose.yaml too).
CELERY_CONFIG_OPTIONS = "modelops_airflow.celery_config.CELERY_CONFIG"
#: The LocalExecutor's workers start from a forkserver that imported the libraries (modelops.preload).
LOCAL_EXECUTOR = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": ",".join(PRELOADED_MODULES),
}


def _read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blanks ignored); the real environment wins."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StackConfig:
    home: Path
    host: str = "127.0.0.1"
    airflow_port: int = 8080
    mlflow_port: int = 5000
    aws_port: int = 4566
    serving_port: int = 8000
    log_server_port: int = 8793
    trigger_log_server_port: int = 8794
    bucket: str = "modelops"
    region: str = "us-east-1"
    access_key: str = "testing"
    secret_key: str = "testing"
    admin_user: str = "admin"
    admin_password: str = "admin"
    #: A read-only user (Airflow's ``viewer`` role): sees the DAGs and the Models pages, triggers nothing.
    viewer_user: str = "viewer"
    viewer_password: str = "viewer"
    airflow_db_url: str | None = None
    mlflow_db_url: str | None = None
    serving_token: str = "local-dev-token"
    #: ``local`` (LocalExecutor, the default) or ``celery``: the production topology on this machine
    #: (CeleryExecutor, Redis broker, PostgreSQL for Airflow's metadata and Celery's results, one
    #: worker for the default queue and one for ``training``, serving with two workers).
    executor: str = "local"
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    serving_workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise SettingError(f"MODELOPS_EXECUTOR must be one of {sorted(EXECUTORS)}, not {self.executor!r}")
        if self.executor == "celery" and not (self.airflow_db_url or "").startswith("postgresql"):
            raise SettingError(
                "MODELOPS_EXECUTOR=celery needs Airflow's metadata on PostgreSQL (Celery keeps its results "
                "there and Airflow refuses SQLite with the CeleryExecutor): set MODELOPS_AIRFLOW_DB_URL to a "
                "postgresql+psycopg2:// URL"
            )

    @property
    def celery(self) -> bool:
        return self.executor == "celery"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StackConfig:
        """``.env`` overlaid with the environment; a bad port raises SettingError naming the variable."""
        values = {**_read_env_file(REPO / ".env"), **(env if env is not None else os.environ)}

        def port(name: str, default: int) -> int:
            return env_int(name, default, minimum=1, maximum=65535, environ=values)

        def text(name: str, default: str) -> str:
            return env_str(name, default, environ=values)

        return cls(
            home=Path(values.get("MODELOPS_HOME") or REPO / ".local"),
            host=text("MODELOPS_HOST", "127.0.0.1"),
            airflow_port=port("AIRFLOW_PORT", 8080),
            mlflow_port=port("MLFLOW_PORT", 5000),
            aws_port=port("AWS_ENDPOINT_PORT", 4566),
            serving_port=port("SERVING_PORT", 8000),
            log_server_port=port("AIRFLOW_LOG_SERVER_PORT", 8793),
            trigger_log_server_port=port("AIRFLOW_TRIGGER_LOG_SERVER_PORT", 8794),
            bucket=text("MODELOPS_BUCKET", "modelops"),
            region=text("AWS_DEFAULT_REGION", "us-east-1"),
            access_key=text("AWS_ACCESS_KEY_ID", "testing"),
            secret_key=text("AWS_SECRET_ACCESS_KEY", "testing"),
            admin_user=text("AIRFLOW_ADMIN_USER", "admin"),
            admin_password=text("AIRFLOW_ADMIN_PASSWORD", "admin"),
            viewer_user=text("AIRFLOW_VIEWER_USER", "viewer"),
            viewer_password=text("AIRFLOW_VIEWER_PASSWORD", "viewer"),
            airflow_db_url=values.get("MODELOPS_AIRFLOW_DB_URL") or None,
            mlflow_db_url=values.get("MODELOPS_MLFLOW_DB_URL") or None,
            serving_token=text("MODELOPS_SERVING_TOKEN", "local-dev-token"),
            executor=text("MODELOPS_EXECUTOR", "local").lower(),
            celery_broker_url=text("MODELOPS_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
            serving_workers=env_int("MODELOPS_SERVING_WORKERS", 1, minimum=1, maximum=32, environ=values),
        )

    @classmethod
    def ephemeral(cls, home: Path, **overrides) -> StackConfig:
        """A stack on free ports in its own folder: what the integration tests run."""
        ports = {
            name: free_port()
            for name in (
                "airflow_port",
                "mlflow_port",
                "aws_port",
                "serving_port",
                "log_server_port",
                "trigger_log_server_port",
            )
        }
        return cls(home=home, **{**ports, **overrides})

    # Addresses --------------------------------------------------------------------------------
    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.airflow_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def serving_url(self) -> str:
        return f"http://{self.host}:{self.serving_port}"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    def airflow_sql_url(self) -> str:
        return self.airflow_db_url or f"sqlite:///{self.airflow_home / 'airflow.db'}?timeout={SQLITE_BUSY_SECONDS}"

    def mlflow_sql_url(self) -> str:
        return self.mlflow_db_url or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    def client_env(self) -> dict[str, str]:
        """What a process needs to reach the platform's services (tasks, tests, the demo)."""
        return {
            "MODELOPS_BUCKET": self.bucket,
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_S3_ENDPOINT_URL": self.aws_url,
            "MODELOPS_SERVING_URL": self.serving_url,
            "MODELOPS_SERVING_TOKEN": self.serving_token,
            "MODELOPS_AIRFLOW_URL": self.airflow_url,
            # The login the REST clients (backfill, demo) use: this stack's admin, as .env sets it.
            "MODELOPS_AIRFLOW_USER": self.admin_user,
            "MODELOPS_AIRFLOW_PASSWORD": self.admin_password,
        }

    def environment(self) -> dict[str, str]:
        """The full environment of every component: client settings plus Airflow's own."""
        venv_bin = str(Path(sys.executable).parent)
        aws_connection = {
            "conn_type": "aws",
            "login": self.access_key,
            "password": self.secret_key,
            "extra": {"endpoint_url": self.aws_url, "region_name": self.region},
        }
        env = {
            **os.environ,
            **self.client_env(),
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO / "include"), str(REPO / "plugins"), os.environ.get("PYTHONPATH")])
            ),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": EXECUTORS[self.executor],
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.admin_user}:admin,{self.viewer_user}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.airflow_home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_sql_url(),
            "AIRFLOW__API__HOST": self.host,
            "AIRFLOW__API__PORT": str(self.airflow_port),
            "AIRFLOW__API__BASE_URL": self.airflow_url,
            "AIRFLOW__API__WORKERS": "1",
            # Local stack only: an API error of the database names its statement and the database's
            # error in the response, not only a lookup id in the API server's log.
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__API__SECRET_KEY": "modelops-local-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "modelops-local-jwt-secret-change-me-in-production",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_server_port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            **SCHEDULING,
            **MLFLOW_SERVER,
            **(LOCAL_EXECUTOR if not self.celery else {}),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws_connection),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # Airflow forks task processes; macOS-style fork safety is irrelevant on Linux, but
            # GX and MLflow print analytics warnings without these.
            "GX_ANALYTICS_ENABLED": "False",
            "MLFLOW_ENABLE_TELEMETRY": "false",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "DO_NOT_TRACK": "true",
            # Two cores: parallel training tasks must not each spawn a thread per core.
            "OMP_NUM_THREADS": "1",
            "MODELOPS_SERVING_ACCEPT_EVENT_TIME": "true",  # local stack only: demos send simulated traffic
            "MODELOPS_SERVING_WORKERS": str(self.serving_workers),
            **(self._celery_env() if self.celery else {}),
            **self.extra_env,
        }
        return env

    def _celery_env(self) -> dict[str, str]:
        """Celery's broker (the machine's Redis) and result backend (Airflow's PostgreSQL database)."""
        backend = "db+" + self.airflow_sql_url()  # keep the driver: SQLAlchemy 2.1's default is psycopg 3
        return {
            "AIRFLOW__CELERY__BROKER_URL": self.celery_broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            # The worker imports the libraries before forking its pool (modelops.preload).
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
            # Stacks sharing the machine's Redis must not take each other's tasks: every key of this
            # stack's queues carries its own prefix.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"modelops-{self.airflow_port}-",
        }
