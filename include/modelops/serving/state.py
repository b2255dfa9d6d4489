"""What the routes share (``app.state.serving``): the model slots, options, capture writer, metrics.

It also owns the champions' life cycle outside requests: loading them at start, retrying a load
that failed (registry or artifact store unreachable) in the background, adding a model declared
after start so its first deploy needs no restart, and following the ``champion`` alias: with
several workers a reload request reaches one of them, so each worker also swaps in the version
the alias moved to by itself (:meth:`ServingState.follow_champions`, run every poll interval by
:mod:`modelops.serving.follower`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from modelops import registry
from modelops import settings as _settings
from modelops.config import NAME_PATTERN, ConfigError, ModelConfig, get_model, models_dir
from modelops.serving import shadow
from modelops.serving.capture import CaptureWriter
from modelops.serving.champion import UNSEEN, LoadedModel, ModelSlot, NoChampion, load_model_version
from modelops.serving.heartbeat import WorkerIdentity
from modelops.serving.options import ServingOptions
from modelops.serving.prometheus import Metrics
from modelops.serving.scoring import Batcher
from modelops.serving.shadow import ShadowRunner
from modelops.serving.shadow_process import ShadowProcess
from modelops.store import Store

log = logging.getLogger(__name__)


class ServingState:
    """Everything the routes share; ``app.state.serving``."""

    def __init__(
        self,
        settings: _settings.Settings,
        configs: Mapping[str, ModelConfig],
        options: ServingOptions,
        writer: CaptureWriter | None,
        discover_models: bool = False,
    ):
        self.settings = settings
        self.options = options
        self.slots = {name: ModelSlot(config) for name, config in sorted(configs.items())}
        #: Models served, shared with the metrics middleware (labels stay bounded to these).
        self.model_names = set(self.slots)
        #: Declared-after-start models are picked up on reload when serving reads the models folder.
        self.discover_models = discover_models
        self._discover_lock = threading.Lock()
        self.writer = writer
        self.metrics = Metrics()
        #: This process among the serving workers (``X-Modelops-Worker``, ``/health``, its heartbeat).
        self.worker = WorkerIdentity()
        #: Called (from any thread) when what this worker serves changed: the follower writes its heartbeat.
        self.on_served_change: Callable[[], None] = lambda: None
        self._registry_client: Any = None
        #: Model calls run here (one per model at a time); created and shut down by the lifespan.
        self.executor: ThreadPoolExecutor | None = None
        #: Scores each model's ``shadow`` version off the response path (serving/shadow.py).
        process = None
        if options.shadow_isolation == "process" and options.shadow_enabled:
            process = functools.partial(
                ShadowProcess,
                settings=settings,
                capture_options=options.capture if writer is not None else None,
                scoring_path=options.scoring_path,
                max_lag_seconds=options.shadow_max_lag_seconds,
                gather_seconds=options.shadow_gather_ms / 1000,
                cpus=options.shadow_cpus,
                max_pending=options.shadow_max_pending,
                on_loaded=lambda: self.on_served_change(),
            )
        self.shadow = ShadowRunner(
            writer,
            max_pending=options.shadow_max_pending,
            max_lag_seconds=options.shadow_max_lag_seconds,
            process=process,
        )
        for slot in self.slots.values():
            slot.batcher = Batcher(slot, self)

    def slot(self, model: str) -> ModelSlot:
        slot = self.slots.get(model)
        if slot is None:
            raise HTTPException(404, f"unknown model '{model}'; this server serves {sorted(self.slots)}")
        return slot

    def discover(self, model: str) -> ModelSlot | None:
        """A model declared after the server started (its YAML now in the models folder): add its
        slot, so the first deploy of a new model needs no serving restart. None if not declared."""
        if not self.discover_models or not NAME_PATTERN.match(model):
            return None
        with self._discover_lock:
            if model in self.slots:
                return self.slots[model]
            try:
                config = get_model(model)
            except ConfigError as exc:
                log.info("reload of undeclared model '%s': %s", model, exc)
                return None
            if config.name != model:
                return None
            slot = ModelSlot(config)
            slot.batcher = Batcher(slot, self)
            self.slots = {**self.slots, model: slot}  # readers iterate a complete dict, old or new
            self.model_names.add(model)
            log.info("%s: newly declared model added (no restart needed)", model)
            return slot

    def load(self, slot: ModelSlot, version: str | None = None) -> LoadedModel:
        return load_model_version(
            slot.config, self.settings.mlflow_tracking_uri, version, scoring=self.options.scoring_path
        )

    def load_all(self) -> None:
        """Load every champion; a model without one (or failing to load) stays "not loaded"."""
        for slot in self.slots.values():
            self._load_champion(slot)
        self.follow_shadows()

    def follow_shadows(self) -> list[str]:
        """Load, swap or drop each model's shadow where the ``shadow`` alias moved (never raises)."""
        if not self.options.shadow_enabled:
            return []
        try:
            return shadow.follow_shadows(self)
        except Exception:  # noqa: BLE001 - a shadow problem must not stop serving the champion
            log.exception("following the shadow aliases failed")
            return []

    def _load_champion(self, slot: ModelSlot) -> bool:
        name = slot.config.name
        try:
            loaded = self.load(slot)
        except NoChampion as exc:
            slot.reason, slot.retry_at, slot.alias_seen = "no champion is registered yet", None, None
            log.warning("%s", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - one broken model must not stop the others
            retry = self.options.load_retry_seconds
            slot.reason = f"loading the champion failed: {exc}"
            if retry > 0:
                slot.retry_delay = min(300.0, slot.retry_delay * 2 if slot.retry_delay else retry)
                slot.retry_at = time.monotonic() + slot.retry_delay
                slot.reason += f" (next attempt in {slot.retry_delay:.0f} s)"
            log.exception("%s: loading the champion failed; retried in the background, or POST /models/%s/reload", name, name)  # fmt: skip
            return False
        slot.current, slot.reason, slot.retry_at, slot.retry_delay = loaded, None, None, 0.0
        slot.alias_seen = loaded.version
        log.info("%s: serving version %s (%s)", name, loaded.version, loaded.model_uri)
        self.on_served_change()
        return True

    def retry_failed_loads(self) -> list[str]:
        """One pass: load the champions whose earlier load failed and whose retry time has come.
        A reload in progress wins (the slot is skipped); a model loaded meanwhile is left alone."""
        loaded = []
        for name, slot in list(self.slots.items()):
            if slot.retry_at is None or time.monotonic() < slot.retry_at:
                continue
            if not slot.reload_lock.acquire(blocking=False):
                continue
            try:
                if slot.current is not None:
                    slot.retry_at = None
                elif self._load_champion(slot):
                    loaded.append(name)
            finally:
                slot.reload_lock.release()
        return loaded

    # Following the champion alias (several workers; see modelops.serving.follower) ---------------
    def champion_target(self, model: str) -> tuple[str | None, str]:
        """Where ``champion`` points now and the scoring path its tags ask for (one cheap registry
        call); ``(None, "pipeline")`` when unset."""
        from modelops.serving.compiled import PIPELINE, path_of_tags

        version = self._alias(model, registry.CHAMPION)
        return (None, PIPELINE) if version is None else (str(version.version), path_of_tags(version.tags)[0])

    def alias_version(self, model: str, alias: str) -> str | None:
        """Where ``alias`` points now (one cheap registry call), None when unset."""
        version = self._alias(model, alias)
        return None if version is None else str(version.version)

    def _alias(self, model: str, alias: str):
        if self._registry_client is None:
            from mlflow.tracking import MlflowClient

            self._registry_client = MlflowClient(tracking_uri=self.settings.mlflow_tracking_uri)
        return registry.version_for_alias(model, alias, self._registry_client)

    def follow_champions(self) -> list[str]:
        """One pass: for each model whose ``champion`` moved since this worker last looked, load the
        version it points at and swap it in. A reload in progress wins (the model is looked at again
        next pass); a version loaded by an explicit reload stays until the alias moves again.

        The served version is also loaded again when its scoring-path tag changed since it was
        loaded: a deploy's parity gate tags the version after the alias moved, and a worker that
        followed the alias in between would otherwise keep the pipeline."""
        self.discover_declared()
        swapped = []
        for name, slot in list(self.slots.items()):
            try:
                version, tagged = self.champion_target(name)
            except Exception as exc:  # noqa: BLE001 - registry unreachable: keep serving, look next pass
                log.warning("%s: could not read the champion alias: %s", name, exc)
                continue
            retagged = (
                slot.current is not None and slot.current.version == version and slot.current.tagged_path != tagged
            )
            if (version == slot.alias_seen and not retagged) or not slot.reload_lock.acquire(blocking=False):
                continue
            try:
                if self._follow(slot, version, tagged):
                    swapped.append(name)
            finally:
                slot.reload_lock.release()
        return swapped

    def _follow(self, slot: ModelSlot, version: str | None, tagged: str | None = None) -> bool:
        """The alias moved to ``version`` (tagged for the ``tagged`` scoring path): swap it in unless
        it already serves as tagged. True when swapped."""
        name, seen, current = slot.config.name, slot.alias_seen, slot.current
        if version is None:
            slot.alias_seen = None
            if current is None:
                slot.reason, slot.retry_at = "no champion is registered yet", None
            elif seen is not UNSEEN:
                log.warning("%s: the champion alias was removed; version %s keeps serving", name, current.version)
            return False
        if current is not None and current.version == version and tagged in (None, current.tagged_path):
            slot.alias_seen = version
            return False
        try:
            loaded = dataclasses.replace(self.load(slot, version), alias=registry.CHAMPION)
        except Exception:  # noqa: BLE001 - the old version keeps serving; tried again next pass
            log.exception("%s: champion moved to version %s but loading it failed; %s keeps serving", name, version, current and current.version)  # fmt: skip
            return False
        slot.current = loaded  # the swap
        slot.reason, slot.retry_at, slot.retry_delay, slot.alias_seen = None, None, 0.0, version
        log.info(
            "%s: champion alias moved %s -> %s: worker %s swapped version %s -> %s (%s path)",
            name, None if seen is UNSEEN else seen, version, self.worker.id, current and current.version, version,
            loaded.scoring_path,
        )  # fmt: skip
        self.on_served_change()
        return True

    def discover_declared(self) -> None:
        """Add the models declared since start (a reload reaches one worker; the others find them here)."""
        if not self.discover_models:
            return
        for path in sorted(models_dir().glob("*.y*ml")):
            if path.stem not in self.slots and NAME_PATTERN.match(path.stem):
                self.discover(path.stem)

    def served(self) -> dict[str, dict[str, Any]]:
        """Per model, the version this worker serves and the alias it was loaded by (its heartbeat),
        and the shadow version once it scores (in the shadow process: once the child loaded it)."""
        return {
            name: {"version": slot.current.version if slot.current else None, "alias": slot.current.alias if slot.current else None}
            | ({"tagged_path": slot.current.tagged_path} if slot.current else {})
            | ({"shadow": slot.shadow.version} if slot.shadow and self.shadow.ready(name, slot.shadow.version) else {})
            for name, slot in self.slots.items()
        }  # fmt: skip


async def retry_failed_loads_forever(state: ServingState) -> None:
    """Background task of the lifespan: a champion that could not be loaded at start (MLflow or S3
    unreachable) is served as soon as a retry succeeds, without a reload call or a restart."""
    while True:
        await asyncio.sleep(min(1.0, state.options.load_retry_seconds))
        if any(slot.retry_at is not None for slot in state.slots.values()):
            for name in await run_in_threadpool(state.retry_failed_loads):
                log.info("%s: champion loaded on retry", name)


def default_store(settings: _settings.Settings) -> Store:
    import boto3
    from botocore.config import Config

    # Short timeouts: the writer thread retries on its own schedule, and shutdown must not hang.
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
    return Store(bucket=settings.bucket, client=boto3.client("s3", config=config, **settings.boto3_kwargs()))


def state_of(request: Request) -> ServingState:
    """The :class:`ServingState` of the app serving ``request`` (set by ``create_app``)."""
    return request.app.state.serving
