"""Where a monitored day is kept: its report (JSON and HTML) and its retrain decision, one set per day.

Every object is keyed by model and day (``modelops.layout``'s monitoring section), so re-running
a day overwrites its own objects and two days decided at once (a backfill) cannot lose each
other's entry.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops.jsonsafe import json_safe
from modelops.layout import monitoring_prefix, monitoring_report_keys, partition_date, retrain_decision_key
from modelops.monitoring.dates import as_date

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modelops.store import Store

log = logging.getLogger(__name__)


def report_keys(model: str, day: dt.date | str) -> dict[str, str]:
    """The day's ``report_json`` and ``report_html`` keys (``day`` as a date or ISO text)."""
    return monitoring_report_keys(model, as_date(day))


def write_report(
    store: Store, model: str, day: dt.date | str, report: Mapping[str, Any], html_text: str
) -> dict[str, str]:
    """``monitoring/<model>/dt=<day>/report.json`` and ``report.html`` (overwritten). Returns URIs."""
    keys = report_keys(model, day)
    body = json.dumps(json_safe(report), indent=2, sort_keys=True, allow_nan=False).encode()
    store.put_bytes(keys["report_json"], body, "application/json")
    store.put_text(keys["report_html"], html_text, "text/html; charset=utf-8")
    return {name: store.uri(key) for name, key in keys.items()}


def read_report(store: Store, model: str, day: dt.date | str) -> dict[str, Any]:
    """The day's stored report (what the decision step judges)."""
    return store.get_json(report_keys(model, day)["report_json"])


def load_decision_history(store: Store, model: str, *, since: dt.date | str | None = None) -> list[dict[str, Any]]:
    """Every recorded decision of ``model`` (from ``since`` on, if given), oldest day first."""
    since = as_date(since) if since is not None else None
    decisions = []
    for info in store.list(monitoring_prefix(model)):
        if not info.key.endswith("/decision.json"):
            continue
        day = partition_date(info.key)
        if day is None or (since is not None and day < since):
            continue
        decisions.append(store.get_json(info.key))
    return sorted(decisions, key=lambda d: (str(d.get("day")), str(d.get("at"))))


def append_decision(store: Store, model: str, decision: Mapping[str, Any]) -> str:
    """Record ``decision`` as its day's entry (replacing an earlier one of that day). Returns its URI.

    One object per day rather than one growing list: a re-run overwrites only its own day, and
    two days decided at once (a backfill) cannot lose each other's entry.
    """
    if not decision.get("day"):
        raise ValueError("a decision needs its 'day' to be recorded")
    key = retrain_decision_key(model, as_date(str(decision["day"])))
    store.put_json(key, json_safe(decision))
    return store.uri(key)


def presigned_url(store: Store, key: str, expires_s: int = 7 * 24 * 3600) -> str:
    """An HTTP link a browser can open (the local endpoint, or S3 in AWS)."""
    return store.client.generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=expires_s
    )
