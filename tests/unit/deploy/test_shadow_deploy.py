"""Shadow deployment on a local registry and a mocked bucket, with serving stood in for: only a
version the gate passed may shadow, never the champion; the alias, the alias history and the
registering run's decision record say when a shadow started, was replaced or ended; a worker that
does not follow in time fails the deploy naming it."""

from __future__ import annotations

import datetime as dt

import mlflow
import pytest
from tests.unit.local_mlflow import local_mlflow

from modelops import registry
from modelops.config import ModelConfig
from modelops.deploy import shadow, steps
from modelops.layout import decision_record_key
from modelops.serving import heartbeat

MODEL = "toy"


def make_config() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": MODEL,
            "problem_type": "binary_classification",
            "target": "y",
            "features": [{"name": "x0", "type": "numeric"}],
            "data": {"timestamp_column": "ts"},
            "metrics": {"primary": "roc_auc"},
        }
    )


@pytest.fixture
def versions(store, tmp_path, monkeypatch):
    """Versions 1 (champion), 2 and 3 (gate passed) and 4 (gate refused), each with its run's decision record."""
    monkeypatch.setenv("MODELOPS_BUCKET", store.bucket)  # what the steps' own Store() opens
    with local_mlflow(tmp_path, "shadow-test") as ml:
        made = []
        for number, passed in ((1, True), (2, True), (3, True), (4, False)):
            with mlflow.start_run(experiment_id=ml.experiment_id) as run:
                mlflow.log_text("stand-in", "model/MLmodel")
            run_name = f"run-{number}"
            made.append(
                registry.register_version(
                    MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id, {"airflow_run_id": run_name}
                ).version
            )
            reasons = [] if passed else ["candidate roc_auc 0.61 is below the champion's 0.70"]
            store.put_json(decision_record_key(MODEL, run_name), {"promote": passed, "reasons": reasons})
        ml.client.set_registered_model_alias(MODEL, registry.CHAMPION, made[0])
        followed: list[str | None] = []

        def fake_reload(model):  # serving follows the alias, as the real route does
            current = registry.version_for_alias(model, registry.SHADOW)
            followed.append(str(current.version) if current else None)
            return {"shadow": followed[-1]}

        monkeypatch.setattr(shadow, "reload_shadow", fake_reload)
        yield [str(v) for v in made], followed


def _life(store, number: int) -> dict:
    return store.get_json(decision_record_key(MODEL, f"run-{number}")).get("shadow") or {}


def test_a_gated_version_shadows_and_a_new_one_replaces_it_on_record(store, versions):
    (v1, v2, v3, _), followed = versions
    started = steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    assert started["shadow"] == v2 and started["champion"] == v1 and started["previous_shadow"] is None
    assert started["gate_run_id"] == "run-2" and followed == [v2]
    assert str(registry.version_for_alias(MODEL, registry.SHADOW).version) == v2
    life = _life(store, 2)
    assert life["status"] == shadow.RUNNING and life["champion_at_start"] == v1 and life["started_by"] == "ann"

    steps.deploy_version(make_config(), v3, actor="bob", run_id="deploy-2", mode="shadow")
    assert _life(store, 2)["status"] == shadow.REPLACED and _life(store, 2)["end_reason"] == f"replaced by version {v3}"
    assert _life(store, 3)["status"] == shadow.RUNNING
    history = [e for e in registry.alias_history(MODEL, store) if e["alias"] == registry.SHADOW]
    moves = [(e["from_version"] and str(e["from_version"]), e["to_version"]) for e in history]
    assert moves == [(None, v2), (v2, v3)]


def test_ending_a_shadow_without_promotion_is_recorded(store, versions):
    (_, v2, _, _), followed = versions
    steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    ended = steps.deploy_version(make_config(), "champion", actor="ann", run_id="deploy-2", mode="end_shadow")
    assert ended["shadow"] is None and ended["previous_shadow"] == v2 and followed[-1] is None
    assert registry.version_for_alias(MODEL, registry.SHADOW) is None
    life = _life(store, 2)
    assert life["status"] == shadow.ENDED and life["ended_by"] == "ann" and "asked by ann" in life["end_reason"]
    last = registry.alias_history(MODEL, store)[-1]
    assert last["alias"] == registry.SHADOW and last["from_version"] == v2 and last["to_version"] is None
    again = steps.deploy_version(make_config(), "champion", actor="ann", run_id="deploy-3", mode="end_shadow")
    assert again["shadow"] is None and again["workers_note"] == "no shadow"


