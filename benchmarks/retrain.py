"""``python -m benchmarks.run retrain``: retrain_churn through Airflow beside the same chain in
one process, on the same data, with the critical path of the Airflow run task by task.

The run is dated (``AS_OF``) so its window always holds the same 30 generated days, and churn's
retrain schedule is switched off in a copy of the declarations the stack reads: unpausing the
DAG then creates no scheduled run for the benchmark's run to queue behind (on a Sunday the
``@weekly`` tick used to add a whole second run to the figure).

Per task instance the table gives when it was queued, started and ended, how long it waited
after its last upstream ended (scheduling latency: scheduler loop, executor hand-off, queue), how
long its worker took to parse the DAG file, and its run time (start-up in the task process
included); the critical path is the chain of tasks, from the last one back, each of whose last
upstream to end held it up.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

DAG_ID = "retrain_churn"
#: Run once before the measured run, so the scheduler and its executor are warm (see _airflow_run).
WARM_UP_DAG = "smoke_churn"
#: The run's as-of instant: the day after the generated history's last day (benchmarks.run loads
#: history up to 2026-11-20), so the 30-day window holds 30 complete days.
AS_OF = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def _at(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return round((end - start).total_seconds(), 2) if start and end else None


@contextmanager
def models_without_retrain_schedule():
    """A copy of the model declarations where churn retrains only when asked (no cron tick)."""
    from modelops.config import models_dir

    folder = Path(tempfile.mkdtemp(prefix="modelops-bench-models-"))
    try:
        models = folder / "models"
        shutil.copytree(models_dir(), models)
        path = models / "churn.yaml"
        declaration = yaml.safe_load(path.read_text())
        declaration["schedule"]["retrain"] = None
        path.write_text(yaml.safe_dump(declaration, sort_keys=False))
        yield models
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _name(ti: dict) -> str:
    return ti["task_id"] if ti.get("map_index", -1) == -1 else f"{ti['task_id']}[{ti['map_index']}]"


def _parse_done(airflow, run_id: str, ti: dict) -> dt.datetime | None:
    """When the task's worker finished parsing the DAG file (the end of its "Pre Execute" group)."""
    from urllib.parse import quote

    path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
    body = airflow.request("GET", path, params={"map_index": ti.get("map_index", -1), "full_content": "true"})
    in_pre_execute = False
    for entry in body.get("content", []):
        event = entry.get("event") if isinstance(entry, dict) else None
        if event == "::group::Pre Execute":
            in_pre_execute = True
        elif in_pre_execute and event == "::endgroup::":
            return _at(entry.get("timestamp"))
    return None


def task_table(airflow, run: dict) -> list[dict]:
    """One row per task instance that ran, in start order, with the critical path marked."""
    run_id = run["dag_run_id"]
    tasks = airflow.request("GET", f"/dags/{DAG_ID}/tasks")["tasks"]
    upstream: dict[str, set[str]] = {t["task_id"]: set() for t in tasks}
    for t in tasks:
        for down in t.get("downstream_task_ids") or []:
            upstream[down].add(t["task_id"])
    tis = [ti for ti in airflow.task_instances(DAG_ID, run_id) if ti.get("start_date")]
    by_task: dict[str, list[dict]] = {}
    for ti in tis:
        by_task.setdefault(ti["task_id"], []).append(ti)
    run_start = _at(run.get("start_date"))
    rows = {}
    for ti in tis:
        ends = [(_at(u["end_date"]), _name(u)) for up in upstream[ti["task_id"]] for u in by_task.get(up, [])]
        ends = [e for e in ends if e[0] is not None]
        ready, after = max(ends) if ends else (run_start, None)
        start, end = _at(ti["start_date"]), _at(ti["end_date"])
        parsed = _parse_done(airflow, run_id, ti)
        rows[_name(ti)] = {
            "task": _name(ti),
            "state": ti["state"],
            "queued": ti.get("queued_when"),
            "start": ti["start_date"],
            "end": ti["end_date"],
            "waited_s": _seconds(ready, start),
            "queued_to_start_s": _seconds(_at(ti.get("queued_when")), start),
            "parse_s": _seconds(start, parsed),
            "run_s": _seconds(start, end),
            "after": after,
            "critical": False,
        }
    last = max(rows.values(), key=lambda row: row["end"] or "")
    while last is not None:  # walk back along the upstream that ended last
        last["critical"] = True
        last = rows.get(last["after"]) if last["after"] else None
    return sorted(rows.values(), key=lambda row: row["start"])


