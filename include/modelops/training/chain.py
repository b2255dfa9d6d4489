"""The whole retrain chain in one process, without Airflow: the benchmark's reference and a
debugging aid. It calls the same step functions the DAG's tasks call, in the DAG's order.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from modelops.config import ModelConfig
from modelops.data import steps as data_steps
from modelops.training import steps

log = logging.getLogger(__name__)


def run_chain(
    model: ModelConfig, as_of: dt.datetime, run_id: str, *, dag_id: str = "plain_python", params: dict | None = None
) -> dict:
    """Every step in sequence without Airflow; returns the decision, the promotion and timings."""
    params = params or {}
    timings: dict[str, float] = {}

    def timed(name, fn, *args, **kwargs):
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - started
        return value

    window = params.get("training_window_days", model.training.window_days)
    snapshot = timed("snapshot_training_data", data_steps.snapshot_training_data, model, as_of, window, run_id)
    if snapshot.get("nothing_to_train"):
        return {"nothing_to_train": snapshot["message"], "timings": timings}
    validation = timed("validate_training_data", data_steps.validate_training_data, model, run_id)
    baseline = timed("profile_baseline", data_steps.profile_baseline, model, run_id)
    parent = timed("start_tracking", steps.start_tracking, model, run_id, dag_id, snapshot)
    results = []
    for candidate in params.get("candidates") or model.training.candidates:
        name = f"train_candidates[{candidate}]"
        results.append(timed(name, steps.train_candidates, model, run_id, candidate, parent))
    best = timed("select_best", steps.select_best, model, results)
    evaluated = timed("evaluate", steps.evaluate, model, run_id, best)
    overrides = {k: params[k] for k in ("min_primary", "tolerance", "force_promote") if k in params}
    run = {"run_id": run_id, "dag_id": dag_id, "best": best}
    evidence = {"snapshot": snapshot, "validation": validation, "baseline": baseline}
    decided = timed(
        "gate", steps.gate, model, **run, **evidence, evaluated=evaluated, overrides=overrides,
        dry_run=bool(params.get("dry_run")),
    )  # fmt: skip
    outcome = {"decision": decided, "timings": timings}
    if steps.promotion_allowed(decided):
        registered = timed("register", steps.register, model, **run, **evidence, decided=decided)
        outcome["promotion"] = timed("promote", steps.promote, model, run_id, dag_id, registered, decided)
    return outcome
