"""``make bench``: measured figures, printed and saved under benchmarks/results/.

Each benchmark starts its own stack on free ports (like the integration tests), so numbers do
not depend on what a developer's `make up` stack holds. Run one with
``python -m benchmarks.run retrain``; no argument runs them all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.drift import bench_drift
from benchmarks.ingest import bench_ingest
from benchmarks.serving import bench_serving
from benchmarks.ui import bench_ui

RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("bench")


@contextmanager
def running_stack():
    from modelops.local import bootstrap
    from modelops.local.stack import Stack, StackConfig

    home = Path(tempfile.mkdtemp(prefix="modelops-bench-"))
    stack = Stack(StackConfig.ephemeral(home))
    try:
        stack.up(load_history=False)
        os.environ.update(stack.config.client_env())
        bootstrap.load_history(stack.config, today=dt.date(2026, 11, 20))
        yield stack
    finally:
        stack.down(save=False)
        shutil.rmtree(home, ignore_errors=True)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def bench_retrain() -> dict:
    """retrain_churn through Airflow vs the same steps in one plain Python process."""
    from modelops.airflow_api import AirflowClient
    from modelops.config import get_model
    from modelops.training.chain import run_chain

    model = get_model("churn")
    with running_stack() as stack:
        cfg = stack.config
        airflow = AirflowClient(cfg.airflow_url, cfg.admin_user, cfg.admin_password)
        airflow.wait_for_dag("retrain_churn")
        airflow.unpause("retrain_churn")
        started = time.perf_counter()
        run = airflow.trigger("retrain_churn")
        finished = airflow.wait_for_run("retrain_churn", run["dag_run_id"], timeout=1800, interval=0.5)
        airflow_seconds = time.perf_counter() - started
        if finished["state"] != "success":
            raise RuntimeError(airflow.failure_logs("retrain_churn", run["dag_run_id"]))
        tasks = {}
        for ti in airflow.task_instances("retrain_churn", run["dag_run_id"]):
            name = ti["task_id"] if ti.get("map_index", -1) == -1 else f"{ti['task_id']}[{ti['map_index']}]"
            tasks[name] = {"state": ti["state"], "seconds": _seconds(ti.get("start_date"), ti.get("end_date"))}
        as_of = dt.datetime.fromisoformat(finished["run_after"].replace("Z", "+00:00"))
        started = time.perf_counter()
        plain = run_chain(model, as_of, "bench_plain_python")
        plain_seconds = time.perf_counter() - started
    return {
        "model": "churn",
        "rows_in_window": model.training.window_days * model.data.rows_per_day,
        "airflow_seconds": round(airflow_seconds, 1),
        "plain_python_seconds": round(plain_seconds, 1),
        "orchestration_overhead_ratio": round(airflow_seconds / plain_seconds, 2),
        "airflow_task_seconds": {
            k: (round(v["seconds"], 2) if v["seconds"] is not None else None) for k, v in tasks.items()
        },
        "plain_step_seconds": {k: round(v, 2) for k, v in plain["timings"].items()},
        "note": "The Airflow run goes first (no champion); the plain run then also evaluates that champion.",
    }


BENCHMARKS = {
    "retrain": bench_retrain,
    "serving": bench_serving,
    "drift": bench_drift,
    "ingest": bench_ingest,
    "ui": bench_ui,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run, of {sorted(BENCHMARKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")
    logging.basicConfig(level=logging.WARNING)
    RESULTS.mkdir(exist_ok=True)
    for name in args.names or list(BENCHMARKS):
        print(f"== {name} ==", flush=True)
        result = BENCHMARKS[name]()
        result["measured_at"] = dt.datetime.now(dt.UTC).isoformat()
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
