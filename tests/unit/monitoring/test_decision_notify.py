"""Notifying a decision: logged, posted to the webhook, never raising."""

from __future__ import annotations

import json
import logging

from tests.unit.monitoring.monitoring_helpers import (
    NOW,
)

from modelops.monitoring.decision import decide
from modelops.monitoring.notify import notify_decision


def test_alert_logs_posts_and_never_raises(reports, config, caplog):
    decision = decide(reports["null_column"][0], [], config, NOW)
    hooked = config.model_copy(
        update={"drift": config.drift.model_copy(update={"alert_webhook": "https://hooks.example/secret-path"})}
    )
    sent = []
    with caplog.at_level(logging.WARNING, logger="modelops.monitoring.notify"):
        outcome = notify_decision(
            decision, hooked, post=lambda url, payload, timeout: sent.append((url, payload, timeout))
        )
    assert outcome["webhook"] == "sent" and outcome["logged"] == 1
    assert any(r.levelno == logging.WARNING and "quality" in r.getMessage() for r in caplog.records)
    url, payload, timeout = sent[0]
    assert payload["action"] == "no_action" and payload["alerts"][0]["kind"] == "quality"
    assert timeout <= 10
    json.dumps(payload)

    def failing(url, payload, timeout):
        raise TimeoutError("timed out")

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="modelops.monitoring.notify"):
        assert notify_decision(decision, hooked, post=failing)["webhook"] == "failed"
    assert "secret-path" not in caplog.text and "hooks.example" in caplog.text
    assert notify_decision(decision, hooked, post=lambda *a: 500)["webhook"] == "failed"
    assert notify_decision(decision, config, post=failing)["webhook"] == "not_configured"
    assert notify_decision({**decision, "alerts": []}, hooked, post=failing)["webhook"] == "skipped"
    assert notify_decision({"broken": object()}, hooked, post=failing)["webhook"] in {"skipped", "failed"}