def _plain_chain(model, as_of: dt.datetime) -> tuple[float, dict[str, float]]:
    """The same steps in this process, deploy included (the DAG's last task)."""
    from modelops.training import steps
    from modelops.training.chain import run_chain

    started = time.perf_counter()
    plain = run_chain(model, as_of, "bench_plain_python")
    order = {name: index for index, name in enumerate(model.training.candidates)}
    timings = {}
    for name, seconds in plain["timings"].items():  # named like the Airflow run's map indexes
        candidate = name.removeprefix("train_candidates[").removesuffix("]")
        timings[f"train_candidates[{order[candidate]}]" if candidate in order else name] = seconds
    if plain.get("promotion"):
        before = time.perf_counter()
        steps.deploy(model, plain["promotion"], actor="plain_python", run_id="bench_plain_python")
        timings["deploy"] = time.perf_counter() - before
    return time.perf_counter() - started, timings


def _airflow_run(stack) -> tuple[float, dict, list[dict]]:
    from modelops.airflow_api import AirflowClient

    cfg = stack.config
    airflow = AirflowClient(cfg.airflow_url, cfg.admin_user, cfg.admin_password)
    # A scheduler runs for days: measure it warm. One small run first starts the executor's
    # workers (with forkserver, the preloaded libraries are imported then, once).
    warm_up = airflow.run_and_wait(WARM_UP_DAG, timeout=600)
    if warm_up["state"] != "success":
        raise RuntimeError(airflow.failure_logs(WARM_UP_DAG, warm_up["dag_run_id"]))
    airflow.wait_for_dag(DAG_ID)
    airflow.unpause(DAG_ID)
    started = time.perf_counter()
    run = airflow.trigger(DAG_ID, logical_date=AS_OF.isoformat())
    finished = airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=1800, interval=0.25)
    seconds = time.perf_counter() - started
    if finished["state"] != "success":
        raise RuntimeError(airflow.failure_logs(DAG_ID, run["dag_run_id"]))
    others = [r["dag_run_id"] for r in airflow.runs(DAG_ID) if r["dag_run_id"] != run["dag_run_id"]]
    if others:
        raise RuntimeError(f"other {DAG_ID} runs shared the stack with the measured one: {others}")
    return seconds, finished, task_table(airflow, finished)


def bench_retrain() -> dict:
    """retrain_churn through Airflow vs the same steps in one plain Python process."""
    from benchmarks.run import running_stack
    from modelops.config import get_model

    load = {"before": os.getloadavg()}
    with models_without_retrain_schedule() as models:
        saved = os.environ.get("MODELOPS_MODELS_DIR")
        os.environ["MODELOPS_MODELS_DIR"] = str(models)
        try:
            with running_stack(extra_env={"MODELOPS_MODELS_DIR": str(models)}) as stack:
                model = get_model("churn")
                airflow_seconds, finished, table = _airflow_run(stack)
                load["after_airflow"] = os.getloadavg()
                plain_seconds, plain_steps = _plain_chain(model, AS_OF)
                load["after_plain"] = os.getloadavg()
        finally:
            if saved is None:
                os.environ.pop("MODELOPS_MODELS_DIR", None)
            else:
                os.environ["MODELOPS_MODELS_DIR"] = saved
    critical = [row for row in table if row["critical"]]
    return {
        "model": "churn",
        "as_of": AS_OF.isoformat(),
        "rows_in_window": model.training.window_days * model.data.rows_per_day,
        "airflow_seconds": round(airflow_seconds, 1),
        "airflow_run_seconds": _seconds(_at(finished.get("start_date")), _at(finished.get("end_date"))),
        "plain_python_seconds": round(plain_seconds, 1),
        "orchestration_overhead_ratio": round(airflow_seconds / plain_seconds, 2),
        "critical_path": [row["task"] for row in critical],
        "critical_path_waited_s": round(sum(row["waited_s"] or 0 for row in critical), 1),
        "critical_path_run_s": round(sum(row["run_s"] or 0 for row in critical), 1),
        "tasks": table,
        "plain_step_seconds": {name: round(value, 2) for name, value in plain_steps.items()},
        "load_average": {k: [round(x, 2) for x in v] for k, v in load.items()},
        "note": "Trigger to success (polled every 0.25 s) against the plain chain, deploy included in both. "
        "The Airflow run goes first (no champion); the plain run then also evaluates that champion.",
    }


def format_table(result: dict) -> str:
    """The per-task table as Markdown (what docs/BENCHMARKS.md shows)."""
    lines = [
        "| task | queued | start | end | waited s | queued→start s | parse s | run s | critical | plain s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    plain = result["plain_step_seconds"]
    for row in result["tasks"]:
        clock = [(row[k] or "")[11:22] for k in ("queued", "start", "end")]
        numbers = [row[k] if row[k] is not None else "" for k in ("waited_s", "queued_to_start_s", "parse_s", "run_s")]
        mark = "yes" if row["critical"] else ""
        lines.append(f"| {row['task']} | {' | '.join(clock)} | {' | '.join(map(str, numbers))} | {mark} | "
                     f"{round(plain[row['task']], 2) if row['task'] in plain else ''} |")  # fmt: skip
    return "\n".join(lines)
