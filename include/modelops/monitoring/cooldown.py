"""How often monitoring may ask for a retrain: a cooldown after each request and a budget per window.

A drifted feed stays drifted for days; without these limits every daily run (and every day of a
backfill) would start another retrain. History entries stamped after ``now`` (a backfill
deciding an older day) count as recent, so a backfill cannot set off a burst of requests.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from modelops.config import ModelConfig
from modelops.monitoring.dates import utc

log = logging.getLogger(__name__)

RETRAIN, NO_ACTION = "retrain", "no_action"


def requested_at(entry: Mapping[str, Any]) -> dt.datetime | None:
    """When a recorded decision asked for its retrain (``requested_at``, else its ``at``)."""
    value = entry.get("requested_at") or entry.get("at")
    try:
        return utc(value) if value else None
    except (TypeError, ValueError):
        return None


def in_cooldown(elapsed: dt.timedelta, cooldown_hours: int) -> bool:
    """Whether a request ``elapsed`` after the last one is held back: the cooldown includes its
    end, so a 24 h cooldown holds back the next daily run (exactly 24 h later); 0 disables it
    (except for requests stamped after ``now``, i.e. a backfill deciding an older day)."""
    cooldown = dt.timedelta(hours=cooldown_hours)
    return elapsed < cooldown or (cooldown_hours > 0 and elapsed <= cooldown)


def earlier_requests(history: list[Mapping[str, Any]], day: str) -> list[dt.datetime]:
    """When retrains were requested by decisions of days other than ``day``."""
    stamps = (requested_at(h) for h in history if str(h.get("day")) != day and h.get("action") == RETRAIN)
    return [t for t in stamps if t is not None]


def same_day_request(history: list[Mapping[str, Any]], day: str) -> Mapping[str, Any] | None:
    """The latest recorded retrain of ``day`` itself (a re-run of that day must not ask again)."""
    same_day = [h for h in history if str(h.get("day")) == day]
    return next((h for h in reversed(same_day) if h.get("action") == RETRAIN), None)


def in_window(requests: list[dt.datetime], config: ModelConfig, now: dt.datetime) -> list[dt.datetime]:
    """The requests inside the budget's window (the last ``retrain_window_days`` before ``now``)."""
    window_start = now - dt.timedelta(days=config.drift.retrain_window_days)
    return [t for t in requests if t > window_start]


def suppression(
    requests: list[dt.datetime], config: ModelConfig, now: dt.datetime
) -> tuple[str, str] | tuple[None, None]:
    """``(cooldown | budget, reason)`` if a new request must be held back, else ``(None, None)``."""
    spec = config.drift
    last = max(requests, default=None)
    if last is not None and in_cooldown(now - last, spec.cooldown_hours):
        hours = (now - last).total_seconds() / 3600
        return "cooldown", (
            f"retrain suppressed: cooldown, last request at {last.isoformat()} ({hours:.1f} h ago, "
            f"cooldown {spec.cooldown_hours} h)"
        )
    recent = in_window(requests, config, now)
    if len(recent) >= spec.max_retrains_per_window:
        return "budget", (
            f"retrain suppressed: budget, {len(recent)} request(s) in the last {spec.retrain_window_days} "
            f"day(s) (at most {spec.max_retrains_per_window})"
        )
    return None, None
