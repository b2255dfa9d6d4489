"""Days and instants as the monitor takes them: ISO text or dates, aware UTC datetimes.

The monitor is called with what Airflow hands out (pendulum datetimes, ISO strings in XCom);
these two helpers turn them into plain values once, so comparisons and arithmetic behave.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)


def as_date(day: dt.date | str) -> dt.date:
    """A ``datetime.date`` from a date, a datetime or ISO text."""
    if isinstance(day, str):
        return dt.date.fromisoformat(day)
    if isinstance(day, dt.datetime):
        return day.date()
    return day


def utc(moment: dt.datetime | str) -> dt.datetime:
    """An aware UTC datetime; naive values are taken as UTC (Airflow hands out aware ones)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # A plain datetime: pendulum's DateTime (what Airflow hands out) drops its tzinfo in
    # arithmetic with timedelta, which then fails every comparison.
    return dt.datetime.fromtimestamp(moment.timestamp(), tz=dt.UTC)
