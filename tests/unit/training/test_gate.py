"""The promotion gate on plain values: every check, both metric directions, overrides and notes."""

from __future__ import annotations

import json

import pytest

from modelops.config import ModelConfig
from modelops.training.gate import decide_promotion, policy_from_config

FEATURES = [{"name": "x", "type": "numeric"}, {"name": "plan", "type": "categorical"}]


def auc_config(**gate) -> ModelConfig:
    """Higher is better: roc_auc, floor 0.70, tolerance 0.005, slices by plan (limit 0.05)."""
    return ModelConfig.model_validate(
        {
            "name": "churn",
            "problem_type": "binary_classification",
            "target": "y",
            "features": FEATURES,
            "metrics": {"primary": "roc_auc"},
            "gate": {
                "min_primary": 0.70,
                "tolerance": 0.005,
                "slice_column": "plan",
                "max_slice_regression": 0.05,
                "max_latency_ms_per_1k": 100.0,
                "max_model_size_mb": 10.0,
                **gate,
            },
        }
    )


def rmse_config(**gate) -> ModelConfig:
    """Lower is better: rmse, ceiling 15, tolerance 0.25, slices by plan (limit 2.0)."""
    return ModelConfig.model_validate(
        {
            "name": "delivery_time",
            "problem_type": "regression",
            "target": "y",
            "features": FEATURES,
            "metrics": {"primary": "rmse"},
            "gate": {
                "min_primary": 15.0,
                "tolerance": 0.25,
                "slice_column": "plan",
                "max_slice_regression": 2.0,
                "max_latency_ms_per_1k": 100.0,
                "max_model_size_mb": 10.0,
                **gate,
            },
        }
    )


def evaluation(
    primary: float | None,
    metric: str = "roc_auc",
    slices: dict | None = None,
    *,
    latency: float | None = 20.0,
    size: float | None = 1.0,
    training_passed: bool | None = True,
    failure_reasons: list[str] | None = None,
) -> dict:
    """An evaluate_model()-shaped dict; ``slices`` maps value -> primary (or (primary, rows))."""
    groups = {}
    for key, value in (slices or {}).items():
        value, rows = value if isinstance(value, tuple) else (value, 200)
        groups[key] = {"rows": rows, "primary": value, "small": rows < 30}
    out = {
        "n_rows": 1000,
        "primary_metric": metric,
        "higher_is_better": metric != "rmse",
        "primary": primary,
        "metrics": {metric: primary},
        "slices": {"column": "plan", "min_rows": 30, "groups": groups} if slices is not None else None,
        "latency_ms_per_1k": latency,
        "latency_rows": 1000,
        "model_size_mb": size,
    }
    if training_passed is not None:
        out["training_passed"] = training_passed
        out["failure_reasons"] = failure_reasons or []
    return out


def check(decision, name: str) -> dict:
    return next(c for c in decision.checks if c["name"] == name)


# -- the happy paths and the record -----------------------------------------------------------


def test_first_model_without_champion_is_promoted_and_the_skip_is_recorded():
    decision = decide_promotion(evaluation(0.82), None, policy_from_config(auc_config()))
    assert decision.promote
    skipped = check(decision, "champion_comparison")
    assert skipped["skipped"] and skipped["passed"] and "No champion" in skipped["message"]
    assert decision.reasons[0].startswith("Promote")
    assert any("No champion" in r for r in decision.reasons)
    out = decision.to_dict()
    json.dumps(out, allow_nan=False)
    assert set(out) == {"promote", "reasons", "failed_checks", "checks", "policy", "candidate", "champion"}
    assert out["failed_checks"] == [] and out["champion"] is None
    assert set(out["checks"][0]) == {"name", "passed", "skipped", "observed", "threshold", "message"}


def test_better_than_champion_is_promoted_with_every_check_named():
    candidate = evaluation(0.84, slices={"basic": 0.83, "premium": 0.85})
    champion = evaluation(0.82, slices={"basic": 0.82, "premium": 0.84})
    decision = decide_promotion(candidate, champion, policy_from_config(auc_config()))
    assert decision.promote, decision.reasons
    names = [c["name"] for c in decision.checks]
    assert names == [
        "training_rules",
        "primary_floor",
        "not_worse_than_champion",
        "min_improvement",
        "slice_regression[plan=basic]",
        "slice_regression[plan=premium]",
        "latency_budget",
        "size_budget",
    ]
    assert check(decision, "not_worse_than_champion")["observed"] == pytest.approx(0.02)


# -- training rules -----------------------------------------------------------------------------


def test_failed_training_rules_block_promotion_with_their_reasons():
    candidate = evaluation(0.95, training_passed=False, failure_reasons=["Overfitting: gap 0.31 exceeds 0.2."])
    decision = decide_promotion(candidate, None, policy_from_config(auc_config()))
    assert not decision.promote and decision.failed_checks == ["training_rules"]
    assert "Overfitting: gap 0.31 exceeds 0.2." in " ".join(decision.reasons)


