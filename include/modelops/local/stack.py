"""The local platform: moto (S3 + SQS), MLflow and Airflow 3 on loopback, one command each way.

``python -m modelops.local.stack up|down|status|clean`` (what ``make up`` and friends call), and the
:class:`Stack` class the integration tests use to run their own stack on free ports in a
temporary folder. Every component is its own process in its own session; its pid is recorded,
and every process it spawns carries the stack's home and the component's name in its environment
(see :mod:`modelops.local.processes`). ``down`` stops each component's process tree and every process
so tagged, orphans of a crashed component included (Airflow's LocalExecutor workers and log
servers); ``up`` first stops such leftovers, so nothing holds the stack's ports.

moto keeps its state in memory. ``down`` therefore saves the bucket to ``<home>/s3-snapshot``
and ``up`` restores it into a freshly started endpoint, so ``make down && make up`` keeps data
(messages still in flight on SQS are not kept: ingestion re-announces unprocessed raw files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from modelops.local import processes
from modelops.local.probes import alive, bin_path, http_ok, port_busy, wait_for
from modelops.local.stack_config import COMPONENTS, StackConfig

#: Celery mode: worker component -> (queue it serves, concurrency). Training is heavy and has two
#: cores at most here; the default queue's tasks are light and many.
CELERY_WORKERS = {"airflow-worker": ("default", 4), "airflow-worker-training": ("training", 2)}

log = logging.getLogger(__name__)


class Stack:
    """One local stack's processes: started, watched and stopped by the pid files under its home."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.home = config.home
        self.pids = self.home / "pids"
        self.logs = self.home / "logs"
        #: Size of each component's log when this object last started it (where its new lines begin).
        self._log_offsets: dict[str, int] = {}

    # Process bookkeeping -----------------------------------------------------------------------
    def _pid(self, name: str) -> int | None:
        path = self.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text().strip())
        return pid if alive(pid) and processes.belongs(pid, self.home) else None

    def _start(self, name: str, argv: list[str]) -> None:
        if self._pid(name):
            log.info("%s already running (pid %s)", name, self._pid(name))
            return
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        logfile = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self._log_offsets[name] = logfile.tell()
        process = subprocess.Popen(
            argv,
            env={**self.config.environment(), **processes.marker_env(self.home, name)},
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.home,
            start_new_session=True,
        )
        logfile.close()
        (self.pids / f"{name}.pid").write_text(str(process.pid))
        log.info("started %s (pid %s), log %s", name, process.pid, self.logs / f"{name}.log")

    def _stop(self, name: str, timeout: float = 20.0) -> None:
        path = self.pids / f"{name}.pid"
        pid = self._pid(name)
        stopped = processes.stop_component(self.home, name, pid, timeout)
        if stopped:
            log.info("stopped %s (pid %s; %d processes: %s)", name, pid, len(stopped), stopped)
        path.unlink(missing_ok=True)

    def _clear_leftovers(self) -> None:
        """Stop what crashed components left behind (workers, log servers), freeing their ports.

        A component that is not running loses every process tagged with its name; one that runs
        loses only the orphans (outside its process tree) that hold one of the stack's ports.
        """
        cfg = self.config
        ports = {cfg.aws_port, cfg.mlflow_port, cfg.airflow_port, cfg.serving_port}
        ports |= {cfg.log_server_port, cfg.trigger_log_server_port}
        for name in COMPONENTS:
            pid = self._pid(name)
            leftovers = processes.orphans(self.home, name, pid)
            if pid:
                leftovers = [p for p in leftovers if processes.listening_ports(p) & ports]
            if leftovers:
                log.warning("%s left processes behind: stopping %s", name, [p.pid for p in leftovers])
                processes.stop(leftovers)

    def running(self) -> dict[str, int | None]:
        return {name: self._pid(name) for name in COMPONENTS}

    # Lifecycle ---------------------------------------------------------------------------------
    def up(self, load_history: bool = True) -> None:
        cfg = self.config
        for directory in (self.home, cfg.airflow_home, self.home / "mlflow"):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_passwords()
        self._clear_leftovers()
        for name, port in (
            ("aws", cfg.aws_port),
            ("mlflow", cfg.mlflow_port),
            ("airflow-api-server", cfg.airflow_port),
            ("airflow-scheduler", cfg.log_server_port),
            ("airflow-triggerer", cfg.trigger_log_server_port),
        ):
            if not self._pid(name) and port_busy(cfg.host, port):
                raise RuntimeError(
                    f"port {port} on {cfg.host} is taken by another process; {name} cannot start. "
                    f"Stop it or choose another port (see .env.example)."
                )
        fresh_endpoint = not self._pid("aws")
        self._start("aws", [bin_path("moto_server"), "-H", cfg.host, "-p", str(cfg.aws_port)])
        wait_for(
            lambda: http_ok(f"{cfg.aws_url}/moto-api/"), "local AWS endpoint", 60, self.logs / "aws.log",
            alive=lambda: self._pid("aws"),
        )  # fmt: skip
        from modelops.local import bootstrap

        bootstrap.create_resources(cfg)
        if fresh_endpoint:
            restored = bootstrap.restore_bucket_copy(cfg, self.home / "s3-snapshot")
            if restored:
                log.info("restored %d objects saved by the last `make down`", restored)

        self._start(
            "mlflow",
            [
                bin_path("mlflow"), "server",
                "--backend-store-uri", cfg.mlflow_sql_url(),
                "--artifacts-destination", f"s3://{cfg.bucket}/mlflow",
                "--host", cfg.host, "--port", str(cfg.mlflow_port), "--workers", "1",
            ],
        )  # fmt: skip
        if not self._pid("airflow-scheduler"):
            self._migrate_airflow()
        self._start(
            "airflow-api-server",
            [bin_path("airflow"), "api-server", "--port", str(cfg.airflow_port), "--host", cfg.host],
        )
        self._start("airflow-scheduler", [bin_path("airflow"), "scheduler"])
        self._start("airflow-dag-processor", [bin_path("airflow"), "dag-processor"])
        self._start("airflow-triggerer", [bin_path("airflow"), "triggerer"])
        if cfg.celery:
            self._start_celery_workers()
        wait_for(
            lambda: http_ok(f"{cfg.mlflow_url}/health"), "MLflow", 120, self.logs / "mlflow.log",
            alive=lambda: self._pid("mlflow"),
        )  # fmt: skip
        # Serving loads each model's champion at start, so it starts once MLflow answers.
        self._start(
            "serving", [sys.executable, "-m", "modelops.serving", "--host", cfg.host, "--port", str(cfg.serving_port)]
        )
        wait_for(
            lambda: http_ok(f"{cfg.serving_url}/health"), "serving", 120, self.logs / "serving.log",
            alive=lambda: self._pid("serving"),
        )  # fmt: skip
        airflow_parts = ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
        airflow_parts += list(CELERY_WORKERS) if cfg.celery else []
        wait_for(
            self._airflow_healthy, "Airflow", 180, self.logs / "airflow-scheduler.log",
            alive=lambda: all(self._pid(name) for name in airflow_parts),
        )  # fmt: skip
        if cfg.celery:
            for name in CELERY_WORKERS:
                wait_for(
                    lambda name=name: self._worker_ready(name), f"Celery worker {name}", 120,
                    self.logs / f"{name}.log", alive=lambda name=name: self._pid(name),
                )  # fmt: skip
        self._ensure_pools()
        if load_history:
            loaded = bootstrap.load_history(cfg)
            log.info("history: %d new objects written", loaded)

    def down(self, save: bool = True) -> None:
        if save and self._pid("aws"):
            from modelops.local import bootstrap

            try:
                saved = bootstrap.save_bucket_copy(self.config, self.home / "s3-snapshot")
                log.info("saved %d objects to %s", saved, self.home / "s3-snapshot")
            except Exception:  # the stop must go on even if the endpoint is sick
                log.exception("could not save the S3 snapshot; local S3 data is lost")
        from concurrent.futures import ThreadPoolExecutor

        # Stopping is mostly waiting for graceful shutdowns: wait for all components at once.
        with ThreadPoolExecutor(len(COMPONENTS)) as pool:
            list(pool.map(self._stop, COMPONENTS))

    def clean(self) -> None:
        self.down(save=False)
        if self.home.exists():
            shutil.rmtree(self.home)

    def _start_celery_workers(self) -> None:
        """One Celery worker per queue, as docker-compose.yaml runs them. Their logs are files on
        this machine the API server reads directly, so neither serves logs over HTTP (two would
        fight over the log server's port)."""
        for name, (queue, concurrency) in CELERY_WORKERS.items():
            self._start(
                name,
                [
                    bin_path("airflow"), "celery", "worker", "--queues", queue, "--concurrency", str(concurrency),
                    "--celery-hostname", f"{name}-{self.config.airflow_port}@%h", "--skip-serve-logs",
                ],
            )  # fmt: skip

    def _worker_ready(self, name: str) -> bool:
        """Celery logs ``<name>-<port>@<host> ready.`` once the worker consumes its queue (looked
        for in what this start of the worker wrote, not in an earlier start's lines)."""
        path = self.logs / f"{name}.log"
        with open(path, "rb") as log_file:
            log_file.seek(self._log_offsets.get(name, 0))
            written = log_file.read().decode(errors="replace")
        return re.search(rf"{re.escape(name)}-{self.config.airflow_port}@\S+ ready\.", written) is not None

    def _ensure_pools(self) -> None:
        """Each declared model's training pool (retrain also checks it; see modelops.pools)."""
        from modelops.airflow_api import AirflowClient
        from modelops.pools import ensure_training_pools

        client = AirflowClient(self.config.airflow_url, self.config.admin_user, self.config.admin_password)
        for pool in ensure_training_pools(client=client):
            log.info("pool %s: %d slots (%s)", pool["pool"], pool["slots"], pool["action"])

    def _write_passwords(self) -> None:
        path = self.config.airflow_home / "passwords.json"
        users = {
            self.config.admin_user: self.config.admin_password,
            self.config.viewer_user: self.config.viewer_password,
        }
        path.write_text(json.dumps(users))

    def _migrate_airflow(self) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [bin_path("airflow"), "db", "migrate"],
            env=self.config.environment(),
            capture_output=True,
            text=True,
            cwd=self.home,
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        log.info("airflow db migrate: %.1f s", time.monotonic() - started)

    def _airflow_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.config.airflow_url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
        except (OSError, ValueError):
            return False
        parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
        return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

    def status(self) -> dict:
        cfg = self.config
        running = self.running()
        probes = {
            "aws": (cfg.aws_url, lambda: http_ok(f"{cfg.aws_url}/moto-api/")),
            "mlflow": (cfg.mlflow_url, lambda: http_ok(f"{cfg.mlflow_url}/health")),
            "serving": (cfg.serving_url, lambda: http_ok(f"{cfg.serving_url}/health")),
            "airflow-api-server": (cfg.airflow_url, lambda: http_ok(f"{cfg.airflow_url}/api/v2/monitor/health")),
        }
        report = {}
        for name in COMPONENTS:
            url, probe = probes.get(name, (None, None))
            report[name] = {
                "pid": running[name],
                "url": url,
                "answers": bool(probe and running[name] and probe()),
                "log": str(self.logs / f"{name}.log"),
                "orphans": [p.pid for p in processes.orphans(self.home, name, running[name])],
            }
        return report


