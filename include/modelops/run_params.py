"""Checks on what a trigger asks for, before any work: unknown parameter keys, future dates.

Airflow 3.3 merges unknown ``conf`` keys into the run's params and validates only the declared
ones, so ``{"trainig_window_days": 10}`` would silently run with the defaults. It also no longer
has ``allow_trigger_in_future`` (removed in 3.0): a run whose logical date is ahead is accepted,
never scheduled, and holds ``max_active_runs`` slots until that date. Pure functions, no Airflow.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Mapping

#: A registry version a trigger may name: a number or one of the aliases (rollback_/deploy_<model>).
VERSION_PATTERN = r"^([0-9]+|champion|previous-champion|challenger|shadow)$"
#: What ``deploy_<model>`` does with the version: serve it, shadow it, or end the shadow.
DEPLOY_MODES = ("champion", "shadow", "end_shadow")
#: An SQS message id as recorded under ``dead-letters/<model>/`` (redrive_<model>).
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$"


class RunParamsError(ValueError):
    """A trigger asked for something this DAG cannot honour; the message says what to change."""


def unknown_keys(conf: Mapping | None, known: Iterable[str]) -> list[str]:
    known = set(known)
    return sorted(key for key in (conf or {}) if key not in known)


def check_conf_keys(conf: Mapping | None, known: Iterable[str], dag_id: str = "this DAG") -> None:
    """Refuse any ``conf`` key that is not one of the DAG's params, naming the closest known one."""
    known = sorted(known)
    unknown = unknown_keys(conf, known)
    if not unknown:
        return
    problems = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        problems.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    accepted = ", ".join(known) if known else "none"
    raise RunParamsError(
        f"{dag_id} does not take parameter {', '.join(problems)}; nothing was run. "
        f"Parameters it accepts: {accepted}. Trigger again without the unknown key(s)."
    )


def check_not_future(logical_date: dt.datetime | None, now: dt.datetime, dag_id: str = "this DAG") -> None:
    """Refuse a logical date after ``now``: Airflow would hold the run (and the runs queued
    behind it) until that date."""
    if logical_date is None or logical_date <= now:
        return
    raise RunParamsError(
        f"logical_date {logical_date.isoformat()} of {dag_id} is in the future (now "
        f"{now.isoformat(timespec='seconds')}): Airflow would not start it before then, and it would "
        "hold every later run of the DAG. Trigger with logical_date null (runs now), or a date not after now."
    )
