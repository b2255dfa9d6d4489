"""Monitoring a day of 1M and 5M captured rows: wall time, CPU and peak memory, as the day grows.

The day is written as serving writes it (``modelops.serving.capture_schema``): capture files of
``FILE_ROWS`` rows (serving's ``flush_records`` default) under ``capture/<model>/dt=<day>/``,
with feedback labels for ``LABEL_SHARE`` of the records under ``feedback/<model>/dt=<day>/``
and, unless ``MODELOPS_BENCH_MONITOR_SHADOW=0``, a shadow version scoring every record under
``shadow/<model>/dt=<day>/`` (issue 16: the report's champion-vs-shadow section, streamed).
Features are the drift benchmark's (12 numeric + 8 categorical, with its planted drifts). A
child process per size runs :func:`modelops.monitoring.day_report.monitor_day` (collect the
day, drift per feature, data quality on the bounded sample, realised performance, the report)
on a store that reads the files from a local directory: S3 transfer is left out, the work that
grows with the day is not. Great Expectations is imported before the measurement starts (a fixed
cost of several seconds, reported apart).

Run by :mod:`benchmarks.drift`; the child is ``python -m benchmarks.drift monitor ...``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("bench.drift")

MODEL = "drift_bench"
DAY = dt.date(2026, 11, 24)
FILE_ROWS = 5_000
LABEL_SHARE = 0.5
SIZES = (1_000_000, 5_000_000)
VERSION = "3"
SHADOW_VERSION = "4"
#: Share of records the shadow labels differently from the champion.
SHADOW_DISAGREEMENT = 0.1
WITH_SHADOW = os.environ.get("MODELOPS_BENCH_MONITOR_SHADOW", "1") != "0"
MONITOR_TIMEOUT_S = 900


class DirectoryStore:
    """The two reads monitoring makes of a bucket (list, get), on a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def list(self, prefix: str) -> Iterator:
        from modelops.store import ObjectInfo

        base = self.root / prefix
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                yield ObjectInfo(key, "", path.stat().st_size)

    def get_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


def _capture_table(config, schema, index: int, day: dt.date):
    """One capture file: the drift benchmark's current rows, plus what serving adds to each row."""
    import numpy as np
    import pyarrow as pa

    from benchmarks.drift import _chunk_table

    features = _chunk_table("current", index, FILE_ROWS)
    rng = np.random.default_rng([7, index])
    n = FILE_ROWS
    p1 = rng.random(n)
    seconds = np.datetime64(day.isoformat(), "us") + np.sort(rng.integers(0, 86_400, n)).astype("timedelta64[s]")
    offsets = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    columns = {
        "request_id": pa.array([f"req-{index:05d}-{i // 10:04d}" for i in range(n)], pa.string()),
        "record_index": pa.array(np.arange(n) % 10, pa.int32()),
        "captured_at": pa.array(seconds, pa.timestamp("us", tz="UTC")),
        "model": pa.array([MODEL] * n, pa.string()),
        "model_version": pa.array([VERSION] * n, pa.string()),
        **{name: features.column(name) for name in config.feature_names},
        "prediction": pa.array(np.where(p1 >= 0.5, "1", "0"), pa.string()),
        "probabilities": pa.ListArray.from_arrays(offsets, pa.array(np.stack([1 - p1, p1], axis=1).ravel())),
        "classes": pa.ListArray.from_arrays(offsets, pa.array(np.tile(["0", "1"], n), pa.string())),
    }
    return pa.table(columns).cast(schema)


def _feedback_table(capture, schema, index: int, day: dt.date):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([8, index])
    chosen = np.flatnonzero(rng.random(capture.num_rows) < LABEL_SHARE)
    received = dt.datetime.combine(day, dt.time(23, 0), tzinfo=dt.UTC)
    columns = {
        "request_id": capture.column("request_id").take(chosen),
        "record_index": pa.array(chosen % 10, pa.int64()),
        "label": pa.array(np.where(rng.random(chosen.size) < 0.5, "1", "0"), pa.string()),
        "received_at": pa.array([received] * chosen.size, pa.timestamp("us", tz="UTC")),
        "model": pa.array([MODEL] * chosen.size, pa.string()),
    }
    return pa.table(columns, schema=schema)


