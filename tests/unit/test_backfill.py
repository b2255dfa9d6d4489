"""The backfill wrapper refuses what would wait silently and reports runs that did not succeed."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops.airflow_api import AirflowError
from modelops.backfill import BackfillError, start_backfill, wait_for_backfill


class _Airflow:
    def __init__(self, paused: bool, polls: list[tuple[str | None, dict[str, str]]] | None = None):
        self.paused, self.polls, self.created, self.calls = paused, list(polls or []), [], []
        self.answers: list[str] = []  # errors the next create calls meet, in order
        self.active: list[dict] = []

    def wait_for_dag(self, dag_id):
        return {"dag_id": dag_id, "is_paused": self.paused}

    def unpause(self, dag_id):
        self.calls.append(("unpause", dag_id))
        self.paused = False

    def create_backfill(self, dag_id, first, last, reprocess):
        self.calls.append(("create", dag_id))
        if self.answers:
            raise AirflowError(f"POST /backfills: {self.answers.pop(0)}")
        if self.created:
            raise AirflowError(f"POST /backfills: 409 There is already a running backfill for dag {dag_id}")
        self.created.append((dag_id, first, last, reprocess))
        return {"id": 7, "dag_id": dag_id, "from_date": first, "to_date": last}

    def backfills(self, dag_id):
        return self.active

    def cancel_backfill(self, backfill_id):
        self.calls.append(("cancel", backfill_id))
        self.active = []

    def backfill(self, backfill_id):
        return {"id": backfill_id, "completed_at": self.polls[0][0]}

    def backfill_runs(self, dag_id, first, last):
        states = self.polls.pop(0)[1] if len(self.polls) > 1 else self.polls[0][1]
        return [{"logical_date": date, "state": state} for date, state in states.items()]


D1, D2 = dt.date(2026, 11, 18), dt.date(2026, 11, 19)


def test_a_paused_dag_is_refused_and_nothing_is_created():
    airflow = _Airflow(paused=True)
    with pytest.raises(BackfillError, match="monitor_churn is paused.*--unpause"):
        start_backfill(airflow, "monitor_churn", D1, D2)
    assert airflow.created == []


def test_create_from_midnight_to_midnight_then_unpause():
    airflow = _Airflow(paused=True)
    created = start_backfill(airflow, "monitor_churn", D1, D2, "completed", unpause=True)
    assert airflow.calls == [("create", "monitor_churn"), ("unpause", "monitor_churn")]
    assert airflow.created == [("monitor_churn", "2026-11-18T00:00:00+00:00", "2026-11-19T00:00:00+00:00", "completed")]
    assert created["id"] == 7
    with pytest.raises(BackfillError, match="already has a backfill running"):
        start_backfill(airflow, "monitor_churn", D1, D2)


def test_reversed_dates_are_refused():
    with pytest.raises(BackfillError, match="before --from"):
        start_backfill(_Airflow(paused=False), "monitor_churn", D2, D1)


def test_progress_is_reported_until_complete_and_a_failed_day_is_named():
    polls = [
        (None, {"2026-11-18T00:00:00Z": "running"}),
        ("done", {"2026-11-18T00:00:00Z": "success", "2026-11-19T00:00:00Z": "failed"}),
    ]
    lines: list[str] = []
    created = {"id": 7, "dag_id": "monitor_churn", "from_date": "a", "to_date": "b"}
    with pytest.raises(BackfillError, match="runs dated 2026-11-19T00:00:00Z did not succeed"):
        wait_for_backfill(_Airflow(paused=False, polls=polls), created, interval=0, out=lines.append)
    assert lines == ["backfill 7 of monitor_churn: 1 running", "backfill 7 of monitor_churn: 1 failed, 1 success"]


def test_a_locked_database_is_retried_and_an_orphan_left_by_it_cancelled(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    airflow = _Airflow(paused=False, polls=[(None, {})])
    airflow.answers = ["503 Database is locked", "409 There is already a running backfill"]
    airflow.active = [{"id": 6, "completed_at": None}]  # made by the locked attempt, without runs
    created = start_backfill(airflow, "monitor_churn", D1, D2)
    assert created["id"] == 7
    assert airflow.calls == [
        ("create", "monitor_churn"),
        ("create", "monitor_churn"),
        ("cancel", 6),
        ("create", "monitor_churn"),
    ]


def test_a_database_locked_throughout_gives_up_saying_so(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    airflow = _Airflow(paused=False)
    airflow.answers = ["503 Database is locked"] * 3
    with pytest.raises(BackfillError, match="stayed locked over 3 attempts"):
        start_backfill(airflow, "monitor_churn", D1, D2, attempts=3)
