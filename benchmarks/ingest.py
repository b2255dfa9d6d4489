"""Ingestion benchmark: a burst of 1,000 distinct small files through S3 → SQS → ingest_churn, the
fixed cost of one small-file validation (cold and warm, with and without GX set-up reuse), and one
large batch (1M rows) through the suite.

What is measured
----------------
* **burst**: a fresh stack (free ports, its own folder), ``ingest_churn`` unpaused, its queue
  emptied of the history announcements; then 1,000 *distinct* valid CSV files of 2,000 rows
  (the example data generator, one seed and day per file, so no two files share bytes and the
  per-(suite, bytes) memo never answers) are written at once (16 writer threads), each producing
  a bucket notification. Files per minute = 1,000 / (last result marker written - first put
  started). Latency per file = marker's ``processed_at`` - S3 event time, p50/p95/max. Lost =
  files without a marker when the wait ends; dead letters = depth of the DLQ. The cost split
  per file comes from each marker's ``step_seconds`` (S3 get, parse, GX validation in the worker
  process, the thread's wait for it, S3 copy, report writes) and queueing (received - written);
  marker put and SQS receive/delete from the consume runs' summaries (XCom), per file.
  The load average is sampled every few seconds while the burst runs.
* **fixed cost**: one 2,000-row file validated in a fresh process, cold (first validation after
  the GX import) and warm (median of the next ten distinct files), wall and CPU seconds, for
  today's reused set-up (:func:`modelops.data.validation.prepared_suite`) and for the per-call
  set-up it replaced (suite, data source, asset and batch definition built for every file, one
  shared context), each in its own process, side by side.
* **large batch**: a 1M-row churn batch written as CSV by one process; a fresh process reads the
  file → ``read_batch`` → ``validate_dataframe`` with ``expectations/churn.json``: wall seconds of
  each step and peak RSS (``ru_maxrss``), raw and above the high-water mark after imports.

Run with ``python -m benchmarks.run ingest``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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

#: Files in the burst; ``MODELOPS_BENCH_INGEST_FILES`` shortens it on a crowded machine (say so beside the figure).
BURST_FILES = int(os.environ.get("MODELOPS_BENCH_INGEST_FILES", "1000"))
ROWS_PER_FILE = 2000
#: Rows of the large single batches validated (``MODELOPS_BENCH_INGEST_LARGE_ROWS``, comma-separated).
LARGE_ROWS = tuple(int(n) for n in os.environ.get("MODELOPS_BENCH_INGEST_LARGE_ROWS", "1000000,5000000").split(","))
FIXED_COST_FILES = 11
DAY = dt.date(2026, 11, 21)
STACK_ENV = {
    "MODELOPS_INGEST_POLL_SECONDS": "1",
    "MODELOPS_INGEST_CONCURRENCY": "8",
    "MODELOPS_INGEST_VALIDATION_PROCESSES": "2",
    "MODELOPS_INGEST_MAX_SECONDS": "600",
}
#: The wait for the burst ends (and counts what is missing as lost) after this long without a new result.
STALL_SECONDS = 300
#: Steps a marker times (seconds per file), in the order a file goes through them.
MARKER_STEPS = ("s3_get", "parse", "validate", "validate_wait", "s3_place", "report")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _spread(values: list[float], digits: int = 3) -> dict:
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), digits),
        "p95": round(_percentile(values, 0.95), digits),
        "max": round(max(values), digits),
    }


def _distinct_files() -> dict[str, bytes]:
    """1,000 valid files, one (day, seed) each: every file's bytes differ."""
    from modelops import batches
    from modelops.local import datagen

    files = {}
    for i in range(BURST_FILES):
        day = DAY - dt.timedelta(days=i % 50)
        frame = datagen.generate_batch("churn", day, ROWS_PER_FILE, seed=10_000 + i)
        files[f"raw/churn/dt={day.isoformat()}/f-{i:04d}.csv"] = batches.to_csv_bytes(frame)
    if len({hashlib.sha256(data).digest() for data in files.values()}) != len(files):
        raise RuntimeError("the burst's files are not all distinct")
    return files


def _consume_summaries(airflow) -> list[dict]:
    summaries = []
    for run in airflow.runs("ingest_churn"):
        try:
            value = airflow.xcom("ingest_churn", run["dag_run_id"], "consume")
        except Exception:  # a run without a finished consume (the last one waits, deferred)
            continue
        if isinstance(value, dict) and "counts" in value:
            summaries.append(value)
    return summaries


def _handled(summary: dict) -> int:
    return sum(summary["counts"].get(status, 0) for status in ("validated", "quarantined"))


