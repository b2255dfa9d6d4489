"""The gate's second half: may the shadow be promoted on N days of live evidence?

A pure function of plain values (each day is the ``shadow`` section of that day's monitoring
report, :mod:`modelops.monitoring.shadow_compare`), so it is tested without a stack:

* a day **counts** when the shadow version scored records that day and can be judged: its live
  metric over labelled records (``live.status == "ok"``), else, when ``max_disagreement`` is
  declared, its disagreement with the champion (classes: the share of records labelled
  differently; regression: the mean relative difference);
* a counted day is **no worse** when the shadow's primary metric is at most
  ``max_live_regression`` worse than the champion's on the same records (or, judged without labels,
  the disagreement is within ``max_disagreement``);
* with fewer than ``require_shadow_days`` counted days: ``wait``; else the latest N decide:
  ``promote`` when every one is no worse, ``end`` (the shadow is ended, on record) when any is worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelops.config import GateSpec

PROMOTE, WAIT, END = "promote", "wait", "end"


def judge_day(day: Mapping[str, Any], gate: GateSpec, is_classifier: bool) -> dict[str, Any]:
    """One day's verdict: ``counts``, ``no_worse``, ``basis`` (live_labels | disagreement) and why."""
    live = day.get("live") or {}
    summary = {"day": day.get("day"), "rows_compared": day.get("rows_compared", 0), "counts": False}
    if not day.get("rows_compared"):
        return summary | {"reason": "no record scored by both versions"}
    if live.get("status") == "ok" and live.get("regression") is not None:
        regression = float(live["regression"])
        no_worse = regression <= gate.max_live_regression
        return summary | {
            "counts": True,
            "basis": "live_labels",
            "no_worse": no_worse,
            "labelled_rows": live.get("labelled_rows"),
            "regression": regression,
            "reason": f"{live.get('primary_metric')} {'within' if no_worse else 'beyond'} "
            f"max_live_regression {gate.max_live_regression} (shadow worse by {regression:.4g})",
        }
    if gate.max_disagreement is None:
        return summary | {"reason": "too few labels, and no max_disagreement declared to judge without them"}
    measure = "disagreement_rate" if is_classifier else "mean_relative_difference"
    value = float(day.get(measure) or 0.0)
    no_worse = value <= gate.max_disagreement
    return summary | {
        "counts": True,
        "basis": "disagreement",
        "no_worse": no_worse,
        measure: value,
        "reason": f"{measure} {value:.4g} {'within' if no_worse else 'beyond'} max_disagreement {gate.max_disagreement}",
    }


def decide_shadow(days: Sequence[Mapping[str, Any]], gate: GateSpec, is_classifier: bool) -> dict[str, Any]:
    """``{action: promote | wait | end, reasons, days: [each day's verdict], required_days}``."""
    required = gate.require_shadow_days
    judged = [judge_day(day, gate, is_classifier) for day in sorted(days, key=lambda d: str(d.get("day")))]
    counted = [d for d in judged if d["counts"]]
    base = {"required_days": required, "counted_days": len(counted), "days": judged}
    if required <= 0:
        return base | {"action": WAIT, "reasons": ["require_shadow_days is 0: the shadow is for observation only"]}
    if len(counted) < required:
        return base | {
            "action": WAIT,
            "reasons": [f"{len(counted)} of {required} days of shadow evidence so far"],
        }
    latest = counted[-required:]
    worse = [d for d in latest if not d["no_worse"]]
    if worse:
        return base | {"action": END, "reasons": [f"{d['day']}: {d['reason']}" for d in worse]}
    return base | {
        "action": PROMOTE,
        "reasons": [
            f"{required} days no worse than the champion: " + "; ".join(f"{d['day']}: {d['reason']}" for d in latest)
        ],
    }
