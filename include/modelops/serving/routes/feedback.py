"""``POST /models/{model}/feedback`` (bearer token): ground-truth labels, captured for monitoring.

Labels are checked against the model (a known class, or a finite number for a regression) and
buffered to ``feedback/<model>/``, where monitoring joins them to the captured predictions by
request id and record index.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from modelops.layout import FEEDBACK
from modelops.serving.auth import EVENT_TIME_HEADER, EVENT_TIME_PARAM, event_time_of, require_token
from modelops.serving.champion import ModelSlot
from modelops.serving.problems import RequestInvalid, describe_value, invalid_response, problem, refuse
from modelops.serving.schemas import FeedbackLabel, FeedbackRequest, FeedbackResponse
from modelops.serving.state import state_of
from modelops.serving.validation import category_text

log = logging.getLogger(__name__)

router = APIRouter()


@router.post(
    "/models/{model}/feedback",
    response_model=FeedbackResponse,
    status_code=202,
    summary="Ground-truth labels for captured predictions (joined later by request id and record index)",
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "No bearer token"},
        403: {"description": "Wrong token, or no token configured on the server"},
        404: {"description": "Unknown model"},
        400: {"description": f"Malformed {EVENT_TIME_HEADER}"},
        422: {"description": "Invalid labels (or body not valid JSON): each problem names the label index"},
        503: {"description": "Capture is disabled on this server"},
    },
)
def feedback(
    model: str,
    request: Request,
    body: FeedbackRequest,
    event_time_header: Annotated[str | None, EVENT_TIME_PARAM] = None,
) -> JSONResponse:
    state = state_of(request)
    slot = state.slot(model)
    instant = event_time_of(state, event_time_header, None, token_checked=True)  # the route already requires the token
    writer, limit = state.writer, state.options.max_feedback
    if writer is None:
        raise HTTPException(503, "capture is disabled on this server (MODELOPS_CAPTURE_ENABLED=false)")
    if len(body.labels) > limit:
        return refuse(
            "too_long", ["body", "labels"], f"{len(body.labels)} labels exceed the limit of {limit} per request: split them", field="labels"
        )  # fmt: skip
    received_at = instant or dt.datetime.now(dt.UTC)
    problems, rows = label_rows(slot, model, body.labels, received_at)
    if problems:
        return invalid_response(RequestInvalid(problems))
    writer.enqueue(FEEDBACK, model, received_at.date(), rows, slot.feedback_schema)
    return JSONResponse(
        {"model": model, "accepted": len(rows), "received_at": received_at.isoformat()}, status_code=202
    )


def label_rows(
    slot: ModelSlot, model: str, labels: list[FeedbackLabel], received_at: dt.datetime
) -> tuple[list[dict], list[dict]]:
    """The problems with ``labels`` and the feedback rows they make (classes as their text)."""
    config, loaded = slot.config, slot.current
    known = {category_text(c) for c in loaded.classes} if loaded and loaded.classes is not None else None
    problems, rows = [], []
    for index, item in enumerate(labels):
        loc = ["body", "labels", index, "label"]
        label: Any
        if config.is_classifier:
            label = category_text(item.label)
            if known is not None and label not in known:
                problems.append(
                    problem("unknown_class", loc, f"label {item.label!r} is not one of the model's classes {loaded.classes}", field="label", index=index)
                )  # fmt: skip
        else:
            if isinstance(item.label, bool) or not isinstance(item.label, int | float) or not math.isfinite(item.label):
                problems.append(
                    problem("wrong_type", loc, f"'{config.target}' is a regression target: send a finite number, got {describe_value(item.label)}", field="label", index=index)
                )  # fmt: skip
                continue
            label = float(item.label)
        rows.append(
            {
                "request_id": item.request_id,
                "record_index": item.record_index,
                "label": label,
                "received_at": received_at,
                "model": model,
            }
        )
    return problems, rows