def _cost_split(markers: list[dict], summaries: list[dict]) -> dict:
    """Seconds per file for each step: medians (and p95) from the markers, totals / files from
    the consume summaries for what a marker cannot time (its own put, SQS calls)."""
    split: dict = {}
    for step in MARKER_STEPS:
        split[step] = _spread([m["step_seconds"][step] for m in markers if step in m.get("step_seconds", {})])
    queueing = [
        (dt.datetime.fromisoformat(m["received_at"]) - dt.datetime.fromisoformat(m["event_time"])).total_seconds()
        for m in markers
        if m.get("received_at") and m.get("event_time")
    ]
    split["queueing"] = _spread(queueing, 1)
    files = max(1, len(markers))
    totals: dict[str, float] = {}
    for summary in summaries:
        for step, seconds in (summary.get("step_seconds") or {}).items():
            totals[step] = totals.get(step, 0.0) + seconds
    for step in ("marker", "sqs_receive", "sqs_delete"):
        split[f"{step}_mean"] = round(totals.get(step, 0.0) / files, 4)
    split["processing_in_thread"] = _spread([m["processing_seconds"] for m in markers])
    return split


def bench_burst() -> dict:
    from modelops import ingest, settings
    from modelops.airflow_api import AirflowClient
    from modelops.local import bootstrap
    from modelops.local.stack import Stack, StackConfig
    from modelops.store import Store

    files = _distinct_files()
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
        load_before = os.getloadavg()
        started_wall = dt.datetime.now(dt.UTC)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            etags = dict(
                zip(files, pool.map(lambda kv: store.put_bytes(kv[0], kv[1], "text/csv"), files.items()), strict=True)
            )
        put_seconds = time.monotonic() - started
        deadline = time.monotonic() + 1800
        loads, done, progressed = [], 0, time.monotonic()
        while done < BURST_FILES and time.monotonic() < deadline and time.monotonic() - progressed < STALL_SECONDS:
            loads.append(os.getloadavg()[0])
            time.sleep(5)
            count = sum(1 for _ in store.list("ingest/churn/results/"))
            done, progressed = count, (time.monotonic() if count > done else progressed)
        with ThreadPoolExecutor(16) as pool:
            found = list(
                pool.map(
                    lambda k: store.get_json(m) if store.exists(m := ingest.result_key("churn", k, etags[k])) else None,
                    files,
                )
            )
        markers = [m for m in found if m is not None]
        last = max(dt.datetime.fromisoformat(m["processed_at"]) for m in markers)
        span = (last - started_wall).total_seconds()
        latencies = [m["latency_seconds"] for m in markers if m.get("latency_seconds") is not None]
        # The consume run that wrote the last markers returns its summary once the queue is empty.
        summaries, wait_until = _consume_summaries(airflow), time.monotonic() + 180
        while sum(_handled(s) for s in summaries) < len(markers) and time.monotonic() < wait_until:
            time.sleep(5)
            summaries = _consume_summaries(airflow)
        dlq = ingest.queue_depth(sqs, ingest.queue_url(sqs, "churn", dead_letter=True))
        return {
            "files": BURST_FILES,
            "rows_per_file": ROWS_PER_FILE,
            "distinct_contents": len(files),
            "consumer_concurrency": int(STACK_ENV["MODELOPS_INGEST_CONCURRENCY"]),
            "validation_processes": int(STACK_ENV["MODELOPS_INGEST_VALIDATION_PROCESSES"]),
            "put_seconds": round(put_seconds, 1),
            "seconds_first_put_to_last_result": round(span, 1),
            "files_per_minute": round(len(markers) / span * 60, 1),
            "latency_seconds": _spread(latencies, 1),
            "lost": BURST_FILES - len(markers),
            "dead_letter_queue_depth": dlq,
            "receive_count_per_message": {
                str(n): sum(1 for m in markers if m["receive_count"] == n)
                for n in sorted({m["receive_count"] for m in markers})
            },
            "receives_per_file": round(sum(s["counts"].get("received", 0) for s in summaries) / len(markers), 3),
            "validations": {
                "run": sum(1 for m in markers if not m["validation_reused"]),
                "reused": sum(1 for m in markers if m["validation_reused"]),
            },
            "outcomes": {s: sum(1 for m in markers if m["status"] == s) for s in ("validated", "quarantined")},
            "consume_runs": len(summaries),
            "cost_split_seconds_per_file": _cost_split(markers, summaries),
            "load_average": {
                "before": [round(x, 2) for x in load_before],
                "during_1min": _spread(loads, 2) if loads else {},
                "after": [round(x, 2) for x in os.getloadavg()],
            },
            "max_receive_count_policy": bootstrap.MAX_RECEIVE_COUNT,
        }
    finally:
        stack.down(save=False)
        shutil.rmtree(home, ignore_errors=True)


