"""retrain_<model>'s task graph: no task that only routes, independent steps side by side, and
the routing decisions taken inside the working tasks (an empty window, a refused gate or a dry
run, an approval asked for)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GATE_SAID = {
    "reasons": ["ok"],
    "failed_checks": [],
    "decision_uri": "s3://bucket/decisions/churn/run.json",
    "champion_version_compared": None,
}


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "retrain.py"))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["retrain_churn"]


def upstream(dag, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)


def test_no_routing_only_tasks_remain(dag):
    assert {"has_training_data", "promotion_allowed", "approval_needed", "candidates_to_try"}.isdisjoint(dag.task_ids)
    assert set(dag.task_ids) == {
        "check_run_params", "snapshot_training_data", "validate_training_data", "profile_baseline",
        "start_tracking", "train_candidates", "select_best", "evaluate", "gate", "register",
        "approve_promotion", "promote", "deploy", "start_shadow",
    }  # fmt: skip


def test_independent_steps_run_side_by_side(dag):
    """Tracking opens beside validation; training waits for both; the baseline beside training."""
    assert upstream(dag, "validate_training_data") == {"snapshot_training_data"}
    assert upstream(dag, "start_tracking") == {"snapshot_training_data"}
    assert upstream(dag, "train_candidates") == {"start_tracking", "validate_training_data"}
    assert upstream(dag, "profile_baseline") == {"validate_training_data"}
    assert "profile_baseline" not in dag.get_task("train_candidates").get_flat_relative_ids(upstream=True)


def test_promotion_hangs_on_register_alone(dag):
    """promote runs after register (or the approval) and nothing else: a skipped register (gate said
    no, dry run) skips promote and deploy through the trigger rules."""
    assert dag.get_task("register").task_type.endswith("BranchPythonDecoratedOperator")
    assert upstream(dag, "approve_promotion") == {"register"}
    assert upstream(dag, "promote") == {"register", "approve_promotion"}
    assert dag.get_task("promote").trigger_rule == "none_failed_min_one_success"
    assert upstream(dag, "deploy") == {"promote"}
    assert upstream(dag, "start_shadow") == {"register"}  # the branch's third way: shadow first


def _call(dag, task_id: str, monkeypatch, params: dict | None = None, **kwargs):
    """A task's Python callable with a stand-in context (what the worker would pass)."""
    pushed = {}
    context = {
        "params": params or {},
        "run_id": "manual__test",
        "dag": dag,
        "ti": types.SimpleNamespace(xcom_push=lambda key, value: pushed.__setitem__(key, value)),
    }
    function = dag.get_task(task_id).python_callable
    monkeypatch.setitem(function.__globals__, "get_current_context", lambda: context)
    return function(**kwargs), pushed


def test_an_empty_window_skips_validation_and_tracking_naming_the_window(dag, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException

    empty = {"nothing_to_train": True, "message": "churn: nothing to train in window 2024-01-07..2024-01-09"}
    for task_id in ("validate_training_data", "start_tracking"):
        with pytest.raises(AirflowSkipException, match="nothing to train in window 2024-01-07..2024-01-09"):
            _call(dag, task_id, monkeypatch, snapshot=empty)


@pytest.mark.parametrize("decision", [{"promote": False, "dry_run": False}, {"promote": True, "dry_run": True}])
def test_register_skips_when_the_gate_refused_or_on_a_dry_run(dag, monkeypatch, decision):
    from airflow.sdk.exceptions import AirflowSkipException

    from modelops.training import steps

    monkeypatch.setattr(steps, "register", lambda *a, **k: pytest.fail("registered despite the gate"))
    evidence = {"best": {}, "snapshot": {}, "validation": {}, "baseline": {}}
    with pytest.raises(AirflowSkipException, match="nothing to register"):
        _call(dag, "register", monkeypatch, decided=GATE_SAID | decision, **evidence)


@pytest.mark.parametrize("require_approval, next_task", [(True, "approve_promotion"), (False, "promote")])
def test_register_leaves_version_and_decision_for_promote_and_names_the_next_task(
    dag, monkeypatch, require_approval, next_task
):
    from modelops.training import steps

    registered = {"version": "7", "model_uri": "models:/churn/7"}
    monkeypatch.setattr(steps, "register", lambda *a, **k: registered)
    decided = GATE_SAID | {"promote": True, "dry_run": False}
    evidence = {"best": {}, "snapshot": {}, "validation": {}, "baseline": {}}
    chosen, pushed = _call(
        dag, "register", monkeypatch, params={"require_approval": require_approval}, decided=decided, **evidence
    )
    assert chosen == next_task
    assert pushed == {"registered": registered, "decided": decided}


@pytest.mark.parametrize(("shadow", "next_task"), [(True, "start_shadow"), (False, "promote")])
def test_a_version_asked_to_shadow_goes_to_start_shadow(dag, monkeypatch, shadow, next_task):
    from modelops.training import steps

    monkeypatch.setattr(steps, "register", lambda *a, **k: {"version": "7", "model_uri": "models:/churn/7"})
    decided = GATE_SAID | {"promote": True, "dry_run": False}
    evidence = {"best": {}, "snapshot": {}, "validation": {}, "baseline": {}}
    params = {"require_approval": False, "shadow": shadow}
    chosen, _ = _call(dag, "register", monkeypatch, params=params, decided=decided, **evidence)
    assert chosen == next_task


def test_the_gate_requiring_shadow_days_sends_every_version_to_shadow():
    from modelops.config import get_model
    from modelops.training import steps

    churn = get_model("churn")
    required = churn.model_copy(update={"gate": churn.gate.model_copy(update={"require_shadow_days": 3})})
    asked = {"require_approval": True, "shadow": False}
    assert steps.approval_needed(asked, churn) == "approve_promotion"
    assert steps.approval_needed(asked, required) == "start_shadow"  # the form cannot skip the evidence


def test_start_tracking_plans_one_training_task_per_chosen_candidate(dag, monkeypatch):
    from modelops import pools
    from modelops.training import steps

    parent = {"parent_run_id": "p1", "experiment_id": "1"}
    monkeypatch.setattr(pools, "ensure_training_pool", lambda model: {"action": "unchanged"})
    monkeypatch.setattr(steps, "start_tracking", lambda *a, **k: parent)
    params = {"candidates": ["linear", "random_forest"], "submitted_model_uri": None}
    plan, _ = _call(dag, "start_tracking", monkeypatch, params=params, snapshot={"manifest_uri": "s3://x"})
    assert plan == [{"candidate": "linear", "parent": parent}, {"candidate": "random_forest", "parent": parent}]
    params["submitted_model_uri"] = "models:/m-1"
    plan, _ = _call(dag, "start_tracking", monkeypatch, params=params, snapshot={"manifest_uri": "s3://x"})
    assert plan == [{"candidate": "submitted", "parent": parent}]
