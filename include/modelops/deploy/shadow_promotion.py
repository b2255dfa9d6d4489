"""Acting on shadow evidence (monitor_<model>'s ``judge_shadow``): promote the shadow, end it, or wait.

Reads each day's comparison stored by monitoring (``monitoring/<model>/dt=<day>/shadow.json``) from
the day the shadow started to the day judged, lets :func:`modelops.training.shadow_gate.decide_shadow`
decide, and writes the verdict and its evidence into the decision record of the run that registered
the shadow version (``shadow_evidence``), whatever it is. A promotion moves ``champion`` as a retrain
would (refused if the champion moved since the shadow started) and deploys it with the usual check
and rollback; an ``end`` removes the alias with the evidence as its reason. Re-running a day reads the
same files and leaves the same state: a promoted or ended shadow is no longer the ``shadow`` alias.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from modelops import decision_record, registry
from modelops.config import ModelConfig
from modelops.deploy import rollout, shadow
from modelops.layout import decision_record_key, shadow_evidence_key
from modelops.store import Store
from modelops.training.shadow_gate import END, PROMOTE, WAIT, decide_shadow

log = logging.getLogger(__name__)

#: How far back evidence is read when the shadow's start is not on record.
MAX_LOOKBACK_DAYS = 90


def _evidence(store: Store, model: str, version: str, start: dt.date, day: dt.date) -> list[dict[str, Any]]:
    """The stored daily comparisons from ``start`` to ``day`` in which ``version`` was the shadow."""
    days = []
    current = max(start, day - dt.timedelta(days=MAX_LOOKBACK_DAYS))
    while current <= day:
        key = shadow_evidence_key(model, current)
        if store.exists(key):
            record = store.get_json(key)
            if version in (record.get("shadow_versions") or []):
                days.append(record)
        current += dt.timedelta(days=1)
    return days


def judge_shadow(config: ModelConfig, day: dt.date, *, actor: str, run_id: str, store: Store | None = None) -> dict:
    """Decide on the shadow's evidence up to ``day`` and act on it; the verdict (JSON-safe)."""
    store = store or Store()
    name = config.name
    version = registry.version_for_alias(name, registry.SHADOW)
    if version is None:
        return _already_acted(store, name, day) or {"action": "none", "reasons": [f"'{name}' has no shadow"]}
    shadow_version = str(version.version)
    gate_run_id = (version.tags or {}).get("airflow_run_id")
    record = decision_record.load(store, name, gate_run_id) if gate_run_id else None
    started = ((record or {}).get("shadow") or {}).get("started_at")
    start = dt.date.fromisoformat(started[:10]) if started else None
    if start is None or start > day:
        # No start on record, or a day before the start's wall-clock date: traffic replayed with
        # event times in the past (the demo), or a backfill. The days' own evidence names the
        # versions that scored them, so that is what counts.
        start = day - dt.timedelta(days=MAX_LOOKBACK_DAYS)
    later = _later_verdict(record, day)
    stale = _stale(later, shadow_version, day)
    if stale:
        log.info("%s shadow %s on %s: not judged (%s)", name, shadow_version, day, stale)
        return {"action": "none", "version": shadow_version, "judged_day": day.isoformat(), "reasons": [stale]}
    verdict = decide_shadow(_evidence(store, name, shadow_version, start, day), config.gate, config.is_classifier)
    verdict |= {"version": shadow_version, "judged_day": day.isoformat(), "judged_by": actor, "monitor_run_id": run_id}
    if gate_run_id and not (later and verdict["action"] == WAIT):
        # A "wait" of an older day never replaces a later day's verdict on record.
        store.update_json(decision_record_key(name, gate_run_id), shadow_evidence=verdict)
    log.info("%s shadow %s on %s: %s (%s)", name, shadow_version, day, verdict["action"], "; ".join(verdict["reasons"]))
    if verdict["action"] == PROMOTE:
        verdict["promotion"] = _promote(
            config, shadow_version, record, verdict, actor=actor, run_id=run_id, store=store
        )
    elif verdict["action"] == END:
        reason = "shadow evidence: " + "; ".join(verdict["reasons"])
        verdict["ended"] = shadow.end_shadow(config, reason=reason, actor=actor, run_id=run_id, store=store)
    return verdict


