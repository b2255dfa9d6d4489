"""Read-only routes: liveness (``/health``), what is served (``/models``), and ``/metrics``.

These are what load balancers, dashboards and Prometheus poll; they never touch a model.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from modelops.serving.state import state_of

log = logging.getLogger(__name__)

router = APIRouter()
#: Included last, after the model routes (the order of the OpenAPI document).
metrics_router = APIRouter()

_CAPTURE_HEALTH = ("pending", "max_buffered", "written", "dropped", "write_failures", "writer_cpu_seconds")


@router.get("/health", summary="Liveness and which models are loaded")
def health(request: Request) -> dict:
    state = state_of(request)
    models_state = {
        name: {"loaded": slot.current is not None}
        | (
            {"version": slot.current.version, "scoring_path": slot.current.scoring_path}
            if slot.current
            else {"reason": slot.reason}
        )
        | ({"shadow": slot.shadow.version} if slot.shadow else {})
        for name, slot in state.slots.items()
    }
    capture = None
    if state.writer is not None:
        stats = state.writer.stats()
        capture = {k: stats[k] for k in _CAPTURE_HEALTH}
    return {
        "status": "ok",
        "ready": all(slot.current is not None for slot in state.slots.values()),
        "worker": state.worker.describe(),
        "models": models_state,
        "capture": capture,
        "shadow": state.shadow.stats(),
    }


@router.get("/models", summary="Configured models and the version serving each")
def list_models(request: Request) -> dict:
    return {"models": [slot.describe() for slot in state_of(request).slots.values()]}


@metrics_router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(request: Request) -> PlainTextResponse:
    state = state_of(request)
    text = state.metrics.render(state.slots, state.writer.stats() if state.writer is not None else None)
    text += state.shadow.render()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