def test_candidate_without_a_training_verdict_is_not_promoted():
    decision = decide_promotion(evaluation(0.95, training_passed=None), None, policy_from_config(auc_config()))
    assert not decision.promote and "training_passed" in check(decision, "training_rules")["message"]


# -- absolute floor / ceiling ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "promote"), [(0.69, False), (0.70, True), (0.71, True), (None, False)])
def test_floor_on_a_higher_is_better_metric(value, promote):
    decision = decide_promotion(evaluation(value), None, policy_from_config(auc_config()))
    assert check(decision, "primary_floor")["passed"] is promote
    assert decision.promote is promote


@pytest.mark.parametrize(("value", "promote"), [(15.5, False), (15.0, True), (12.0, True)])
def test_ceiling_on_a_lower_is_better_metric(value, promote):
    decision = decide_promotion(evaluation(value, "rmse"), None, policy_from_config(rmse_config()))
    floor = check(decision, "primary_floor")
    assert floor["passed"] is promote and decision.promote is promote
    assert "ceiling" in floor["message"]
    if not promote:
        assert "above the ceiling 15" in floor["message"]


def test_no_floor_configured_is_a_recorded_skip():
    decision = decide_promotion(evaluation(0.51), None, policy_from_config(auc_config(min_primary=None)))
    floor = check(decision, "primary_floor")
    assert floor["passed"] and floor["skipped"] and decision.promote


# -- versus the champion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "promote"),
    [
        (0.800, True),  # equal
        (0.796, True),  # 0.004 worse: within tolerance 0.005
        (0.795, True),  # exactly at the tolerance
        (0.790, False),  # 0.010 worse: beyond
        (0.850, True),  # better
    ],
)
def test_champion_tolerance_higher_is_better(candidate, promote):
    decision = decide_promotion(evaluation(candidate), evaluation(0.800), policy_from_config(auc_config()))
    assert check(decision, "not_worse_than_champion")["passed"] is promote
    assert decision.promote is promote


@pytest.mark.parametrize(
    ("candidate", "promote"),
    [
        (10.00, True),  # equal
        (10.20, True),  # 0.20 worse (higher error): within tolerance 0.25
        (10.40, False),  # 0.40 worse: beyond
        (9.00, True),  # better (lower error)
    ],
)
def test_champion_tolerance_lower_is_better(candidate, promote):
    decision = decide_promotion(
        evaluation(candidate, "rmse"), evaluation(10.0, "rmse"), policy_from_config(rmse_config())
    )
    comparison = check(decision, "not_worse_than_champion")
    assert comparison["passed"] is promote and decision.promote is promote
    if not promote:
        assert "worse, beyond the tolerance 0.25" in comparison["message"]


def test_min_improvement_in_both_directions():
    policy = policy_from_config(auc_config(min_improvement=0.01))
    assert not decide_promotion(evaluation(0.805), evaluation(0.80), policy).promote
    assert decide_promotion(evaluation(0.815), evaluation(0.80), policy).promote
    policy = policy_from_config(rmse_config(min_improvement=0.5))
    assert not decide_promotion(evaluation(9.8, "rmse"), evaluation(10.0, "rmse"), policy).promote
    decision = decide_promotion(evaluation(9.4, "rmse"), evaluation(10.0, "rmse"), policy)
    assert decision.promote and check(decision, "min_improvement")["observed"] == pytest.approx(0.6)


def test_zero_min_improvement_is_a_recorded_skip():
    decision = decide_promotion(evaluation(0.80), evaluation(0.80), policy_from_config(auc_config()))
    assert check(decision, "min_improvement")["skipped"]


def test_unknown_champion_metric_fails_and_points_to_force_promote():
    decision = decide_promotion(evaluation(0.9), evaluation(None), policy_from_config(auc_config()))
    assert not decision.promote
    assert "force_promote" in check(decision, "not_worse_than_champion")["message"]


# -- force_promote ------------------------------------------------------------------------------------


def test_force_promote_skips_only_the_champion_comparison_and_records_it():
    policy = policy_from_config(auc_config(), {"force_promote": True})
    decision = decide_promotion(evaluation(0.75), evaluation(0.90), policy)
    assert decision.promote
    skipped = check(decision, "champion_comparison")
    assert skipped["skipped"] and "force_promote" in skipped["message"] and "would have failed" in skipped["message"]
    assert any("force_promote" in r for r in decision.reasons)
    assert decision.policy["overrides"] == {"force_promote": True}