def _fixed_cost(mode: str) -> dict:
    """One small-file validation in this (fresh) process: cold (the first, after the import) and warm.

    ``reused``: the consumer's path (:func:`validate_dataframe` reusing :func:`prepared_suite`).
    ``per_call``: the set-up before issue 15 (one shared context; suite, data source, asset and
    batch definition built for each file), via ``validate_dataframe(..., context=shared)``.
    """
    from modelops import batches
    from modelops.config import get_model
    from modelops.local import datagen

    started = time.perf_counter()
    import great_expectations  # noqa: F401

    from modelops.data import validation

    import_seconds = time.perf_counter() - started
    suite_path = get_model("churn").suite_path
    frames = [
        batches.read_batch(
            batches.to_csv_bytes(datagen.generate_batch("churn", DAY - dt.timedelta(days=i), ROWS_PER_FILE, seed=i)),
            "csv",
            f"f{i}.csv",
        )
        for i in range(FIXED_COST_FILES)
    ]
    context = None
    walls, cpus = [], []
    for i, frame in enumerate(frames):
        wall, cpu = time.perf_counter(), time.process_time()
        if mode == "per_call":
            context = context or validation.make_context()
            outcome = validation.validate_dataframe(frame, suite_path, data_name=f"f{i}.csv", context=context)
        else:
            outcome = validation.validate_dataframe(frame, suite_path, data_name=f"f{i}.csv")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if not outcome.success:
            raise RuntimeError(validation.summarize_failures(outcome))
    return {
        "mode": mode,
        "rows": ROWS_PER_FILE,
        "import_seconds": round(import_seconds, 2),
        "cold_seconds": round(walls[0], 3),
        "cold_cpu_seconds": round(cpus[0], 3),
        "warm_seconds_median": round(statistics.median(walls[1:]), 3),
        "warm_cpu_seconds_median": round(statistics.median(cpus[1:]), 3),
        "warm_seconds_min": round(min(walls[1:]), 3),
        "warm_files": len(walls) - 1,
    }


def _in_fresh_process(*args: str, timeout: float = 1800) -> dict:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} step failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}


def bench_fixed_cost() -> dict:
    """Both set-ups, each in its own fresh process, one after the other, with the load average."""
    load = [round(x, 2) for x in os.getloadavg()]
    per_call, reused = _in_fresh_process("fixed-cost", "per_call"), _in_fresh_process("fixed-cost", "reused")
    return {
        "per_call_setup": per_call,
        "reused_setup": reused,
        "warm_ratio_per_call_to_reused": round(per_call["warm_seconds_median"] / reused["warm_seconds_median"], 2),
        "warm_cpu_ratio_per_call_to_reused": round(
            per_call["warm_cpu_seconds_median"] / reused["warm_cpu_seconds_median"], 2
        ),
        "load_average_before": load,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _large_generate(path: Path, rows: int) -> None:
    from modelops import batches
    from modelops.local import datagen

    path.write_bytes(batches.to_csv_bytes(datagen.generate_batch("churn", DAY, rows)))


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
        "rows": len(frame),
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
    """One large CSV per size, read and validated in a fresh process; how time and memory grow."""
    sizes = {}
    for rows in LARGE_ROWS:
        with tempfile.TemporaryDirectory(prefix="modelops-bench-large-") as folder:
            path = Path(folder) / f"churn-{rows}.csv"
            try:
                _in_fresh_process("large-generate", str(path), str(rows))
                sizes[rows] = _in_fresh_process("large-validate", str(path))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:  # e.g. killed: say so, measure the rest
                sizes[rows] = {"error": str(exc)[-500:]}
    result: dict = {"sizes": sizes}
    small, large = min(sizes), max(sizes)
    if large > small and all("error" not in sizes[n] for n in (small, large)):
        a, b = sizes[small], sizes[large]
        result["growth_small_to_large"] = {
            "rows_factor": round(large / small, 1),
            "validate_seconds_factor": round(b["validate_seconds"] / a["validate_seconds"], 2),
            "peak_rss_above_imports_factor": round(b["peak_rss_above_imports_mb"] / a["peak_rss_above_imports_mb"], 2),
        }
    return result


def bench_ingest() -> dict:
    parts = os.environ.get("MODELOPS_BENCH_INGEST_PARTS", "fixed_cost,large_batch,burst").split(",")
    runs = {"fixed_cost": bench_fixed_cost, "large_batch": bench_large_batch, "burst": bench_burst}
    results = {}
    for part in parts:
        results[part] = runs[part]()
        print(json.dumps({part: results[part]}), file=sys.stderr, flush=True)  # kept if a later part fails
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["large-generate"]:
        _large_generate(Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["large-validate"]:
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(_large_validate(Path(sys.argv[2]))))
    elif sys.argv[1:2] == ["fixed-cost"]:
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(_fixed_cost(sys.argv[2])))
    else:
        print(json.dumps(bench_ingest(), indent=2))
