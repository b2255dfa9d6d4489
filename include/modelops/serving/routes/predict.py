"""``POST /models/{model}/predict``: the hot path, from request bytes to a scored JSON answer.

The body is read and checked here column by column (:func:`~modelops.serving.columns.check_records`),
not by a pydantic model per row, then queued on the model's batcher; only a request with a
problem takes the row-by-row path that words the 422.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from modelops.serving.auth import EVENT_TIME_HEADER, EVENT_TIME_PARAM, event_time_of
from modelops.serving.columns import check_records
from modelops.serving.heartbeat import WORKER_HEADER
from modelops.serving.problems import RequestInvalid, invalid_response
from modelops.serving.schemas import PredictRequest, PredictResponse
from modelops.serving.scoring import PendingPrediction
from modelops.serving.state import state_of
from modelops.serving.validation import parse_json_body, records_of_body

log = logging.getLogger(__name__)

router = APIRouter()


@router.post(
    "/models/{model}/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    summary="Score one record or a batch",
    responses={
        400: {"description": f"Malformed {EVENT_TIME_HEADER}"},
        403: {"description": f"{EVENT_TIME_HEADER} sent to a server that does not accept it, or without the bearer token"},
        404: {"description": "Unknown model"},
        422: {"description": "Invalid request (or body not valid JSON): each problem names the record index and the field"},
        503: {"description": "The model has no champion loaded"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
        }
    },
)  # fmt: skip
async def predict(
    model: str, request: Request, event_time_header: Annotated[str | None, EVENT_TIME_PARAM] = None
) -> Response:
    state = state_of(request)
    slot = state.slot(model)
    instant = event_time_of(state, event_time_header, request.headers.get("authorization"), token_checked=False)
    try:
        body = parse_json_body(await request.body(), request.headers.get("content-type"))
        records, location = records_of_body(body, state.options.max_batch)
        columns = check_records(slot.config, slot.spec, records, location)
    except RequestInvalid as exc:
        return invalid_response(exc)
    if slot.current is None:
        raise HTTPException(503, slot.unavailable())
    request_id = uuid.uuid4().hex
    outcome = await slot.batcher.submit(PendingPrediction(columns, location, request_id, instant))
    if isinstance(outcome, HTTPException):
        raise outcome
    if isinstance(outcome, RequestInvalid):
        return invalid_response(outcome)
    headers = {"X-Request-ID": request_id, WORKER_HEADER: state.worker.id}
    return Response(outcome.body, media_type="application/json", headers=headers)
