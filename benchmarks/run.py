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
from contextlib import contextmanager
from pathlib import Path

from benchmarks.cbpe_accuracy import bench_cbpe
from benchmarks.drift import bench_drift
from benchmarks.growth import bench_growth
from benchmarks.ingest import bench_ingest
from benchmarks.retrain import bench_retrain, format_table
from benchmarks.serving import bench_serving
from benchmarks.serving_shadow import bench_serving_shadow
from benchmarks.ui import bench_ui

RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("bench")


@contextmanager
def running_stack(extra_env: dict[str, str] | None = None):
    """A stack of its own on free ports with the example history; ``extra_env`` reaches every component."""
    from modelops.local import bootstrap
    from modelops.local.stack import Stack, StackConfig

    home = Path(tempfile.mkdtemp(prefix="modelops-bench-"))
    stack = Stack(StackConfig.ephemeral(home, extra_env=dict(extra_env or {})))
    try:
        stack.up(load_history=False)
        os.environ.update(stack.config.client_env())
        bootstrap.load_history(stack.config, today=dt.date(2026, 11, 20))
        yield stack
    finally:
        stack.down(save=False)
        shutil.rmtree(home, ignore_errors=True)


def quiet(stack, keep: tuple[str, ...] = ("aws", "mlflow")) -> list[str]:
    """Stop the stack's components a measurement does not use (Airflow's dag-processor re-parses
    every DAG file on a timer: a second of CPU that lands in a latency round on 2 cores)."""
    from modelops.local.stack_config import COMPONENTS

    stopped = [name for name in COMPONENTS if name not in keep and stack._pid(name)]
    for name in stopped:
        stack._stop(name)
    return stopped


BENCHMARKS = {
    "retrain": bench_retrain,
    "serving": bench_serving,
    "serving_shadow": bench_serving_shadow,
    "drift": bench_drift,
    "ingest": bench_ingest,
    "ui": bench_ui,
    "growth": bench_growth,
    "cbpe": bench_cbpe,
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
        if name == "retrain":
            print(format_table(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