def test_the_champion_and_a_refused_version_may_not_shadow(store, versions):
    (v1, _, _, v4), followed = versions
    with pytest.raises(steps.ShadowRefused, match=f"version {v1} is the champion"):
        steps.deploy_version(make_config(), v1, actor="ann", run_id="d", mode="shadow")
    with pytest.raises(steps.ShadowRefused, match="the gate refused .* below the champion"):
        steps.deploy_version(make_config(), v4, actor="ann", run_id="d", mode="shadow")
    store.put_json(decision_record_key(MODEL, "run-3"), {"attempts": []})  # the gate never decided
    with pytest.raises(steps.ShadowRefused, match="no gate decision"):
        steps.deploy_version(make_config(), "3", actor="ann", run_id="d", mode="shadow")
    assert registry.version_for_alias(MODEL, registry.SHADOW) is None and followed == []
    with pytest.raises(ValueError, match="mode must be one of"):
        steps.deploy_version(make_config(), "2", actor="ann", run_id="d", mode="canary")


def test_a_worker_that_does_not_follow_fails_the_deploy_naming_it(store, versions, monkeypatch):
    (v1, v2, _, _), _ = versions
    monkeypatch.setenv("MODELOPS_DEPLOY_CONVERGENCE_TIMEOUT_SECONDS", "0")
    worker = heartbeat.WorkerIdentity(id="worker-a")
    record = heartbeat.heartbeat_record(
        worker, {MODEL: {"version": v1, "alias": "champion"}}, 5, dt.datetime.now(dt.UTC)
    )
    heartbeat.write_heartbeat(store, record)
    with pytest.raises(shadow.DeployError, match="worker-a"):
        steps.deploy_version(make_config(), v2, actor="ann", run_id="d", mode="shadow")
    heartbeat.write_heartbeat(store, record | {"models": {MODEL: {"version": v1, "shadow": v2}}})
    result = steps.deploy_version(make_config(), v2, actor="ann", run_id="d2", mode="shadow")
    assert result["workers_confirmed"] == ["worker-a"]


def _evidence(store, n: int, version: str, regression: float) -> None:
    from modelops.layout import shadow_evidence_key

    day = dt.date(2026, 11, n)
    live = {"status": "ok", "regression": regression, "labelled_rows": 300, "primary_metric": "roc_auc"}
    store.put_json(
        shadow_evidence_key(MODEL, day),
        {"day": day.isoformat(), "shadow_versions": [version], "rows_compared": 500, "live": live},
    )


def _started_on(store, run: str, day: str) -> None:
    """Backdate the shadow's start (evidence before it is not read), as if it started on ``day``."""
    record = store.get_json(decision_record_key(MODEL, run))
    record["shadow"]["started_at"] = f"{day}T00:00:00+00:00"
    store.put_json(decision_record_key(MODEL, run), record)


def _gated(days: int) -> ModelConfig:
    return make_config().model_copy(
        update={"gate": make_config().gate.model_copy(update={"require_shadow_days": days})}
    )


@pytest.fixture
def deployed(monkeypatch):
    from modelops.deploy import rollout

    calls = []
    monkeypatch.setattr(rollout, "deploy_and_verify", lambda config, version, **kw: calls.append(version) or {"version": version})  # fmt: skip
    return calls


def test_n_days_no_worse_promote_the_shadow_with_its_evidence_on_record(store, versions, deployed):
    from modelops.deploy import shadow_promotion

    (v1, v2, _, _), _ = versions
    steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    _started_on(store, "run-2", "2026-11-01")
    _evidence(store, 1, v2, 0.0)
    waiting = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 1), actor="monitor_toy", run_id="m1")
    assert waiting["action"] == "wait" and deployed == []
    _evidence(store, 2, v2, -0.01)
    _evidence(store, 3, "9", 0.5)  # another shadow's day: not this version's evidence
    verdict = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 3), actor="monitor_toy", run_id="m2")
    assert verdict["action"] == "promote" and verdict["counted_days"] == 2 and deployed == [v2]
    assert str(registry.version_for_alias(MODEL, registry.CHAMPION).version) == v2
    assert str(registry.version_for_alias(MODEL, registry.PREVIOUS).version) == v1
    assert registry.version_for_alias(MODEL, registry.SHADOW) is None
    record = store.get_json(decision_record_key(MODEL, "run-2"))
    assert record["shadow"]["status"] == shadow.PROMOTED and record["shadow_evidence"]["action"] == "promote"
    assert [d["day"] for d in record["shadow_evidence"]["days"]] == ["2026-11-01", "2026-11-02"]
    again = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 3), actor="monitor_toy", run_id="m2")
    assert again["action"] == "none" and deployed == [v2]  # a re-run finds no shadow: nothing twice
    assert again["version"] == v2 and "already promoted to champion" in again["reasons"][0]
    assert "up to 2026-11-03 (monitor run m2)" in again["reasons"][0]
    quiet = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 4), actor="monitor_toy", run_id="m4")
    assert quiet == {"action": "none", "reasons": ["'toy' has no shadow"]}  # a day without shadow evidence


