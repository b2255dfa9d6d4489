"""The whole retrain chain in one process, without Airflow: the benchmark's reference and a
debugging aid. It calls the same step functions the DAG's tasks call, in the DAG's order.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from modelops.config import ModelConfig
from modelops.data import steps as data_steps
from modelops.training import steps

log = logging.getLogger(__name__)


def in_process(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """How :func:`run_chain` calls a step by default: here, in this process."""
    return fn(*args, **kwargs)


def run_chain(
    model: ModelConfig,
    as_of: dt.datetime,
    run_id: str,
    *,
    dag_id: str = "plain_python",
    params: dict | None = None,
    call: Callable[..., Any] = in_process,
) -> dict:
    """Every step in sequence without Airflow; returns the decision, the promotion and timings.

    ``call(name, fn, *args, **kwargs)`` runs each step: a benchmark passes one that runs it in a
    process of its own, as an Airflow task would be, to measure each step's peak memory."""
    params = params or {}
    timings: dict[str, float] = {}

    def timed(name, fn, *args, **kwargs):
        started = time.perf_counter()
        value = call(name, fn, *args, **kwargs)
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
        if steps.shadow_requested(params, model):  # promotion waits for live evidence
            outcome["shadow"] = timed(
                "start_shadow", steps.start_shadow, model, registered, actor=dag_id, run_id=run_id
            )
            return outcome
        outcome["promotion"] = timed("promote", steps.promote, model, run_id, dag_id, registered, decided)
    return outcome
