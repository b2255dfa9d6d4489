"""``POST /models/{model}/shadow/reload`` (bearer token): follow the ``shadow`` alias now.

Every worker's follower does the same each ``alias_poll_seconds``; deployment calls this so the
worker it reaches scores the shadow at once (and says which version) instead of at its next poll.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, Request

from modelops import registry
from modelops.serving import shadow
from modelops.serving.auth import require_token
from modelops.serving.state import state_of

log = logging.getLogger(__name__)

router = APIRouter()


@router.post(
    "/models/{model}/shadow/reload",
    summary="Load the version the shadow alias points at (or drop the shadow when it is unset)",
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "No bearer token"},
        403: {"description": "Wrong token, or no token configured on the server"},
        404: {"description": "Unknown model"},
        409: {"description": "Shadow scoring is off on this worker"},
        503: {
            "description": "The registry could not be read, or the shadow version did not load (here or in the shadow process)"
        },
    },
)
def reload_shadow(model: str, request: Request) -> dict:
    state = state_of(request)
    slot = state.slots.get(model) or state.discover(model) or state.slot(model)
    if not state.options.shadow_enabled:
        raise HTTPException(409, "shadow scoring is off on this worker (MODELOPS_SERVING_SHADOW_ENABLED=false)")
    try:
        version = state.alias_version(model, registry.SHADOW)
    except Exception as exc:  # noqa: BLE001 - say why, keep serving
        raise HTTPException(503, f"could not read the shadow alias of '{model}': {exc}") from None
    with slot.reload_lock:
        old = slot.shadow
        shadow.follow_shadow(state, slot, version)
        new = slot.shadow
    if version is not None and new is None and (slot.current is None or slot.current.version != version):
        raise HTTPException(503, f"shadow version {version} of '{model}' did not load (see the serving log)")
    if new is not None:  # answered once the shadow scores (in the shadow process: once the child loaded it)
        problem = state.shadow.wait_ready(model, new.version)
        if problem:
            raise HTTPException(503, problem)
    state.on_served_change()
    return {
        "model": model,
        "worker": state.worker.id,
        "champion": slot.current.version if slot.current else None,
        "old_shadow": old.version if old else None,
        "shadow": new.version if new else None,
    }
