"""The retrain decision on real reports: cooldown, budget per window, idempotent per day."""

from __future__ import annotations

import datetime as dt

from tests.unit.monitoring.monitoring_helpers import (
    NOW,
    retrain_entry,
)

from modelops.monitoring.decision import decide


def test_decide_honours_the_cooldown(reports, config):
    report, _ = reports["covariate_shift"]
    recent = [retrain_entry("2024-03-02", NOW - dt.timedelta(hours=config.drift.cooldown_hours - 1))]
    decision = decide(report, recent, config, NOW)
    assert decision["action"] == "no_action" and decision["suppressed_by"] == "cooldown"
    assert {a["kind"] for a in decision["alerts"]} >= {"drift", "suppressed"}  # still alerted
    older = [retrain_entry("2024-03-01", NOW - dt.timedelta(hours=config.drift.cooldown_hours + 1))]
    assert decide(report, older, config, NOW)["action"] == "retrain"
    # A backfill deciding an older day sees later requests as recent: no burst of retrains.
    later = [retrain_entry("2024-03-25", NOW + dt.timedelta(days=5))]
    assert decide(report, later, config, NOW)["suppressed_by"] == "cooldown"


def test_decide_honours_the_budget_per_window(reports, config):
    report, _ = reports["covariate_shift"]
    spec = config.drift
    budget = [
        retrain_entry(f"2024-03-{10 + i}", NOW - dt.timedelta(days=2 + i)) for i in range(spec.max_retrains_per_window)
    ]
    decision = decide(report, budget, config, NOW)
    assert decision["action"] == "no_action" and decision["suppressed_by"] == "budget"
    assert decision["retrains_in_window"] == spec.max_retrains_per_window
    outside = [retrain_entry("2024-03-01", NOW - dt.timedelta(days=spec.retrain_window_days, hours=1)), *budget[1:]]
    assert decide(report, outside, config, NOW)["action"] == "retrain"
    no_budget = config.model_copy(update={"drift": spec.model_copy(update={"max_retrains_per_window": 0})})
    assert decide(report, [], no_budget, NOW)["suppressed_by"] == "budget"


def test_decide_is_idempotent_per_day(reports, config):
    report, _ = reports["covariate_shift"]
    first = decide(report, [], config, NOW)
    assert first["action"] == "retrain" and not first["already_requested"]
    later = NOW + dt.timedelta(hours=3)
    again = decide(report, [first], config, later)
    assert again["action"] == "retrain" and again["already_requested"] is True
    assert again["requested_at"] == first["requested_at"]  # the cooldown stays anchored on the first request
    # Even if a re-run sees less (e.g. a report rebuilt differently), the day's request stands.
    calm = decide(reports["normal"][0] | {"day": report["day"]}, [first], config, later)
    assert calm["action"] == "retrain" and calm["already_requested"]
    # A no_action entry of the same day does not block a new verdict for that day.
    assert decide(report, [{**first, "action": "no_action"}], config, later)["already_requested"] is False


def test_decide_accepts_airflows_pendulum_datetimes(reports, config):
    """Airflow hands tasks pendulum DateTimes; their timedelta arithmetic drops tzinfo."""
    import pendulum

    report, _ = reports["covariate_shift"]
    now = pendulum.instance(NOW)
    recent = [retrain_entry("2024-03-02", NOW - dt.timedelta(hours=config.drift.cooldown_hours - 1))]
    assert decide(report, recent, config, now)["suppressed_by"] == "cooldown"


def test_a_24h_cooldown_holds_back_the_next_daily_request(reports, config):
    """Daily runs are exactly 24 h apart: the cooldown includes its end, so drift on three days in
    a row asks on day 1, is held back on day 2 (24 h after) and asks again on day 3 (48 h after)."""
    assert config.drift.cooldown_hours == 24
    report, _ = reports["covariate_shift"]
    history: list[dict] = []
    actions = []
    for offset in range(3):
        now = NOW + dt.timedelta(days=offset)
        day = (now - dt.timedelta(days=1)).date().isoformat()
        decision = decide({**report, "day": day}, history, config, now)
        actions.append((decision["action"], decision["suppressed_by"]))
        history.append(decision)
    assert actions == [("retrain", None), ("no_action", "cooldown"), ("retrain", None)]