def test_a_worse_shadow_is_ended_with_the_evidence_as_its_reason(store, versions, deployed):
    from modelops.deploy import shadow_promotion

    (v1, v2, _, _), _ = versions
    steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    _started_on(store, "run-2", "2026-11-01")
    _evidence(store, 1, v2, 0.08)
    verdict = shadow_promotion.judge_shadow(_gated(1), dt.date(2026, 11, 1), actor="monitor_toy", run_id="m1")
    assert verdict["action"] == "end" and deployed == []
    assert str(registry.version_for_alias(MODEL, registry.CHAMPION).version) == v1
    assert registry.version_for_alias(MODEL, registry.SHADOW) is None
    life = _life(store, 2)
    assert life["status"] == shadow.ENDED and "beyond max_live_regression" in life["end_reason"]
    again = shadow_promotion.judge_shadow(_gated(1), dt.date(2026, 11, 1), actor="monitor_toy", run_id="m1")
    assert again["action"] == "none" and "shadow " + v2 + " was already ended" in again["reasons"][0]
    assert registry.version_for_alias(MODEL, registry.SHADOW) is None and deployed == []


def test_an_older_day_judged_after_a_later_wait_acts_and_a_wait_never_overwrites_a_later_verdict(
    store, versions, deployed
):
    """Backfill days finish out of order: day 3 judged first found too few days and waited; day 2,
    finishing later, decides on the evidence up to itself, as its own run would have."""
    from modelops.deploy import shadow_promotion

    (v1, v2, _, _), _ = versions
    steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    _started_on(store, "run-2", "2026-11-01")
    _evidence(store, 3, v2, 0.0)
    newer = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 3), actor="monitor_toy", run_id="m3")
    assert newer["action"] == "wait" and newer["counted_days"] == 1
    older = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 1), actor="monitor_toy", run_id="m1")
    assert older["action"] == "wait"
    record = store.get_json(decision_record_key(MODEL, "run-2"))
    assert record["shadow_evidence"]["judged_day"] == "2026-11-03"  # the older wait did not replace it
    _evidence(store, 1, v2, 0.0)
    _evidence(store, 2, v2, 0.0)
    acted = shadow_promotion.judge_shadow(_gated(2), dt.date(2026, 11, 2), actor="monitor_toy", run_id="m2")
    assert acted["action"] == "promote" and deployed == [v2]
    record = store.get_json(decision_record_key(MODEL, "run-2"))
    assert record["shadow_evidence"]["judged_day"] == "2026-11-02" and record["shadow"]["status"] == shadow.PROMOTED


def test_an_older_day_replayed_after_a_later_day_acted_does_nothing(store, versions, deployed):
    from modelops.deploy import shadow_promotion

    (v1, v2, _, _), _ = versions
    steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    _started_on(store, "run-2", "2026-11-01")
    # The version's record says a later day ended it (a shadow of the same version started again
    # since, say): a replay of an older, worse day must not act on today's shadow.
    store.update_json(
        decision_record_key(MODEL, "run-2"),
        shadow_evidence={"judged_day": "2026-11-05", "action": "end", "monitor_run_id": "m5"},
    )
    _evidence(store, 1, v2, 0.5)
    replay = shadow_promotion.judge_shadow(_gated(1), dt.date(2026, 11, 1), actor="monitor_toy", run_id="b")
    assert replay["action"] == "none" and "already judged on a later day (2026-11-05: end)" in replay["reasons"][0]
    assert str(registry.version_for_alias(MODEL, registry.SHADOW).version) == v2 and deployed == []
    assert store.get_json(decision_record_key(MODEL, "run-2"))["shadow_evidence"]["monitor_run_id"] == "m5"


def test_days_before_the_start_date_count_when_their_evidence_names_the_version(store, versions, deployed):
    """Traffic replayed with past event times (the demo) lands on days before the shadow's
    wall-clock start; each day's evidence names the versions that scored it, so those days count."""
    from modelops.deploy import shadow_promotion

    (v1, v2, _, _), _ = versions
    steps.deploy_version(make_config(), v2, actor="ann", run_id="deploy-1", mode="shadow")
    _started_on(store, "run-2", "2026-11-20")
    _evidence(store, 1, v2, 0.0)
    verdict = shadow_promotion.judge_shadow(_gated(1), dt.date(2026, 11, 1), actor="monitor_toy", run_id="m1")
    assert verdict["action"] == "promote" and verdict["counted_days"] == 1 and deployed == [v2]
