"""An ASGI middleware for Airflow's API server that refuses a trigger dated in the future.

Airflow 3.3 accepts ``POST /api/v2/dags/{dag_id}/dagRuns`` with a future ``logical_date`` (the
``allow_trigger_in_future`` option was removed in 3.0), then never schedules it: the scheduler
logs "Logical date is in future" on every loop, and with ``max_active_runs=1`` the run holds every
later run of the DAG until that date. No task of ours runs to fail it, so it is refused at the
door instead, with a 400 naming the date. Installed by ``plugins/modelops_guards.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

from modelops.run_params import RunParamsError, check_not_future

log = logging.getLogger(__name__)

TRIGGER_PATH = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")


def future_date_problem(dag_id: str, body: bytes, now: dt.datetime) -> str | None:
    """The refusal message for a trigger body dated after ``now``; None when it may go through
    (malformed bodies are left to Airflow's own validation)."""
    try:
        value = json.loads(body or b"{}").get("logical_date")
        logical_date = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, AttributeError):
        return None
    if logical_date is None or logical_date.tzinfo is None:
        return None
    try:
        check_not_future(logical_date, now, dag_id)
    except RunParamsError as exc:
        return str(exc)
    return None


class RefuseFutureTriggers:
    """Pure ASGI middleware: reads a trigger's body, answers 400 if it is dated in the future,
    otherwise replays the body to the app unchanged."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        match = TRIGGER_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        problem = future_date_problem(match["dag_id"], body, dt.datetime.now(dt.UTC))
        if problem:
            payload = json.dumps({"detail": problem}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return None

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)