@pytest.mark.parametrize("broken", ["floor", "training", "latency", "size", "slice"])
def test_force_promote_does_not_bypass_the_other_checks(broken):
    policy = policy_from_config(auc_config(), {"force_promote": True})
    candidate = evaluation(
        0.60 if broken == "floor" else 0.80,
        slices={"basic": 0.60 if broken == "slice" else 0.80},
        training_passed=broken != "training",
        latency=500.0 if broken == "latency" else 20.0,
        size=50.0 if broken == "size" else 1.0,
    )
    decision = decide_promotion(candidate, evaluation(0.90, slices={"basic": 0.80}), policy)
    assert not decision.promote
    assert len(decision.failed_checks) == 1


def test_force_promote_in_lower_is_better_reports_what_would_have_happened():
    policy = policy_from_config(rmse_config(), {"force_promote": True})
    decision = decide_promotion(evaluation(9.0, "rmse"), evaluation(10.0, "rmse"), policy)
    assert decision.promote and "would have passed" in check(decision, "champion_comparison")["message"]


# -- slices ---------------------------------------------------------------------------------------------


def test_slice_regression_higher_is_better():
    candidate = evaluation(0.84, slices={"basic": 0.75, "premium": 0.90, "legacy": (0.10, 12), "new": 0.8})
    champion = evaluation(0.83, slices={"basic": 0.85, "premium": 0.86, "legacy": (0.90, 12)})
    decision = decide_promotion(candidate, champion, policy_from_config(auc_config()))
    assert not decision.promote
    assert decision.failed_checks == ["slice_regression[plan=basic]"]
    basic = check(decision, "slice_regression[plan=basic]")
    assert basic["observed"] == pytest.approx(0.10) and basic["threshold"] == 0.05
    assert "Slice plan=basic" in " ".join(decision.reasons)
    names = {c["name"] for c in decision.checks}
    assert "slice_regression[plan=legacy]" not in names  # small: reported by evaluation, not gated
    assert "slice_regression[plan=new]" not in names  # only in the candidate


def test_slice_regression_lower_is_better():
    candidate = evaluation(10.0, "rmse", slices={"car": 14.5, "bike": 8.0})
    champion = evaluation(10.0, "rmse", slices={"car": 12.0, "bike": 9.0})
    decision = decide_promotion(candidate, champion, policy_from_config(rmse_config()))
    assert decision.failed_checks == ["slice_regression[plan=car]"]
    assert check(decision, "slice_regression[plan=car]")["observed"] == pytest.approx(2.5)
    assert check(decision, "slice_regression[plan=bike]")["observed"] == pytest.approx(-1.0)
    candidate = evaluation(10.0, "rmse", slices={"car": 13.5, "bike": 8.0})
    assert decide_promotion(candidate, champion, policy_from_config(rmse_config())).promote


def test_slices_without_comparable_groups_are_a_recorded_skip():
    candidate = evaluation(0.84, slices={"basic": (0.5, 10)})
    champion = evaluation(0.83, slices={"basic": (0.9, 10)})
    decision = decide_promotion(candidate, champion, policy_from_config(auc_config()))
    assert decision.promote and check(decision, "slice_regression")["skipped"]
    decision = decide_promotion(evaluation(0.84), evaluation(0.83), policy_from_config(auc_config()))
    assert "not evaluated" in check(decision, "slice_regression")["message"]


# -- budgets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latency", "size", "failed"),
    [
        (100.0, 10.0, []),
        (100.1, 1.0, ["latency_budget"]),
        (20.0, 10.5, ["size_budget"]),
        (None, 1.0, ["latency_budget"]),
        (20.0, None, ["size_budget"]),
    ],
)
def test_latency_and_size_budgets(latency, size, failed):
    decision = decide_promotion(evaluation(0.8, latency=latency, size=size), None, policy_from_config(auc_config()))
    assert decision.failed_checks == failed
    assert decision.promote is (not failed)


# -- the policy -------------------------------------------------------------------------------------------


def test_policy_comes_from_the_config_then_the_overrides():
    policy = policy_from_config(auc_config())
    assert policy["min_primary"] == 0.70 and policy["tolerance"] == 0.005 and policy["force_promote"] is False
    assert policy["higher_is_better"] is True and policy["overrides"] == {}
    policy = policy_from_config(auc_config(), {"min_primary": 0.9, "tolerance": 0.02, "force_promote": None})
    assert policy["min_primary"] == 0.9 and policy["tolerance"] == 0.02 and policy["force_promote"] is False
    assert policy["overrides"] == {"min_primary": 0.9, "tolerance": 0.02}
    json.dumps(policy)
    decision = decide_promotion(evaluation(0.85), None, policy)
    assert not decision.promote and "below the floor 0.9" in check(decision, "primary_floor")["message"]
    assert policy_from_config(rmse_config())["higher_is_better"] is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"min_primry": 0.8}, "min_primry"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"tolerance": "lots"}, "tolerance"),
        ({"force_promote": "yes"}, "force_promote"),
        ({"min_primary": float("nan")}, "min_primary"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        policy_from_config(auc_config(), overrides)
