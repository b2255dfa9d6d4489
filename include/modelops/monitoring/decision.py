"""Whether a monitored day asks for a retrain, and why: a pure function of the report and history.

Retrain rule: feature drift (any feature ``drift.compare`` calls drifted: significant *and* past
its effect floor, or past its distance threshold; dataset drift implies it), degraded
performance, or (without enough labels to judge) an estimated drop of performance (CBPE,
:mod:`modelops.monitoring.estimation`) request a retrain. Data-quality violations alone only alert: bad data is not drift,
and retraining on a broken feed teaches the model the bug (the retrain DAG's own suite stops
training on broken data anyway). Prediction drift alone only alerts: it says the outputs moved,
not that they are wrong. A day without traffic decides nothing. Requests are rationed by
:mod:`modelops.monitoring.cooldown`.

Decision schema (what :func:`modelops.monitoring.storage.append_decision` stores per day)::

    {schema_version, model, day, at, action: retrain | no_action, reasons: [str],
     alerts: [{kind, message}], triggers: [drift | performance | estimated_performance], suppressed_by: null | cooldown |
     budget | report_status, already_requested: bool, requested_at: ISO | null,
     retrains_in_window: int, report_status}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from modelops.config import ModelConfig
from modelops.monitoring.cooldown import (
    NO_ACTION,
    RETRAIN,
    earlier_requests,
    in_window,
    requested_at,
    same_day_request,
    suppression,
)
from modelops.monitoring.dates import utc
from modelops.records import Record

log = logging.getLogger(__name__)

DECISION_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RetrainDecision(Record):
    """What ``decide`` hands on across XCom: the day's recorded decision (the schema above) and
    whether this run must emit the retrain request (a retrain, not already requested)."""

    schema_version: int
    model: str
    day: str
    at: str
    action: str
    reasons: list[str]
    alerts: list[dict[str, str]]
    triggers: list[str]
    suppressed_by: str | None
    already_requested: bool
    requested_at: str | None
    retrains_in_window: int
    report_status: str | None
    emit_retrain_request: bool = False


def findings_to_alerts(report: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """``(alerts, triggers, reasons)`` of a report: an alert per finding, the findings that
    retrain, and why (including why an alert alone does not retrain)."""
    verdict = report.get("verdict") or {}
    findings = list(verdict.get("findings") or [])
    messages = {m.split(":", 1)[0]: m for m in verdict.get("messages") or []}
    alerts: list[dict[str, str]] = []
    for kind in ("performance", "estimated_performance", "drift", "quality", "prediction_drift"):
        if kind in findings:
            key = kind.replace("_", " ")
            alerts.append({"kind": kind, "message": messages.get(key, kind)})
    triggers = [kind for kind in ("drift", "performance", "estimated_performance") if kind in findings]
    reasons = [a["message"] for a in alerts if a["kind"] in triggers]
    if "quality" in findings and not triggers:
        reasons.append("data-quality violations alone do not retrain (bad data is not drift): alert only")
    if "prediction_drift" in findings and not triggers:
        reasons.append("prediction drift alone does not retrain: alert only")
    suspect = sorted(
        set(verdict.get("drifted_features") or [])
        & {v.get("column") for v in (report.get("data_quality") or {}).get("violations") or []}
    )
    if "drift" in triggers and suspect:
        # Not a veto (a real price rise also leaves the trained range), but worth a look first.
        reasons.append(f"drifted feature(s) {suspect} also break data-quality constraints: check the feed")
    return alerts, triggers, reasons


def decide(
    report: Mapping[str, Any],
    history: list[Mapping[str, Any]],
    config: ModelConfig,
    now: dt.datetime | str,
) -> dict[str, Any]:
    """``retrain`` or ``no_action`` for one day's report, given earlier decisions (pure).

    Triggers: feature drift or degraded performance. Data-quality violations and prediction drift
    alone alert without retraining (see the module docstring). A trigger is suppressed within
    ``config.drift.cooldown_hours`` of the last retrain request, or once
    ``max_retrains_per_window`` requests fall in the last ``retrain_window_days``. History
    entries stamped after ``now`` (a backfill deciding an older day) count as recent, so a backfill
    cannot set off a burst of requests. If ``history`` already holds a retrain for this day the
    action stays ``retrain`` with ``already_requested: true``: the caller must not emit again.
    """
    now = utc(now)
    day = str(report.get("day"))
    status = report.get("status")
    alerts, triggers, reasons = findings_to_alerts(report)
    requests = earlier_requests(history, day)
    decision: dict[str, Any] = {
        "schema_version": DECISION_SCHEMA_VERSION,
        "model": report.get("model") or config.name,
        "day": day,
        "at": now.isoformat(),
        "action": NO_ACTION,
        "reasons": reasons,
        "alerts": alerts,
        "triggers": triggers,
        "suppressed_by": None,
        "already_requested": False,
        "requested_at": None,
        "retrains_in_window": len(in_window(requests, config, now)),
        "report_status": status,
    }
    previous_request = same_day_request(history, day)
    if previous_request is not None:
        decision.update(
            action=RETRAIN,
            already_requested=True,
            requested_at=(requested_at(previous_request) or now).isoformat(),
        )
        decision["reasons"] = [*reasons, f"a retrain was already requested for {day}: not requested again"]
        return decision
    if status == "no_data" or not triggers:
        if status == "no_data":
            messages = (report.get("verdict") or {}).get("messages") or []
            decision["reasons"] = [*reasons, "no data to judge: " + "; ".join(messages)]
        elif not reasons:
            decision["reasons"] = ["no drift or performance finding"]
        return decision
    suppressed_by, why = suppression(requests, config, now)
    if suppressed_by is not None:
        decision["suppressed_by"] = suppressed_by
        decision["reasons"] = [*reasons, why]
        decision["alerts"] = [*alerts, {"kind": "suppressed", "message": why}]
        return decision
    decision.update(action=RETRAIN, requested_at=now.isoformat())
    return decision
