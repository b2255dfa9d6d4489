"""Telling people about a monitored day: its alerts logged at WARNING and posted to the model's webhook.

Notification must never fail the monitor (the decision is already recorded), so every error is
logged and reported in the outcome instead of raised. Not the ingest stage's dead-letter alerts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelops.config import ModelConfig
from modelops.jsonsafe import json_safe
from modelops.monitoring.cooldown import RETRAIN

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5.0


def _post_json(url: str, payload: Mapping[str, Any], timeout: float) -> int:
    import urllib.parse
    import urllib.request

    if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError("alert_webhook must be an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "modelops-monitor"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        return int(response.status)


def _host(url: str) -> str:
    """Where a webhook points, without its path (webhook paths are often secrets)."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def notify_decision(
    decision: Mapping[str, Any],
    config: ModelConfig,
    *,
    post: Callable[[str, Mapping[str, Any], float], Any] | None = None,
    timeout: float = WEBHOOK_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Log the decision's alerts at WARNING and POST them to ``config.drift.alert_webhook``; never raises.

    Nothing is sent for a decision without alerts and without a retrain, nor again for a retrain
    ``already_requested`` (the first run sent it). Returns what happened, for the task log.
    """
    outcome: dict[str, Any] = {"logged": 0, "webhook": "not_configured"}
    try:
        alerts = list(decision.get("alerts") or [])
        retrain = decision.get("action") == RETRAIN
        if decision.get("already_requested"):
            log.info(
                "%s %s: retrain already requested and alerted; not alerting again", config.name, decision.get("day")
            )
            outcome["webhook"] = "skipped"
            return outcome
        for item in alerts:
            log.warning("%s %s: [%s] %s", config.name, decision.get("day"), item.get("kind"), item.get("message"))
            outcome["logged"] += 1
        if retrain:
            log.warning(
                "%s %s: retrain requested: %s",
                config.name,
                decision.get("day"),
                "; ".join(decision.get("reasons") or []),
            )
            outcome["logged"] += 1
        if not alerts and not retrain:
            outcome["webhook"] = "skipped"
            return outcome
        url = config.drift.alert_webhook
        if not url:
            return outcome
        payload = json_safe(
            {
                "model": config.name,
                "day": decision.get("day"),
                "action": decision.get("action"),
                "reasons": decision.get("reasons"),
                "alerts": alerts,
                "suppressed_by": decision.get("suppressed_by"),
                "report_status": decision.get("report_status"),
            }
        )
        try:
            status = (post or _post_json)(url, payload, timeout)
        except Exception as exc:  # noqa: BLE001 - an alert must never fail the monitor
            log.error("%s: alert webhook %s failed: %s", config.name, _host(url), exc)
            outcome["webhook"] = "failed"
            return outcome
        if isinstance(status, int) and not 200 <= status < 300:
            log.error("%s: alert webhook %s answered HTTP %s", config.name, _host(url), status)
            outcome["webhook"] = "failed"
        else:
            outcome["webhook"] = "sent"
    except Exception:  # noqa: BLE001 - never raise from alerting
        log.exception("%s: alerting failed", getattr(config, "name", "?"))
        outcome["webhook"] = "failed"
    return outcome
