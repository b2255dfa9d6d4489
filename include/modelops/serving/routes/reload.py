"""``POST /models/{model}/reload`` (bearer token): load the champion or a given version, swap it in.

One reload per model at a time, in a worker thread; predictions go on meanwhile and requests in
flight finish on the version they started with. A failed load leaves the old version serving.
With several serving workers the request reaches one of them; the others follow the ``champion``
alias by themselves (:meth:`~modelops.serving.state.ServingState.follow_champions`). A version
loaded here by number stays on this worker until the alias next moves.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from modelops.serving.auth import require_token
from modelops.serving.champion import LoadedModel, ModelSlot, NoChampion, VersionNotFound
from modelops.serving.problems import refuse
from modelops.serving.schemas import ReloadRequest, ReloadResponse
from modelops.serving.state import ServingState, state_of

log = logging.getLogger(__name__)

router = APIRouter()


@router.post(
    "/models/{model}/reload",
    response_model=ReloadResponse,
    summary="Load the champion (or a given version) and swap it in without dropping requests",
    dependencies=[Depends(require_token)],
    responses={
        401: {"description": "No bearer token"},
        403: {"description": "Wrong token, or no token configured on the server"},
        404: {"description": "Unknown model or version"},
        409: {"description": "The model has no champion"},
        503: {"description": "Loading failed (registry or artifact store unreachable); the old version keeps serving"},
    },
)
def reload(model: str, request: Request, body: Annotated[ReloadRequest | None, Body()] = None) -> dict:
    state = state_of(request)
    slot = state.slots.get(model) or state.discover(model) or state.slot(model)
    version = None
    if body is not None and body.version is not None:
        version = str(body.version).strip()
        if not version.isdigit():
            return refuse(
                "value_error", ["body", "version"], f"version must be a number like \"3\", got {body.version!r}", field="version"
            )  # fmt: skip
    # One reload per model at a time; predictions go on meanwhile (this runs in a worker thread).
    with slot.reload_lock:
        old = slot.current
        start = time.perf_counter()
        new = _load(state, slot, model, version, old)
        slot.current = new  # the swap
        slot.reason, slot.retry_at, slot.retry_delay = None, None, 0.0
        if version is None:  # loaded through the alias: this worker has seen where it points
            slot.alias_seen = new.version
    log.info(
        "%s: worker %s swapped version %s -> %s", model, state.worker.id, old.version if old else None, new.version
    )
    state.on_served_change()
    return {
        "model": model,
        "worker": state.worker.id,
        "old_version": old.version if old else None,
        "new_version": new.version,
        "changed": old is None or old.version != new.version,
        "alias": new.alias,
        "model_uri": new.model_uri,
        "run_id": new.run_id,
        "loaded_at": new.loaded_at.isoformat(),
        "load_seconds": round(time.perf_counter() - start, 3),
        "scoring_path": new.scoring_path,
    }


def _load(
    state: ServingState, slot: ModelSlot, model: str, version: str | None, old: LoadedModel | None
) -> LoadedModel:
    """The loaded version, or the HTTP error that says why not (409, 404, 503)."""
    try:
        return state.load(slot, version)
    except NoChampion as exc:
        raise HTTPException(409, str(exc)) from None
    except VersionNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Exception as exc:
        log.exception("%s: reload failed; version %s keeps serving", model, old.version if old else None)
        raise HTTPException(
            503, f"loading model '{model}' failed: {exc}; " + (f"version {old.version} keeps serving" if old else "still not loaded")
        ) from None  # fmt: skip