def _already_acted(store: Store, name: str, day: dt.date) -> dict | None:
    """With no shadow left: the verdict of ``day`` or later that promoted or ended the last shadow
    (the alias history names it), so a judge run again (a cleared task, a second run of the day)
    says what happened rather than only that there is no shadow. None when there is none."""
    removed = [e for e in registry.alias_history(name, store) if e.get("alias") == registry.SHADOW]
    if not removed or removed[-1].get("to_version") is not None:
        return None
    version = str(removed[-1]["from_version"])
    try:
        tags = registry.client().get_model_version(name, version).tags or {}
    except Exception:  # noqa: BLE001 - a version deleted since: nothing to say about it
        return None
    record = decision_record.load(store, name, tags["airflow_run_id"]) if tags.get("airflow_run_id") else None
    verdict = (record or {}).get("shadow_evidence") or {}
    if verdict.get("action") not in (PROMOTE, END) or str(verdict.get("judged_day") or "") < day.isoformat():
        return None
    done = "promoted to champion" if verdict["action"] == PROMOTE else "ended"
    return {
        "action": "none",
        "version": version,
        "judged_day": day.isoformat(),
        "reasons": [
            f"shadow {version} was already {done} on the evidence up to {verdict['judged_day']} "
            f"(monitor run {verdict.get('monitor_run_id')}); {day.isoformat()} does not act again"
        ],
    }


def _later_verdict(record: dict | None, day: dt.date) -> dict | None:
    """The verdict on record when it judged a day after ``day``, else None."""
    recorded = (record or {}).get("shadow_evidence") or {}
    return recorded if str(recorded.get("judged_day") or "") > day.isoformat() else None


def _stale(later: dict | None, version: str, day: dt.date) -> str | None:
    """Why judging ``day`` would not be what that day's own run decided, or None to judge it.

    A backfilled or replayed day is judged as of itself. A later day that already acted (promoted
    or ended this version) stands: an older day neither acts again nor overwrites it. A later day
    that only waited (its evidence was not all written yet: backfill days finish out of order, or a
    scheduled run came first) does not stop an older day from acting on the evidence up to itself,
    as that day's own run would have. ``later``: the verdict on record for a later day, if any.
    """
    if later and later.get("action") in (PROMOTE, END):
        return (
            f"shadow {version} was already judged on a later day ({later['judged_day']}: {later['action']}); "
            f"{day.isoformat()} does not act again"
        )
    return None


def _promote(
    config: ModelConfig, version: str, record: dict | None, verdict: dict, *, actor: str, run_id: str, store: Store
) -> dict[str, Any]:
    """Move champion to the shadow (against the champion it was compared with), deploy it, end the shadow."""
    expected = ((record or {}).get("shadow") or {}).get("champion_at_start")
    if expected is None:
        current = registry.version_for_alias(config.name, registry.CHAMPION)
        expected = str(current.version) if current is not None else None
    promoted = registry.promote(
        config.name, version, expected_champion=expected, reason="shadow evidence: " + "; ".join(verdict["reasons"]),
        actor=actor, run_id=run_id, store=store,
    )  # fmt: skip
    deployed = rollout.deploy_and_verify(config, version, actor=actor, run_id=run_id, store=store)
    ended = shadow.end_shadow(
        config, reason=f"promoted to champion on {verdict['judged_day']}", actor=actor, run_id=run_id,
        status=shadow.PROMOTED, store=store,
    )  # fmt: skip
    return {"registry": {k: v for k, v in promoted.items() if k != "event"}, "deployment": deployed, "ended": ended}
