"""Problem responses: every refused request says which record and which field, in one shape.

A 422 lists problems shaped like FastAPI's own validation errors (``type``, ``loc``, ``msg``)
plus ``field`` and ``record_index``, so a client handles our checks and FastAPI's alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

#: At most this many problems are listed in one 422 (the total is always given).
MAX_LISTED_PROBLEMS = 50


class RequestInvalid(Exception):
    """One or more problems in a request body; each names the record and the field."""

    def __init__(self, problems: list[dict]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def problem(kind: str, loc: Iterable[Any], msg: str, *, field: str | None = None, index: int | None = None) -> dict:
    """A 422 entry shaped like FastAPI's own (``type``, ``loc``, ``msg``) plus ``field``/``record_index``."""
    entry: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg}
    if field is not None:
        entry["field"] = field
    if index is not None:
        entry["record_index"] = index
    return entry


def describe_value(value: Any) -> str:
    """A value as a problem message quotes it: its type and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def invalid_response(exc: RequestInvalid) -> JSONResponse:
    """The 422 for ``exc``: the first :data:`MAX_LISTED_PROBLEMS` problems and the total."""
    listed = exc.problems[:MAX_LISTED_PROBLEMS]
    body: dict[str, Any] = {"detail": listed, "problem_count": len(exc.problems)}
    if len(exc.problems) > len(listed):
        body["truncated"] = f"{len(exc.problems) - len(listed)} more problem(s) not listed"
    return JSONResponse(body, status_code=422)


def refuse(kind: str, loc: Iterable[Any], msg: str, **where: Any) -> JSONResponse:
    """The 422 for a single problem (see :func:`problem`)."""
    return invalid_response(RequestInvalid([problem(kind, loc, msg, **where)]))
