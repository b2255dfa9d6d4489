"""Who may change what a server serves: the bearer token, and the simulated-traffic event time.

Reload and feedback need ``MODELOPS_SERVING_TOKEN`` (:func:`require_token`, a dependency);
predict is open, but an ``X-Modelops-Event-Time`` header on it (which back-dates capture) is
honoured only with the token and only on a server started to accept it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from modelops.serving.state import ServingState

log = logging.getLogger(__name__)

#: Module level: route signatures are resolved against module globals (``from __future__ import annotations``).
BEARER = HTTPBearer(auto_error=False, description="MODELOPS_SERVING_TOKEN of the server")
EVENT_TIME_HEADER = "X-Modelops-Event-Time"
EVENT_TIME_PARAM = Header(
    alias=EVENT_TIME_HEADER,
    description=(
        "Simulated traffic only: the ISO-8601 instant (e.g. 2026-11-18T12:00:00Z) to record instead of the "
        "wall clock (capture day and captured_at; feedback received_at). Honoured only when the server runs "
        "with MODELOPS_SERVING_ACCEPT_EVENT_TIME=true and the request carries the bearer token; otherwise 403. "
        "A malformed value gets a 400."
    ),
)


def token_problem(state: ServingState, authorization: str | None) -> str | None:
    """Why ``authorization`` (the header's value) is not the server's bearer token, or None."""
    expected = state.settings.serving_token
    if not expected:
        return "the server has no MODELOPS_SERVING_TOKEN set"
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "missing bearer token: send 'Authorization: Bearer <token>'"
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return "invalid bearer token"
    return None


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> None:
    """Route dependency: 401 without a bearer token, 403 with a wrong one or none configured."""
    expected = request.app.state.serving.settings.serving_token
    if not expected:
        raise HTTPException(403, "this endpoint is disabled: the server has no MODELOPS_SERVING_TOKEN set")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "missing bearer token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(403, "invalid bearer token")


def event_time_of(
    state: ServingState, value: str | None, authorization: str | None, *, token_checked: bool
) -> dt.datetime | None:
    """The instant of ``X-Modelops-Event-Time``, when sent, allowed and well formed (else 403/400)."""
    if value is None:
        return None
    if not state.options.accept_event_time:
        raise HTTPException(
            403,
            f"{EVENT_TIME_HEADER} is not accepted by this server: it is for simulated traffic and needs "
            "MODELOPS_SERVING_ACCEPT_EVENT_TIME=true on the server (off in production); send the request without it",
        )
    if not token_checked:
        why = token_problem(state, authorization)
        if why is not None:
            raise HTTPException(403, f"{EVENT_TIME_HEADER} needs the bearer token: {why}")
    instant = _instant(value)
    if instant is None:
        raise HTTPException(
            400,
            f"{EVENT_TIME_HEADER}: {value[:60]!r} is not an ISO-8601 instant; send one with a UTC offset, "
            "like 2026-11-18T12:00:00Z",
        )
    return instant


def _instant(value: str) -> dt.datetime | None:
    """``value`` as a UTC datetime, or None if it is not an ISO-8601 instant with an offset."""
    try:
        instant = dt.datetime.fromisoformat(value.strip())
        if instant.tzinfo is not None and instant.utcoffset() is not None:
            instant = instant.astimezone(dt.UTC)  # OverflowError at the ends of the calendar
    except (ValueError, OverflowError):
        return None
    if instant.tzinfo is None or instant.utcoffset() is None:
        return None
    return instant
