"""The decision record of a retrain run is written once; a cleared and re-run task adds to it.

``decisions/<model>/<run_id>.json`` holds what the gate decided and the evidence it decided on.
A re-run (Airflow clear) must not replace either: it finds the record, appends an entry to
``attempts`` saying what the re-run did, and hands the original decision on, so ``register`` and
``promote`` stay idempotent. Only a re-run whose candidate differs from the recorded one (its
training was redone) and that never registered a version decides again, and the earlier decision
is kept under ``earlier_decisions``.
"""

from __future__ import annotations

import datetime as dt
import logging

from modelops.layout import decision_record_key
from modelops.store import Store

log = logging.getLogger(__name__)

KEPT = "kept original decision"
DECIDED_AGAIN = "decided again: the candidate changed and no version was registered"
#: The fields that make up what the gate decided; a re-run never rewrites them.
DECISION_FIELDS = ("promote", "reasons", "failed_checks", "checks", "policy", "candidate", "champion")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def load(store: Store, model: str, run_id: str) -> dict | None:
    """The run's record if the gate already decided (it has ``promote``), else None."""
    key = decision_record_key(model, run_id)
    if not store.exists(key):
        return None
    record = store.get_json(key)
    return record if isinstance(record, dict) and "promote" in record else None


def try_number() -> int | None:
    """The Airflow try of the running task, or None outside a task."""
    try:
        from airflow.sdk import get_current_context

        return int(get_current_context()["ti"].try_number)
    except Exception:  # noqa: BLE001 - outside Airflow (tests, run_chain) there is no context
        return None


def append_attempt(store: Store, model: str, run_id: str, step: str, outcome: str, **extra) -> dict:
    """Add one ``{at, step, try_number, outcome, ...}`` entry to the record's ``attempts``."""
    key = decision_record_key(model, run_id)
    record = store.get_json(key)
    entry = {"at": now(), "step": step, "try_number": try_number(), "outcome": outcome, **extra}
    record["attempts"] = [*record.get("attempts", []), entry]
    store.put_json(key, record)
    log.info("decision record %s: %s re-run, %s", key, step, outcome)
    return entry


def same_candidate(record: dict, best: dict) -> bool:
    return record.get("evidence", {}).get("candidate_run_id") == best.get("mlflow_run_id")


def keeps_original(record: dict | None, best: dict) -> bool:
    """Whether a re-run must keep the recorded decision: always, unless the candidate changed
    and nothing was registered on the strength of the old decision."""
    if record is None:
        return False
    return same_candidate(record, best) or record.get("registered_version") is not None


def summary(record: dict, store: Store, model: str, run_id: str) -> dict:
    """What ``gate`` returns (its XCom), rebuilt from a record."""
    return {
        "promote": record["promote"],
        "dry_run": record.get("dry_run", False),
        "reasons": record["reasons"],
        "failed_checks": record["failed_checks"],
        "decision_uri": store.uri(decision_record_key(model, run_id)),
        "champion_version_compared": record.get("champion_version_compared"),
    }


def earlier_decision(record: dict) -> dict:
    """The decision part of a record, to keep when a changed candidate is decided again."""
    keep = (*DECISION_FIELDS, "decided_at", "evidence", "champion_version_compared", "selection", "dry_run")
    return {k: record[k] for k in keep if k in record}
