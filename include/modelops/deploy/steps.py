"""The task callables of the ``deploy_<model>`` and ``rollback_<model>`` DAGs, named like their tasks.

Each takes plain values the DAG read from its run (params, run id, who triggered it) and returns
the JSON form of a record, so the DAG file stays wiring and these stay callable from a test.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from modelops import registry
from modelops.config import ModelConfig
from modelops.deploy import rollout, serving_client, shadow, verification
from modelops.deploy.shadow import ShadowRefused
from modelops.deploy.verification import PostDeployCheckFailed
from modelops.records import Record

log = logging.getLogger(__name__)


__all__ = [
    "PostDeployCheckFailed",
    "RestoreResult",
    "ShadowRefused",
    "actor",
    "deploy_version",
    "judge_shadow",
    "restore_version",
]


@dataclasses.dataclass(frozen=True)
class RestoreResult(Record):
    """What ``restore_version`` returns: the rollback, what serving runs now, and its check."""

    champion: str
    rolled_back_from: str | None
    serving: str | None
    served: str | None
    smoke_test: dict[str, Any]


def actor(context) -> str:
    """Who asked, for the alias history: the triggering user via the DAG, else the DAG."""
    user = getattr(context["dag_run"], "triggering_user_name", None)
    return f"{user} via {context['dag'].dag_id}" if user else context["dag"].dag_id


def deploy_version(
    model: ModelConfig, version_or_alias: str, *, actor: str, run_id: str, mode: str = "champion"
) -> dict:
    """Load a registry version into serving and check it live; roll back if it fails. ``mode``
    ``shadow`` puts a gated version in shadow instead; ``end_shadow`` ends the shadow (recorded)."""
    if mode not in shadow.MODES:
        raise ValueError(f"mode must be one of {list(shadow.MODES)}, got {mode!r}")
    if mode == "end_shadow":
        return shadow.end_shadow(model, reason=f"asked by {actor}", actor=actor, run_id=run_id)
    version = registry.resolve_version(model.name, version_or_alias)
    if mode == "shadow":
        return shadow.start_shadow(model, version, actor=actor, run_id=run_id)
    return rollout.deploy_and_verify(model, version, actor=actor, run_id=run_id)


def restore_version(model: ModelConfig, version_or_alias: str, *, reason: str, actor: str, run_id: str) -> dict:
    """Move champion back to a known-good version, reload serving, wait for every worker and check it answers."""
    version = registry.resolve_version(model.name, version_or_alias)
    rolled = rollout.rollback(model.name, reason=reason, actor=actor, run_id=run_id, to_version=version)
    if rolled.workers_lagging:  # champion moved (and recorded); some worker did not follow in time
        lagging = ", ".join(f"{w} (serves {v or 'nothing'})" for w, v in sorted(rolled.workers_lagging.items()))
        raise PostDeployCheckFailed(
            f"champion of '{model.name}' is version {rolled.champion} again, but {rolled.workers_note}: "
            f"lagging {lagging}; confirmed: {', '.join(rolled.workers_confirmed) or 'none'}"
        )
    check = verification.post_deploy_check(model, version, verification.recent_rows_of_version(model, version))
    check = dataclasses.replace(check, workers_confirmed=rolled.workers_confirmed, workers_note=rolled.workers_note)
    return RestoreResult(
        champion=rolled.champion,
        rolled_back_from=rolled.rolled_back_from,
        serving=rolled.serving,
        served=serving_client.served_version(model.name),
        smoke_test=check.to_json(),
    ).to_json()


def judge_shadow(model: ModelConfig, day, *, actor: str, run_id: str) -> dict:
    """Promote, end or keep the shadow on its days of live evidence (gate.require_shadow_days)."""
    from modelops.deploy import shadow_promotion

    with_evidence = shadow_promotion.judge_shadow(model, day, actor=actor, run_id=run_id)
    return {k: v for k, v in with_evidence.items() if k != "days"} | {"days": len(with_evidence.get("days") or [])}
