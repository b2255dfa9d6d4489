"""A consumer-like __main__ for the pool tests: it may not be re-run by a worker (an Airflow task's
__main__ is the `airflow` CLI script, which fails there); it validates one file in a pool, prints
the workers' pids, then waits to be killed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __name__ != "__main__":
    raise SystemExit("a validation worker re-ran the consumer's __main__")

from tests.unit.ingest import pool_fakes  # noqa: E402

from modelops.ingest.validator import PooledSuiteValidator  # noqa: E402

suite = Path(sys.argv[1])
validator = PooledSuiteValidator(suite, "csv", 2, worker=pool_fakes.judge_or_die_once, warm=pool_fakes.no_warm_up)
outcome, _ = validator(b"a,b\n1,2\n", None, "one.csv")
pids = [process.pid for process in validator._pool._processes.values()]
print(json.dumps({"success": outcome.success, "worker_pid": outcome.result_json["worker_pid"], "pids": pids}))
sys.stdout.flush()
time.sleep(600)
