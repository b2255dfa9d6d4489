"""The serving endpoint assembled: each configured model's champion behind one FastAPI app.

Endpoints (OpenAPI at ``/openapi.json``, docs at ``/docs``):

* ``GET /health``: liveness, which models are loaded, and which worker answered.
* ``GET /models``: per model: version, run id, model URI, load time, features.
* ``POST /models/{model}/predict``: ``{"records": [{...}, ...]}`` or ``{"record": {...}}``
  (the ``X-Modelops-Worker`` response header names the worker that answered).
* ``POST /models/{model}/reload`` (bearer token): load the champion (or ``{"version": "N"}``)
  and swap it in; requests in flight finish on the model they started with.
* ``POST /models/{model}/shadow/reload`` (bearer token): follow the ``shadow`` alias now.
* ``POST /models/{model}/feedback`` (bearer token): ground-truth labels by request id.
* ``GET /metrics``: Prometheus text format.

This module only assembles: the routes live in :mod:`modelops.serving.routes`, what they share
in :mod:`.state`, request checks in :mod:`.validation` and :mod:`.columns`, model calls in
:mod:`.scoring`, loading in :mod:`.champion`, capture to S3 in :mod:`.capture`, following the
champion alias and heartbeats in :mod:`.follower`. It runs only in the serving process (never
imported by DAG files). Every worker process builds its own app (``create_app`` is the uvicorn
factory): its own models, capture buffer (files keyed by a fresh uuid4 each, so workers never
overwrite each other's), metrics and worker id.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from modelops import settings as _settings
from modelops.config import ModelConfig, load_all_models
from modelops.serving import cpus
from modelops.serving.capture import CaptureWriter
from modelops.serving.follower import ChampionFollower
from modelops.serving.options import ServingOptions
from modelops.serving.prometheus import MetricsMiddleware
from modelops.serving.routes import feedback, predict, reload, shadow, status
from modelops.serving.state import ServingState, default_store, retry_failed_loads_forever

log = logging.getLogger(__name__)


def create_app(
    settings: _settings.Settings | None = None,
    models: Mapping[str, ModelConfig] | Iterable[ModelConfig] | None = None,
    *,
    options: ServingOptions | None = None,
    store: Any = None,
) -> FastAPI:
    """The serving app for ``models`` (default: every file in ``include/models/``).

    ``settings`` default to the environment (:func:`modelops.settings.load`), ``options`` to
    ``MODELOPS_SERVING_*`` / ``MODELOPS_CAPTURE_*``; ``store`` (a :class:`~modelops.store.Store`)
    to the settings' bucket. Models load and the capture thread starts in the lifespan (startup),
    and the capture buffer is flushed at shutdown.
    """
    settings = settings or _settings.load()
    options = options or ServingOptions.from_env()
    if models is None:
        configs = load_all_models()
    elif isinstance(models, Mapping):
        configs = dict(models)
    else:
        configs = {config.name: config for config in models}
    if store is None and (options.capture_enabled or options.alias_poll_seconds > 0):
        store = default_store(settings)
    writer = CaptureWriter(store, options.capture) if options.capture_enabled else None
    state = ServingState(settings, configs, options, writer, discover_models=models is None)
    follower = ChampionFollower(state, store, options.alias_poll_seconds) if options.alias_poll_seconds > 0 else None

    app = FastAPI(
        title="modelops serving",
        version="1",
        summary="Champion models from the MLflow registry, with validated requests and traffic capture.",
        lifespan=_lifespan,
    )
    app.state.serving = state
    app.state.follower = follower
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, models=state.model_names)
    for router in (status.router, predict.router, reload.router, shadow.router, feedback.router, status.metrics_router):
        app.include_router(router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Start: the model-call threads, the capture writer, the champions, the champion follower.
    Stop: the follower (its heartbeat deleted), drain, then flush capture."""
    state: ServingState = app.state.serving
    follower: ChampionFollower | None = app.state.follower
    writer = state.writer
    # Room for models declared after start, too (see ServingState.discover).
    state.executor = ThreadPoolExecutor(max(4, len(state.slots)), thread_name_prefix="modelops-predict")
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(state.options.gil_switch_ms / 1000)
    # A shadow process with CPUs of its own: this worker runs on the others (serving/cpus.py).
    unpinned = cpus.pin_worker(state.options.shadow_cpus if state.shadow.isolation == "process" else frozenset())
    if writer is not None:
        writer.start()
    await run_in_threadpool(state.load_all)
    # What start-up made (libraries, models) lives as long as the worker: out of the collector's
    # generations, so a full collection walks only what requests allocate, not millions of
    # long-lived objects (a pause of ~100 ms each, measured as the paced p99 of benchmarks/serving_shadow.py).
    gc.collect()
    gc.freeze()
    retrying = None
    if state.options.load_retry_seconds > 0:
        retrying = asyncio.create_task(retry_failed_loads_forever(state))
    if follower is not None:
        follower.start()
    log.info("serving worker %s started (pid %d)", state.worker.id, state.worker.pid)
    yield
    if retrying is not None:
        retrying.cancel()
    if follower is not None:
        await run_in_threadpool(follower.stop)
    # Requests in flight have finished (uvicorn drains them first); their capture rows are queued.
    state.executor.shutdown(wait=True)
    await run_in_threadpool(state.shadow.close)  # its rows reach the writer before the flush below
    if writer is not None:
        await run_in_threadpool(writer.close)
    sys.setswitchinterval(switch_interval)
    if unpinned:
        cpus.pin_threads(unpinned)
    log.info("serving worker %s stopped", state.worker.id)
