"""Shadow deployment: put a version that passed the gate beside the champion, or end its shadow.

A shadow is the registry alias ``shadow`` (one per model). Serving follows it like ``champion``
(:mod:`modelops.serving.shadow`): every request is also scored by the shadow, off the response
path, into ``shadow/<model>/``. Starting one moves the alias, asks serving to follow it now and
waits until every live worker's heartbeat says it scores it. Its life is written into the decision
record of the run that registered the version (``shadow``: started, ended, why), so "this version
was shadowed and not promoted" stays on record, and into the alias history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from modelops import decision_record, registry
from modelops.config import ModelConfig
from modelops.deploy import scoring_path
from modelops.deploy.convergence import wait_for_workers
from modelops.deploy.serving_client import DeployError, reload_shadow
from modelops.layout import decision_record_key
from modelops.records import Record
from modelops.run_params import DEPLOY_MODES
from modelops.store import Store

log = logging.getLogger(__name__)

#: What ``deploy_<model>``'s ``mode`` param may ask for (defined with the other trigger params).
MODES = DEPLOY_MODES
#: How a shadow ended (its decision record's ``shadow.status``).
RUNNING, PROMOTED, ENDED, REPLACED = "running", "promoted", "ended", "replaced"


class ShadowRefused(DeployError):
    """The version may not shadow (it is the champion, or the gate did not pass it); the message says why."""


@dataclasses.dataclass(frozen=True)
class ShadowResult(Record):
    """What starting or ending a shadow did: the shadow now, the one before, and the serving workers."""

    model: str
    shadow: str | None
    previous_shadow: str | None
    champion: str | None
    workers_confirmed: list[str] = dataclasses.field(default_factory=list)
    workers_note: str | None = None
    gate_run_id: str | None = None


def gate_record(model: str, version: Any, store: Store) -> tuple[str, dict]:
    """The run id and decision record of the retrain run that registered ``version`` (a ModelVersion);
    :class:`ShadowRefused` when there is none or its gate did not pass."""
    run_id = (version.tags or {}).get("airflow_run_id")
    record = decision_record.load(store, model, run_id) if run_id else None
    if record is None:
        raise ShadowRefused(
            f"model '{model}' version {version.version} has no gate decision (no decision record for run "
            f"{run_id!r}): only a version that passed the gate of retrain_{model} can shadow"
        )
    if not record.get("promote"):
        reasons = "; ".join(record.get("reasons") or []) or "no reason recorded"
        raise ShadowRefused(f"the gate refused model '{model}' version {version.version} (run {run_id}): {reasons}")
    return run_id, record


def _record_life(model: str, registered: Any, store: Store, **fields) -> None:
    """Merge ``fields`` into ``shadow`` of the decision record of the run that registered ``registered``
    (a ModelVersion)."""
    run_id = (registered.tags or {}).get("airflow_run_id")
    key = decision_record_key(model, run_id) if run_id else None
    if key is None or not store.exists(key):
        return
    record = store.get_json(key)
    record["shadow"] = {**(record.get("shadow") or {}), **fields}
    store.put_json(key, record)


def start_shadow(model: ModelConfig, version: str, *, actor: str, run_id: str, store: Store | None = None) -> dict:
    """Point ``shadow`` at ``version`` (a gated challenger), have serving score it, record it."""
    store = store or Store()
    client = registry.client()
    name = model.name
    target = client.get_model_version(name, str(version))
    champion = registry.version_for_alias(name, registry.CHAMPION, client)
    if champion is not None and str(champion.version) == str(version):
        raise ShadowRefused(f"model '{name}' version {version} is the champion: a shadow must be a challenger")
    gate_run_id, _ = gate_record(name, target, store)
    # As for a champion: the compiled form scores the shadow when it answers as the pipeline does,
    # so the second model call per request costs as little as the first.
    verdict = scoring_path.parity_gate(model, str(version), store, client)
    before = registry.version_for_alias(name, registry.SHADOW, client)
    now = dt.datetime.now(dt.UTC).isoformat()
    if before is not None and str(before.version) != str(version):
        _record_life(name, before, store, status=REPLACED, ended_at=now, ended_by=actor, end_reason=f"replaced by version {version}")  # fmt: skip
    registry.set_alias(
        name, registry.SHADOW, str(version), reason=f"shadow beside champion {champion.version if champion else None}",
        actor=actor, store=store, mlflow_client=client, extra={"airflow_run_id": run_id},
    )  # fmt: skip
    _record_life(
        name, target, store, status=RUNNING, version=str(version), started_at=now, started_by=actor,
        deploy_run_id=run_id, champion_at_start=str(champion.version) if champion else None,
    )  # fmt: skip
    result = _follow(name, str(version), before, champion, store, gate_run_id)
    return result | {"scoring_path": verdict.to_json()}


def end_shadow(
    model: ModelConfig, *, reason: str, actor: str, run_id: str, status: str = ENDED, store: Store | None = None
) -> dict:
    """Unset ``shadow`` (recorded with ``reason`` and ``status``), and have serving stop scoring it."""
    store = store or Store()
    client = registry.client()
    name = model.name
    before = registry.version_for_alias(name, registry.SHADOW, client)
    champion = registry.version_for_alias(name, registry.CHAMPION, client)
    if before is None:
        log.info("%s has no shadow: nothing to end", name)
        return ShadowResult(name, None, None, str(champion.version) if champion else None, workers_note="no shadow").to_json()  # fmt: skip
    registry.remove_alias(
        name, registry.SHADOW, reason=f"shadow {status}: {reason}", actor=actor, store=store, mlflow_client=client,
        extra={"airflow_run_id": run_id},
    )  # fmt: skip
    _record_life(
        name, before, store, status=status, ended_at=dt.datetime.now(dt.UTC).isoformat(), ended_by=actor, end_reason=reason
    )  # fmt: skip
    return _follow(name, None, before, champion, store, (before.tags or {}).get("airflow_run_id"))


def _follow(name: str, version: str | None, before: Any, champion: Any, store: Store, gate_run_id: str | None) -> dict:
    """Ask serving to follow the alias now and wait until every live worker does; the result."""
    reply = reload_shadow(name)
    if reply.get("shadow") != version:
        raise DeployError(
            f"serving scores shadow {reply.get('shadow')} of '{name}' after the reload, expected {version}"
        )
    workers = wait_for_workers(name, version, store, field="shadow")
    if not workers.converged:
        raise DeployError(f"shadow of '{name}': {workers.failure(name)} (they follow the alias at their next poll)")
    return ShadowResult(
        model=name,
        shadow=version,
        previous_shadow=str(before.version) if before is not None else None,
        champion=str(champion.version) if champion is not None else None,
        workers_confirmed=workers.confirmed,
        workers_note=workers.note,
        gate_run_id=gate_run_id,
    ).to_json()