def _shadow_table(capture, index: int):
    """The shadow's rows of one capture file: the same records and keys, its own version, and a
    different class on ``SHADOW_DISAGREEMENT`` of them (probabilities flipped with it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([9, index])
    flip = rng.random(capture.num_rows) < SHADOW_DISAGREEMENT
    champion = capture.column("prediction").to_numpy(zero_copy_only=False)
    prediction = np.where(flip, np.where(champion == "1", "0", "1"), champion)
    p1 = np.asarray(pc.list_element(capture.column("probabilities"), 1).to_numpy(zero_copy_only=False), float)
    p1 = np.where(flip, 1 - p1, p1)
    offsets = pa.array(np.arange(0, 2 * capture.num_rows + 1, 2, dtype=np.int32))
    probabilities = pa.ListArray.from_arrays(offsets, pa.array(np.stack([1 - p1, p1], axis=1).ravel()))
    table = capture.set_column(capture.schema.get_field_index("model_version"), "model_version",
                               pa.array([SHADOW_VERSION] * capture.num_rows, pa.string()))  # fmt: skip
    table = table.set_column(
        table.schema.get_field_index("prediction"), "prediction", pa.array(prediction, pa.string())
    )
    index_p = table.schema.get_field_index("probabilities")
    return table.set_column(index_p, "probabilities", probabilities.cast(table.schema.field(index_p).type))


def write_days(root: Path, sizes: tuple[int, ...] = SIZES) -> dict[int, dt.date]:
    """One day per size (the smaller days are the first files of the largest, hard-linked)."""
    import pyarrow.parquet as pq

    from benchmarks.drift import model_config
    from modelops.layout import SHADOW
    from modelops.layout import partition as partition_of
    from modelops.monitoring.capture_format import capture_partition, feedback_partition
    from modelops.serving.capture_schema import capture_schema, feedback_schema

    config = model_config()
    capture, feedback = capture_schema(config), feedback_schema(config)
    days = {rows: DAY + dt.timedelta(days=2 * i) for i, rows in enumerate(sorted(sizes))}
    largest = max(sizes)
    big_day = days[largest]
    for index in range(largest // FILE_ROWS):
        name = f"part-{index:05d}.parquet"
        table = _capture_table(config, capture, index, big_day)
        files = [(capture_partition, table), (feedback_partition, _feedback_table(table, feedback, index, big_day))]
        if WITH_SHADOW:
            files.append((lambda model, day: partition_of(SHADOW, model, day), _shadow_table(table, index)))
        for partition, data in files:
            written = root / partition(MODEL, big_day) / name
            written.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data, written)
            for rows, day in days.items():
                if day != big_day and index * FILE_ROWS < rows:
                    link = root / partition(MODEL, day) / name
                    link.parent.mkdir(parents=True, exist_ok=True)
                    os.link(written, link)
    return days


def monitor_child(root: str, baseline_path: str, day: str, out_path: str) -> None:
    """Monitor one day from ``root`` (a DirectoryStore) and write timings and peak memory."""
    import gc

    import great_expectations  # noqa: F401 - a fixed import cost, kept out of the measurement

    from benchmarks.drift import _cpu_s, _maxrss_mb, model_config
    from modelops.data.validation import make_context
    from modelops.monitoring.day_report import monitor_day

    baseline = json.loads(Path(baseline_path).read_text())
    context = make_context()
    gc.collect()
    rss_before, cpu_before = _maxrss_mb(), _cpu_s()
    started = time.perf_counter()
    report, data = monitor_day(DirectoryStore(Path(root)), model_config(), day, {VERSION: baseline}, gx_context=context)
    seconds = time.perf_counter() - started
    result = {
        "rows": data.rows,
        "files": len(data.files),
        "labels_joined": int(sum(len(v.labelled) for v in data.versions.values())),
        "status": report["status"],
        "drifted_features": (report.get("verdict") or {}).get("drifted_features"),
        "shadow": {k: (report.get("shadow") or {}).get(k) for k in ("rows_compared", "agreement_rate", "status")},
        "seconds": seconds,
        "cpu_seconds": _cpu_s() - cpu_before,
        "peak_rss_mb": _maxrss_mb(),
        "rss_before_data_mb": rss_before,
        "peak_rss_delta_mb": _maxrss_mb() - rss_before,
    }
    Path(out_path).write_text(json.dumps(result))


def _memory_guard(done: dict[int, dict], rows: int) -> str | None:
    """Why not to run ``rows`` now: its peak, extrapolated linearly from the largest size done,
    above half the memory available (the machine is shared: the kernel's OOM killer would pick a
    neighbour's process as readily as this one). None when it may run."""
    from benchmarks.drift import _mem_available_mb

    measured = [(r, run) for r, run in done.items() if "error" not in run]
    available = _mem_available_mb()
    if not measured or available is None:
        return None
    size, run = max(measured)
    predicted = run["rss_before_data_mb"] + run["peak_rss_delta_mb"] * rows / size
    if predicted > available / 2:
        return f"skipped: predicted peak {predicted:.0f} MB (linear from {size} rows) exceeds half of {available:.0f} MB available"
    return None


def bench_monitoring(work: Path, baseline_path: Path, run_child) -> dict:
    """Write the days, monitor each in a fresh process, and say how time and memory grow."""
    from benchmarks.drift import _size_label

    root = work / "store"
    started = time.perf_counter()
    days = write_days(root)
    written = time.perf_counter() - started
    runs: dict[int, dict] = {}
    for rows, day in sorted(days.items()):
        skip = _memory_guard(runs, rows)
        if skip:
            runs[rows] = {"error": skip}
            continue
        out = work / f"monitor_{rows}.json"
        argv = ["monitor", str(root), str(baseline_path), day.isoformat(), str(out)]
        runs[rows] = run_child(argv, out, MONITOR_TIMEOUT_S)
        log.warning("drift bench: monitoring %d rows done", rows)
    summary = {}
    for rows, run in runs.items():
        label = _size_label(rows)
        if "error" in run:
            summary[label] = run
            continue
        summary[label] = {
            key: (round(run[key], 2) if isinstance(run[key], float) else run[key])
            for key in (
                "rows",
                "files",
                "labels_joined",
                "status",
                "seconds",
                "cpu_seconds",
                "peak_rss_mb",
                "peak_rss_delta_mb",
                "drifted_features",
                "shadow",
            )
        }
        summary[label]["rows_per_second"] = round(run["rows"] / run["seconds"])
    growth = None
    small, large = runs.get(min(days)), runs.get(max(days))
    if small and large and "error" not in small and "error" not in large:
        factor = large["rows"] / small["rows"]
        growth = {
            "rows_factor": round(factor, 1),
            "seconds_factor": round(large["seconds"] / small["seconds"], 2),
            "cpu_seconds_factor": round(large["cpu_seconds"] / small["cpu_seconds"], 2),
            "peak_rss_delta_factor": round(large["peak_rss_delta_mb"] / max(small["peak_rss_delta_mb"], 1.0), 2),
        }
    return {
        "setup": f"{FILE_ROWS}-row capture files (serving's flush_records), labels for {LABEL_SHARE:.0%} of records, "
        "12 numeric + 8 categorical features, one served version"
        + (f", a shadow version on every record ({SHADOW_DISAGREEMENT:.0%} disagreeing)" if WITH_SHADOW else "")
        + "; monitor_day on a local-directory store "
        "(no S3 transfer), Great Expectations imported before the measurement",
        "write_seconds": round(written, 1),
        "sizes": summary,
        "growth_small_to_large": growth,
    }


def main() -> None:
    """``python -m benchmarks.monitoring_growth``: this half alone (the drift benchmark runs it too)."""
    import shutil
    import sys
    import tempfile

    import pyarrow.parquet as pq

    from benchmarks.drift import REFERENCE_ROWS, _run_monitor, _write_parquet, model_config
    from modelops.data.baseline import profile_baseline

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="modelops-bench-monitoring-"))
    try:
        reference_path = work / "reference.parquet"
        _write_parquet(reference_path, "reference", REFERENCE_ROWS)
        baseline = profile_baseline(pq.read_table(reference_path).to_pandas(), model_config())
        baseline_path = work / "baseline.json"
        baseline_path.write_text(json.dumps(baseline))
        print(json.dumps(bench_monitoring(work, baseline_path, _run_monitor), indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
