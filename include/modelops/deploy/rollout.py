"""Rollout: load a version into serving, prove it answers (the post-deploy check), and roll back
when it does not.

A failed check moves ``champion`` back to ``previous-champion``, reloads serving, and records both
in the run's decision record and the alias history. What both ``retrain_<model>`` (after
promotion) and ``deploy_<model>`` run; ``rollback_<model>`` runs :func:`rollback` alone.

With several serving workers the reload reaches one; the others follow the ``champion`` alias.
So after a reload (deploy or rollback) the rollout waits until every live worker's heartbeat
reports the version (:mod:`.convergence`): a worker that does not within the bound fails the
deploy (and the rollback runs); a rollback records which workers confirmed the version it
restored, and which did not.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from modelops import registry
from modelops.config import ModelConfig
from modelops.deploy import scoring_path
from modelops.deploy.convergence import WorkerConvergence, WorkersDidNotConverge, wait_for_workers
from modelops.deploy.serving_client import DeployError, reload_serving
from modelops.deploy.verification import PostDeployCheckFailed, post_deploy_check, recent_rows_of_version
from modelops.layout import decision_record_key
from modelops.records import Record
from modelops.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "DeployError",
    "DeployResult",
    "PostDeployCheckFailed",
    "Rollback",
    "WorkersDidNotConverge",
    "converged_or_raise",
    "deploy_and_verify",
    "rollback",
]


@dataclasses.dataclass(frozen=True)
class DeployResult(Record):
    """A deployed and checked version: what ``deploy_version`` and the retrain ``deploy`` task return."""

    version: str
    previous_served: str | None
    smoke_test: dict[str, Any]
    #: The parity gate's verdict: ``path`` (compiled or pipeline), ``reason``, rows and max difference.
    scoring_path: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Rollback(Record):
    """Where ``champion`` points after a rollback, what it pointed at before, what serving runs."""

    champion: str
    rolled_back_from: str | None
    serving: str | None
    #: The serving workers whose heartbeat reported the restored version, and those that did not in time.
    workers_confirmed: list[str] = dataclasses.field(default_factory=list)
    workers_lagging: dict[str, str | None] = dataclasses.field(default_factory=dict)
    workers_note: str | None = None
    #: The alias-history entry of the move (kept out of XCom and decision records).
    event: dict[str, Any] = dataclasses.field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_json().items() if k != "event"}


def rollback(
    model: str, *, reason: str, actor: str, run_id: str, to_version: str | None = None, store: Store | None = None
) -> Rollback:
    """Point ``champion`` at ``to_version`` (default: ``previous-champion``) and reload serving."""
    store = store or Store()
    if to_version is None:
        previous = registry.version_for_alias(model, registry.PREVIOUS)
        to_version = previous.version if previous else None
    target = to_version
    if target is None:
        raise DeployError(
            f"model '{model}' has no previous-champion to roll back to; the champion alias was left as it is"
        )
    current = registry.version_for_alias(model, registry.CHAMPION)
    # Recorded even when the champion already is the target: who asked for what, and why.
    event = registry.set_alias(
        model, registry.CHAMPION, str(target), reason=f"rollback: {reason}", actor=actor, store=store,
        extra={"airflow_run_id": run_id, "rolled_back_from": current.version if current else None},
    )  # fmt: skip
    reloaded = reload_serving(model, str(target))
    workers = wait_for_workers(model, str(target), store)
    return Rollback(
        champion=str(target),
        rolled_back_from=current.version if current else None,
        serving=reloaded.get("new_version"),
        workers_confirmed=workers.confirmed,
        workers_lagging=workers.lagging,
        workers_note=workers.note,
        event=event,
    )


def _not_everywhere_hint(model: str, version: str) -> str:
    """Why workers would never converge on a version that is not the champion, and what to do."""
    try:
        champion = registry.version_for_alias(model, registry.CHAMPION)
    except Exception:  # noqa: BLE001 - only a hint
        return ""
    if champion is None or str(champion.version) == str(version):
        return ""
    return (
        f" (the other workers follow the champion alias, which points at version {champion.version}: "
        f"to serve version {version} everywhere, move champion to it with rollback_{model})"
    )


def converged_or_raise(model: str, version: str, store: Store, path: str | None = None) -> WorkerConvergence:
    """Wait until every live serving worker reports ``version`` (loaded with the ``path`` tag, when
    given); raise :class:`WorkersDidNotConverge` naming the laggards."""
    workers = wait_for_workers(model, version, store, path=path)
    if not workers.converged:
        raise WorkersDidNotConverge(workers.failure(model) + _not_everywhere_hint(model, version), workers)
    return workers


def _roll_back_after(
    failure: DeployError, model: ModelConfig, *, actor: str, run_id: str, store: Store
) -> PostDeployCheckFailed:
    """Roll back after a failed load or check, record both, and return the error to raise."""
    key = decision_record_key(model.name, run_id)
    smoke_test: dict[str, Any] = {"passed": False, "error": str(failure)}
    if isinstance(failure, WorkersDidNotConverge):
        smoke_test["workers"] = failure.convergence.to_json()
    try:
        rolled = rollback(model.name, reason=str(failure)[:1500], actor=actor, run_id=run_id, store=store)
    except DeployError as rollback_error:
        store.update_json(key, smoke_test=smoke_test, rollback={"error": str(rollback_error)})
        return PostDeployCheckFailed(f"{failure}\nRollback impossible: {rollback_error}")
    store.update_json(key, smoke_test=smoke_test, rollback=rolled.summary())
    return PostDeployCheckFailed(
        f"{failure}\nRolled back: champion is version {rolled.champion} again (was {rolled.rolled_back_from}); "
        f"serving runs {rolled.serving}; {_rollback_workers(rolled)}."
    )


def _rollback_workers(rolled: Rollback) -> str:
    if not rolled.workers_lagging:
        return rolled.workers_note or "no worker heartbeats"
    lagging = ", ".join(f"{w} (serves {v or 'nothing'})" for w, v in sorted(rolled.workers_lagging.items()))
    return f"{rolled.workers_note}: still lagging {lagging}"


def deploy_and_verify(model: ModelConfig, version: str, *, actor: str, run_id: str, store: Store | None = None) -> dict:
    """Load ``version`` into serving, wait until every live worker serves it, and check it; on
    failure roll back and raise :class:`PostDeployCheckFailed`. Returns the JSON form of :class:`DeployResult`.

    First the parity gate tags the version with the scoring path serving will use
    (:mod:`.scoring_path`). The outcome, and any rollback, is added to the run's decision record
    when it has one.
    """
    store = store or Store()
    verdict = scoring_path.parity_gate(model, version, store)
    try:
        reloaded = reload_serving(model.name, version)
        log.info(
            "%s version %s: serving scores it with the %s path (parity gate: %s)",
            model.name, version, reloaded.get("scoring_path", "pipeline"), verdict.path,
        )  # fmt: skip
        workers = converged_or_raise(model.name, version, store, verdict.path)
        checked = post_deploy_check(model, version, recent_rows_of_version(model, version, store))
        check = dataclasses.replace(checked, workers_confirmed=workers.confirmed, workers_note=workers.note).to_json()
    except DeployError as exc:  # a version that cannot load, or loads and misbehaves
        log.error("%s", exc)
        raise _roll_back_after(exc, model, actor=actor, run_id=run_id, store=store) from exc
    store.update_json(
        decision_record_key(model.name, run_id),
        deployment={
            "version": str(version),
            "previous_served": reloaded.get("old_version"),
            "scoring_path": verdict.to_json(),
        },
        smoke_test=check,
    )
    return DeployResult(
        version=str(version),
        previous_served=reloaded.get("old_version"),
        smoke_test=check,
        scoring_path=verdict.to_json(),
    ).to_json()
