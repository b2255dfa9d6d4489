"""Retraining as the data grows: the retrain chain on training windows of 100k, 1M and 5M rows.

``python -m benchmarks.run growth`` (sizes: ``MODELOPS_BENCH_GROWTH_ROWS=100000,1000000,5000000``).
For each size a copy of the churn declaration (``churn_g<size>``, its own landing zone and
registry entry) gets ``data.rows_per_day`` = size / window days of generated data, then
:func:`modelops.training.chain.run_chain` runs every step of ``retrain_<model>`` in a process of
its own, as an Airflow task runs: each step's wall time, CPU time and peak RSS (``wait4``'s
``ru_maxrss`` of that process) are recorded beside the in-memory size of the training frame.

Windows above ``SEARCH_SAMPLE_ROWS`` use the declared large-window options
(``training.search_sample_rows`` and ``training.fit_max_rows`` for the random forest): the
search's cross-validation on a sample, the final fit on the full window but for the forest.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.growth")

DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
#: The declared large-window options the benchmark's model copies carry.
SEARCH_SAMPLE_ROWS = 200_000
FOREST_FIT_MAX_ROWS = 500_000
AS_OF = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
#: Parts of the stack the chain does not call (it needs S3 and MLflow only).
CHAIN_DOES_NOT_USE = (
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-api-server",
    "serving",
)


class StepFailed(RuntimeError):
    pass


def _sizes() -> list[int]:
    text = os.environ.get("MODELOPS_BENCH_GROWTH_ROWS", "")
    return [int(v) for v in text.split(",") if v.strip()] or list(DEFAULT_SIZES)


class ChildSteps:
    """``run_chain``'s ``call``: every step forked into its own process, measured there."""

    def __init__(self) -> None:
        self.measured: dict[str, dict[str, float]] = {}

    def __call__(self, name: str, fn, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run the step, send back its value or its error, never return
            os.close(read_end)
            try:
                payload = pickle.dumps(("ok", fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
                payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as incoming:
            data = incoming.read()
        _, status, usage = os.wait4(pid, 0)
        self.measured[name] = {
            "wall_seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        }
        if not data:
            raise StepFailed(f"step {name}: its process died without an answer (wait status {status})")
        kind, value = pickle.loads(data)
        if kind == "error":
            raise StepFailed(f"step {name} failed:\n{value}")
        return value


def _declare(rows: int, suites: Path):
    """The churn declaration, copied as ``churn_g<rows>`` with a window of ``rows`` rows."""
    from modelops.config import ModelConfig, get_model

    base = get_model("churn")
    name = f"churn_g{rows}"
    raw = base.model_dump(mode="json", exclude_none=True)
    window = base.training.window_days
    raw["name"] = name
    raw["data"] |= {"rows_per_day": -(-rows // window)}
    training = {"max_rows": max(rows, base.training.max_rows)}
    if rows > SEARCH_SAMPLE_ROWS:
        training |= {"search_sample_rows": SEARCH_SAMPLE_ROWS, "fit_max_rows": {"random_forest": FOREST_FIT_MAX_ROWS}}
    raw["training"] |= training
    shutil.copyfile(base.suite_path, suites / f"{name}.json")
    return ModelConfig.model_validate(raw)


def _load_window(model) -> int:
    """Generated days of the window in the model's landing zone (in a child: the parent stays small)."""
    from modelops.local import bootstrap

    days = model.training.window_days + 1
    copy = model.model_copy(update={"data": model.data.model_copy(update={"history_days": days})})
    return bootstrap.load_history(None, today=AS_OF.date() + dt.timedelta(days=1), models={model.name: copy})


def _imports() -> None:
    """What every training task imports before it reads a row: the floor of a task's memory."""
    import great_expectations  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.ensemble  # noqa: F401


def _frame_size(model, run_id: str) -> dict[str, Any]:
    """Rows and in-memory bytes of the training frame the run's snapshot gives."""
    from modelops.data.snapshot import load_manifest, load_snapshot_frame
    from modelops.store import Store

    store = Store()
    frame = load_snapshot_frame(model, load_manifest(model.name, run_id, store), store)
    return {"rows": len(frame), "mb": round(float(frame.memory_usage(deep=True).sum()) / 2**20, 1)}


def _one_size(rows: int, suites: Path) -> dict[str, Any]:
    from modelops.training.chain import run_chain

    model = _declare(rows, suites)
    steps = ChildSteps()
    steps("generate_data", _load_window, model)
    run_id = f"growth_{rows}"
    started = time.perf_counter()
    outcome = run_chain(model, AS_OF, run_id, dag_id=f"retrain_{model.name}", call=steps)
    chain_seconds = time.perf_counter() - started
    frame = steps("measure_frame", _frame_size, model, run_id)
    steps("imports_floor", _imports)
    aside = ("generate_data", "measure_frame", "imports_floor")
    task_steps = {k: v for k, v in steps.measured.items() if k not in aside}
    peak = max(v["peak_rss_mb"] for v in task_steps.values())
    floor = steps.measured["imports_floor"]["peak_rss_mb"]
    decision = outcome.get("decision") or {}
    return {
        "rows": rows,
        "training_frame": frame,
        "chain_seconds": round(chain_seconds, 1),
        "steps": task_steps,
        "peak_rss_mb": peak,
        "imports_floor_mb": floor,
        "peak_over_frame": round(peak / frame["mb"], 2) if frame["mb"] else None,
        "peak_above_imports_over_frame": round((peak - floor) / frame["mb"], 2) if frame["mb"] else None,
        "options": model.training.model_dump(include={"max_rows", "search_sample_rows", "fit_max_rows"}),
        "promote": decision.get("promote"),
        "setup": steps.measured.get("generate_data"),
    }


def _growth(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per step, how time grew against rows between consecutive sizes (1.0 = linear)."""
    out: dict[str, Any] = {}
    for small, large in zip(results, results[1:], strict=False):
        factor = large["rows"] / small["rows"]
        key = f"{small['rows']}->{large['rows']}"
        out[key] = {
            name: round(large["steps"][name]["cpu_seconds"] / max(m["cpu_seconds"], 1e-3) / factor, 2)
            for name, m in small["steps"].items()
            if name in large["steps"]
        } | {"chain_wall": round(large["chain_seconds"] / max(small["chain_seconds"], 1e-3) / factor, 2)}
    return out


def bench_growth() -> dict[str, Any]:
    """The retrain chain on growing windows: time per step, peak memory per step."""
    from benchmarks.run import running_stack

    suites = Path(tempfile.mkdtemp(prefix="modelops-growth-suites-"))
    shutil.copytree(Path(__file__).resolve().parents[1] / "expectations", suites, dirs_exist_ok=True)
    previous = os.environ.get("MODELOPS_EXPECTATIONS_DIR")
    os.environ["MODELOPS_EXPECTATIONS_DIR"] = str(suites)
    results = []
    try:
        with running_stack() as stack, _os_load() as load:
            for part in CHAIN_DOES_NOT_USE:  # their idle loops would only take CPU from the steps
                stack._stop(part)
            for rows in _sizes():
                log.warning("growth: %d rows", rows)
                results.append(_one_size(rows, suites))
                print(f"growth {rows}: {results[-1]}", flush=True)
    finally:
        if previous is None:
            os.environ.pop("MODELOPS_EXPECTATIONS_DIR", None)
        else:
            os.environ["MODELOPS_EXPECTATIONS_DIR"] = previous
        shutil.rmtree(suites, ignore_errors=True)
    return {
        "sizes": results,
        "cpu_growth_per_row_vs_previous_size": _growth(results),
        "load_average": load,
        "note": "Each step in a forked process of its own; peak_rss_mb is that process's ru_maxrss "
        "(the parent's pages at fork included). cpu_growth 1.0 = linear in rows.",
    }


class _os_load:
    """The 1-minute load average at start and end (the machine may be shared)."""

    def __enter__(self) -> dict[str, float]:
        self.load = {"start": os.getloadavg()[0]}
        return self.load

    def __exit__(self, *exc: Any) -> None:
        self.load["end"] = os.getloadavg()[0]
