"""The monitor_<model> DAG's task callables, named like its task ids (dags/monitor.py is wiring only).

Each step reads what it needs from the Airflow context it is given, calls the pure modules of
this package and returns a small JSON record for XCom; Airflow itself is never imported here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.monitoring.cooldown import RETRAIN
from modelops.monitoring.day_report import MonitorSummary
from modelops.monitoring.decision import RetrainDecision

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modelops.store import Store

log = logging.getLogger(__name__)


def report_day(context: Mapping[str, Any]) -> dt.date:
    """The day a run judges: its data interval (a daily run at midnight judges the day before);
    a zero-length interval (a manual run of an unscheduled DAG) judges the day before it."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return start.astimezone(dt.UTC).date()
    moment = end if end is not None else context["dag_run"].run_after
    return (moment.astimezone(dt.UTC) - dt.timedelta(days=1)).date()


def run_instant(context: Mapping[str, Any]) -> dt.datetime:
    """The instant the run stands for (its data interval end, else ``run_after``); never ``now()``."""
    end = context.get("data_interval_end")
    return end if end is not None else context["dag_run"].run_after


def decide_and_record(
    config: ModelConfig, day: dt.date, now: dt.datetime, store: Store | None = None
) -> dict[str, Any]:
    """Decide on the day's stored report; record the decision; alert. Idempotent per day."""
    from modelops.monitoring.decision import decide as decide_retrain
    from modelops.monitoring.notify import notify_decision
    from modelops.monitoring.storage import append_decision, load_decision_history, read_report
    from modelops.store import Store

    store = store or Store()
    report = read_report(store, config.name, day)
    history = load_decision_history(store, config.name)
    decision = decide_retrain(report, history, config, now)
    append_decision(store, config.name, decision)
    if decision.get("alerts") and not decision.get("already_requested"):
        notify_decision(decision, config)
    decision["emit_retrain_request"] = decision["action"] == RETRAIN and not decision.get("already_requested")
    return decision


# --- the task callables -------------------------------------------------------------------------


def build_report(model: ModelConfig, context: Mapping[str, Any]) -> dict[str, Any]:
    """Report the run's day of live traffic against the training baseline (JSON + HTML in S3)."""
    from modelops.monitoring.day_report import report_and_store

    return report_and_store(model, report_day(context), run_instant(context)).to_json()


def decide(model: ModelConfig, summary: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Decide whether the day asks for a retrain (cooldown and budget honoured) and record it."""
    day = dt.date.fromisoformat(MonitorSummary.from_json(summary).day)
    return RetrainDecision.from_json(decide_and_record(model, day, run_instant(context))).to_json()


def retrain_requested(decision: Mapping[str, Any]) -> bool:
    """Go on to request_retrain only if the decision asks for a new retrain."""
    return bool(RetrainDecision.from_json(decision).emit_retrain_request)


def request_retrain(
    model: ModelConfig, decision: Mapping[str, Any], summary: Mapping[str, Any], context: Mapping[str, Any], asset
) -> dict[str, Any]:
    """Emit the retrain request (an Asset event carrying the reasons and the run's as_of)."""
    decided = RetrainDecision.from_json(decision)
    extra = {
        "model": model.name,
        "day": decided.day,
        # The instant the monitored run stands for: the retrain trains on the window
        # ending there (a replayed or backfilled day is not "now").
        "as_of": run_instant(context).isoformat(),
        "reasons": decided.reasons,
        "report_uri": MonitorSummary.from_json(summary).report_uri,
    }
    context["outlet_events"][asset].extra = extra
    return extra
