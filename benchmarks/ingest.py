"""Ingestion benchmark: a burst of 1,000 small files through S3 → SQS → ingest_churn, and one large
batch (1M rows) through the suite.

What is measured
----------------
* **burst**: a fresh stack (free ports, its own folder), ``ingest_churn`` unpaused, its queue
  emptied of the history announcements; then 1,000 CSV files of 40 rows are written at once (16
  writer threads), each producing a bucket notification. Files per minute = 1,000 / (last result
  marker written - first put started). End-to-end latency per file = result marker's
  ``processed_at`` - the S3 event time (object written), p50/p95/max. Validation is memoised per
  (suite, file bytes); the burst uses :data:`DISTINCT_CONTENTS` distinct contents, so the figure is
  the queue + S3 + Airflow path; the cost of one uncached Great Expectations run is reported
  separately (``gx_seconds_per_distinct_file``, from the markers of uncached files).
* **large batch**: a 1M-row churn batch written as CSV by one process; a fresh process reads the
  file → ``read_batch`` → ``validate_dataframe`` with ``expectations/churn.json``: wall seconds of
  each step and peak RSS (``ru_maxrss``), raw and above the high-water mark after imports.

Run with ``python -m benchmarks.run ingest``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("bench.ingest")

BURST_FILES = 1000
ROWS_PER_FILE = 40
DISTINCT_CONTENTS = 20
LARGE_ROWS = 1_000_000
DAY = dt.date(2026, 11, 21)
STACK_ENV = {
    "MODELOPS_INGEST_POLL_SECONDS": "1",
    "MODELOPS_INGEST_CONCURRENCY": "8",
    "MODELOPS_INGEST_MAX_SECONDS": "300",
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_burst() -> dict:
    from modelops import batches, ingest, settings
    from modelops.airflow_api import AirflowClient
    from modelops.local import bootstrap, datagen
    from modelops.local.stack import Stack, StackConfig
    from modelops.store import Store

    home = Path(tempfile.mkdtemp(prefix="modelops-bench-ingest-"))
    stack = Stack(StackConfig.ephemeral(home, extra_env=STACK_ENV))
    try:
        stack.up(load_history=False)
        os.environ.update(stack.config.client_env())
        cfg = stack.config
        airflow = AirflowClient(cfg.airflow_url, cfg.admin_user, cfg.admin_password)
        store, sqs = Store(cfg.bucket), settings.sqs_client()
        url = ingest.queue_url(sqs, "churn")
        sqs.purge_queue(QueueUrl=url)  # the s3:TestEvent of the notification setup
        airflow.wait_for_dag("ingest_churn")
        airflow.unpause("ingest_churn")
        contents = [
            batches.to_csv_bytes(datagen.generate_batch("churn", DAY, ROWS_PER_FILE, seed=s))
            for s in range(DISTINCT_CONTENTS)
        ]
        files = {
            f"raw/churn/dt={DAY.isoformat()}/f-{i:04d}.csv": contents[i % DISTINCT_CONTENTS] for i in range(BURST_FILES)
        }
        started_wall = dt.datetime.now(dt.UTC)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            etags = dict(
                zip(files, pool.map(lambda kv: store.put_bytes(kv[0], kv[1], "text/csv"), files.items()), strict=True)
            )
        put_seconds = time.monotonic() - started
        deadline = time.monotonic() + 1800
        while sum(1 for _ in store.list("ingest/churn/results/")) < BURST_FILES:
            if time.monotonic() > deadline:
                raise TimeoutError("burst not ingested within 30 minutes")
            time.sleep(1)
        with ThreadPoolExecutor(16) as pool:
            markers = list(pool.map(lambda k: store.get_json(ingest.result_key("churn", k, etags[k])), files))
        last = max(dt.datetime.fromisoformat(m["processed_at"]) for m in markers)
        span = (last - started_wall).total_seconds()
        latencies = [m["latency_seconds"] for m in markers if m.get("latency_seconds") is not None]
        uncached = [m["processing_seconds"] for m in markers if not m["validation_reused"]]
        return {
            "files": BURST_FILES,
            "rows_per_file": ROWS_PER_FILE,
            "distinct_contents": DISTINCT_CONTENTS,
            "consumer_concurrency": int(STACK_ENV["MODELOPS_INGEST_CONCURRENCY"]),
            "put_seconds": round(put_seconds, 1),
            "seconds_first_put_to_last_result": round(span, 1),
            "files_per_minute": round(BURST_FILES / span * 60, 1),
            "latency_seconds": {
                "p50": round(statistics.median(latencies), 1),
                "p95": round(_percentile(latencies, 0.95), 1),
                "max": round(max(latencies), 1),
            },
            "gx_seconds_per_distinct_file": round(statistics.median(uncached), 2) if uncached else None,
            "max_receive_count": max(m["receive_count"] for m in markers),
            "dead_letter_queue_depth": ingest.queue_depth(sqs, ingest.queue_url(sqs, "churn", dead_letter=True)),
            "outcomes": {s: sum(1 for m in markers if m["status"] == s) for s in ("validated", "quarantined")},
            "max_receive_count_policy": bootstrap.MAX_RECEIVE_COUNT,
        }
    finally:
        stack.down(save=False)
        shutil.rmtree(home, ignore_errors=True)


def _large_generate(path: Path) -> None:
    from modelops import batches
    from modelops.local import datagen

    path.write_bytes(batches.to_csv_bytes(datagen.generate_batch("churn", DAY, LARGE_ROWS)))


def _large_validate(path: Path) -> dict:
    """Read the CSV file and validate it, as the consumer does; in its own process so peak memory
    is this step's alone (imports and the GX context are counted in the baseline)."""
    from modelops import batches
    from modelops.config import get_model
    from modelops.data import validation

    model = get_model("churn")
    context = validation.make_context()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    data = path.read_bytes()
    frame = batches.read_batch(data, "csv", path.name)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    outcome = validation.validate_dataframe(frame, model.suite_path, data_name=path.name, context=context)
    validate_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": LARGE_ROWS,
        "csv_mb": round(len(data) / 1e6, 1),
        "read_seconds": round(read_seconds, 1),
        "validate_seconds": round(validate_seconds, 1),
        "read_and_validate_seconds": round(read_seconds + validate_seconds, 1),
        "success": outcome.success,
        "expectations": outcome.statistics.get("evaluated_expectations"),
        "peak_rss_mb": round(peak),
        "peak_rss_above_imports_mb": round(peak - baseline),
    }


def bench_large_batch() -> dict:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    with tempfile.TemporaryDirectory(prefix="modelops-bench-large-") as folder:
        path = Path(folder) / "churn-1m.csv"
        for step in ("generate", "validate"):
            result = subprocess.run(
                [sys.executable, "-m", "benchmarks.ingest", f"large-{step}", str(path)],
                capture_output=True,
                text=True,
                env=env,
                timeout=1800,
            )
            if result.returncode != 0:
                raise RuntimeError(f"large-batch {step} step failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_ingest() -> dict:
    return {"large_batch": bench_large_batch(), "burst": bench_burst()}


if __name__ == "__main__":
    if sys.argv[1:2] == ["large-generate"]:
        _large_generate(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["large-validate"]:
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(_large_validate(Path(sys.argv[2]))))
    else:
        print(json.dumps(bench_ingest(), indent=2))
