"""The as-of instant a DAG run stands for (modelops.dagkit.as_of), on plain values."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from modelops.dagkit import as_of, requested_as_of

RUN_AFTER = dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC)
ASKED = dt.datetime(2026, 11, 18, 0, 0, tzinfo=dt.UTC)


def _asset_triggered(*extras: dict) -> dict:
    events = [SimpleNamespace(extra=extra) for extra in extras]
    return {
        "data_interval_end": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(run_after=RUN_AFTER),
        "triggering_asset_events": {"churn_retrain_request": events},
    }


def test_a_requested_retrain_stands_for_the_day_that_asked():
    context = _asset_triggered({"model": "churn", "day": "2026-11-17", "as_of": ASKED.isoformat()})
    assert as_of(context) == ASKED


def test_several_requests_take_the_latest_as_of():
    later = ASKED + dt.timedelta(days=2)
    context = _asset_triggered({"as_of": ASKED.isoformat()}, {"as_of": "2026-11-20T00:00:00"})
    assert requested_as_of(context) == later  # a naive instant is UTC


def test_without_an_as_of_falls_back_to_the_run():
    assert as_of(_asset_triggered({"model": "churn"})) == RUN_AFTER  # an older request without as_of
    scheduled = {"data_interval_end": ASKED, "dag_run": SimpleNamespace(run_after=RUN_AFTER)}
    assert requested_as_of(scheduled) is None and as_of(scheduled) == ASKED