def _print_welcome(cfg: StackConfig) -> None:
    print(
        f"""
modelops is up.
  Airflow UI   {cfg.airflow_url}      login {cfg.admin_user} / {cfg.admin_password}
  MLflow UI    {cfg.mlflow_url}
  S3 + SQS     {cfg.aws_url}      (moto; bucket s3://{cfg.bucket})
  Serving      {cfg.serving_url}      (/docs; POST /models/<model>/predict; answers once a champion exists)
  State, logs  {cfg.home}

What to click first: in the Airflow UI open DAGs, unpause `smoke_churn` and trigger it;
its run reads the churn history from S3 and logs an MLflow run you can open in the MLflow UI.
`make status` shows what runs where; `make down` stops everything (data is kept).
"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.local.stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "clean", "env", "provision"])
    parser.add_argument("--no-history", action="store_true", help="up: do not load the example history")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = StackConfig.from_env()
    stack = Stack(cfg)
    if args.command == "up":
        started = time.monotonic()
        try:
            stack.up(load_history=not args.no_history)
        except Exception as exc:
            print(f"\nmake up failed: {exc}\nLogs: {stack.logs}. `make down` stops what did start.", file=sys.stderr)
            return 1
        _print_welcome(cfg)
        print(f"(up in {time.monotonic() - started:.0f} s)")
    elif args.command == "provision":
        from modelops.local import bootstrap

        for name, url in bootstrap.create_resources(cfg).items():
            print(f"{name}: ingest queue {url} (+ dead-letter queue), notified of new files under raw/{name}/")
        if stack._airflow_healthy():
            stack._ensure_pools()
            print("training pools: one per model (training_<model>)")
    elif args.command == "down":
        stack.down()
        print("stopped; data kept in", cfg.home)
    elif args.command == "clean":
        stack.clean()
        print("stopped and removed", cfg.home)
    elif args.command == "env":
        import shlex

        environment = cfg.environment()
        wanted = [*cfg.client_env(), "AIRFLOW_HOME", "PYTHONPATH", "AIRFLOW_CONN_AWS_DEFAULT", "PATH"]
        wanted += sorted(key for key in environment if key.startswith("AIRFLOW__"))
        for key in wanted:
            print(f"export {key}={shlex.quote(environment[key])}")
    else:
        report = stack.status()
        for name, item in report.items():
            state = (
                "stopped"
                if not item["pid"]
                else ("running" if item["answers"] or not item["url"] else "running, not answering")
            )
            where = item["url"] or ""
            print(f"{name:24} {state:26} pid={item['pid'] or '-':<8} {where}")
            if item["orphans"]:
                print(f"{'':24} left behind by a crash: pids {item['orphans']} (`make down` stops them)")
        print(f"state: {cfg.home}   logs: {stack.logs}")
        print(f"as of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
