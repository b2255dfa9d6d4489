"""Backfill a DAG over a date range through Airflow's REST API, and report its progress.

``airflow backfill create`` on the local SQLite stack writes the metadata database next to a
running scheduler and can fail with "database is locked", leaving an unfinished backfill that
blocks the next one; the API server's ``POST /api/v2/backfills`` retries that and works. A
backfill of a paused DAG is accepted and then waits silently, so a paused DAG is refused here
(or unpaused with ``--unpause``).

    python -m modelops.backfill --dag monitor_churn --from 2026-11-10 --to 2026-11-12

Dates are logical dates: a daily monitoring run dated D reports on day D (its interval [D, D+1)).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable

from modelops.airflow_api import AirflowClient, AirflowError

log = logging.getLogger(__name__)


class BackfillError(RuntimeError):
    """The backfill could not start or did not finish well; the message says why and what to do."""


def _midnight(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(), dt.UTC).isoformat()


def start_backfill(
    airflow: AirflowClient,
    dag_id: str,
    first: dt.date,
    last: dt.date,
    reprocess: str = "none",
    unpause: bool = False,
    attempts: int = 30,
    pause_between: float = 2.0,
) -> dict:
    """Create the backfill, after making sure the DAG will actually run it (unpaused afterwards
    with ``unpause``, so the scheduler's first write to the DAG does not race the creation)."""
    if last < first:
        raise BackfillError(f"--to {last} is before --from {first}: give the earlier day first.")
    dag = airflow.wait_for_dag(dag_id)
    if dag["is_paused"] and not unpause:
        raise BackfillError(
            f"{dag_id} is paused: a backfill of a paused DAG would wait without running anything. "
            "Unpause it (the toggle in the UI) or pass --unpause, then run this again."
        )
    created = _create_retrying_locks(
        airflow, dag_id, _midnight(first), _midnight(last), reprocess, attempts, pause_between
    )
    if dag["is_paused"]:
        airflow.unpause(dag_id)
    return created


def _create_retrying_locks(
    airflow: AirflowClient, dag_id: str, first: str, last: str, reprocess: str, attempts: int, pause_between: float
) -> dict:
    """SQLite under a running scheduler answers 503 "Database is locked" now and then: try again.
    A 409 after our own 503 is our half-created backfill: adopt it if it made its runs, else
    cancel the orphan and try again."""
    locked = False
    for _ in range(attempts):
        try:
            return airflow.create_backfill(dag_id, first, last, reprocess)
        except AirflowError as exc:
            if " 503 " in str(exc):
                locked = True
            elif " 409 " in str(exc) and locked:
                active = _active_backfill(airflow, dag_id)
                if active is not None and airflow.backfill_runs(dag_id, first, last):
                    return active
                if active is not None:
                    airflow.cancel_backfill(active["id"])
            elif " 409 " in str(exc):
                raise BackfillError(
                    f"{dag_id} already has a backfill running: wait for it (GET /api/v2/backfills?dag_id={dag_id}) "
                    "or cancel it (PUT /api/v2/backfills/<id>/cancel), then run this again."
                ) from None
            else:
                raise
        log.info("backfill of %s: database busy, trying again in %.0f s", dag_id, pause_between)
        time.sleep(pause_between)
    raise BackfillError(
        f"backfill of {dag_id}: Airflow's SQLite database stayed locked over {attempts} attempts; "
        "run this again when the scheduler is less busy (or use PostgreSQL: MODELOPS_AIRFLOW_DB_URL)."
    )


def _active_backfill(airflow: AirflowClient, dag_id: str) -> dict | None:
    active = [b for b in airflow.backfills(dag_id) if b["completed_at"] is None]
    return active[-1] if active else None


def wait_for_backfill(
    airflow: AirflowClient,
    created: dict,
    timeout: float = 3600.0,
    interval: float = 2.0,
    out: Callable[[str], None] = print,
) -> dict[str, str]:
    """Poll until the backfill completes; returns each run's state by logical date. Raises if
    any run failed or the timeout passed."""
    dag_id, first, last = created["dag_id"], created["from_date"], created["to_date"]
    deadline = time.monotonic() + timeout
    reported = None
    while True:
        backfill = airflow.backfill(created["id"])
        runs = airflow.backfill_runs(dag_id, first, last)
        states = {run["logical_date"]: run["state"] for run in runs}
        summary = ", ".join(f"{n} {state}" for state, n in sorted(Counter(states.values()).items())) or "no runs yet"
        if summary != reported:
            out(f"backfill {created['id']} of {dag_id}: {summary}")
            reported = summary
        if backfill["completed_at"] is not None:
            break
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill {created['id']} of {dag_id} not complete after {timeout:.0f} s: {summary}")
        time.sleep(interval)
    failed = sorted(date for date, state in states.items() if state != "success")
    if failed:
        raise BackfillError(
            f"backfill {created['id']} of {dag_id}: runs dated {', '.join(failed)} did not succeed; "
            "see their task logs in the UI."
        )
    return states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dag", required=True, help="DAG id, e.g. monitor_churn")
    parser.add_argument("--from", dest="first", required=True, type=dt.date.fromisoformat, help="first logical date")
    parser.add_argument("--to", dest="last", required=True, type=dt.date.fromisoformat, help="last logical date")
    parser.add_argument(
        "--reprocess",
        choices=["none", "failed", "completed"],
        default="none",
        help="re-run days that already have a run: none (default), failed ones, or all",
    )
    parser.add_argument("--unpause", action="store_true", help="unpause the DAG first instead of refusing")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for completion")
    args = parser.parse_args(argv)

    airflow = AirflowClient.from_env()
    try:
        created = start_backfill(airflow, args.dag, args.first, args.last, args.reprocess, args.unpause)
        print(f"backfill {created['id']} of {args.dag} created: {args.first} .. {args.last}")
        wait_for_backfill(airflow, created, timeout=args.timeout)
    except BackfillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("backfill complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
