"""Selection: best CV primary in both directions, near-ties to the cheaper model, no viable candidate."""

from __future__ import annotations

import json

import pytest
from tests.unit.training.training_helpers import make_config

from modelops.training.candidate import train_candidate
from modelops.training.search_spaces import RELATIVE_COST
from modelops.training.selection import NoViableCandidate, select_best

# -- selection -----------------------------------------------------------------------------------


def _result(candidate: str, value: float, passed: bool = True, reasons: list[str] | None = None) -> dict:
    return {
        "candidate": candidate,
        "cv_primary": value,
        "passed": passed,
        "relative_cost": RELATIVE_COST[candidate],
        "failure_reasons": reasons or ([] if passed else [f"{candidate} broke a rule."]),
    }


def test_select_best_by_primary_in_both_directions():
    results = [_result("linear", 0.80), _result("random_forest", 0.84), _result("hist_gradient_boosting", 0.83)]
    assert select_best(results, make_config())["candidate"] == "random_forest"
    errors = [_result("linear", 12.0), _result("random_forest", 10.0), _result("hist_gradient_boosting", 11.0)]
    winner = select_best(errors, make_config("regression"))
    assert winner["candidate"] == "random_forest"
    assert [r["candidate"] for r in winner["selection"]["ranking"]] == [
        "random_forest",
        "hist_gradient_boosting",
        "linear",
    ]


def test_select_best_breaks_near_ties_by_cost():
    results = [_result("random_forest", 0.8405), _result("linear", 0.8400), _result("hist_gradient_boosting", 0.8403)]
    winner = select_best(results, make_config())
    assert winner["candidate"] == "linear"
    assert "cheapest" in winner["selection"]["reason"]
    # beyond the tie tolerance the better model wins even if it is dearer
    results = [_result("random_forest", 0.8420), _result("linear", 0.8400)]
    assert select_best(results, make_config())["candidate"] == "random_forest"
    # lower-is-better ties too
    errors = [_result("hist_gradient_boosting", 10.0000), _result("linear", 10.0008)]
    assert select_best(errors, make_config("regression"))["candidate"] == "linear"


def test_select_best_skips_failed_and_explains_when_none_pass():
    results = [_result("random_forest", 0.95, passed=False), _result("linear", 0.80)]
    winner = select_best(results, make_config())
    assert winner["candidate"] == "linear"
    assert "random_forest" in winner["selection"]["reason"]
    failed = [
        _result("random_forest", 0.95, False, ["Overfitting: gap 0.4."]),
        _result("linear", 0.5, False, ["Convergence: no."]),
    ]
    with pytest.raises(NoViableCandidate) as info:
        select_best(failed, make_config())
    assert "random_forest: Overfitting: gap 0.4." in str(info.value)
    assert "linear: Convergence: no." in str(info.value)
    assert info.value.failures == {"random_forest": ["Overfitting: gap 0.4."], "linear": ["Convergence: no."]}


def test_select_best_accepts_candidate_result_dicts(cls_data):
    config, df = cls_data
    spaces = {"linear": [{"C": 1.0}], "hist_gradient_boosting": [{"max_iter": 50}]}
    results = [
        train_candidate(config, c, df[config.feature_names], df["y"], search_space=space).to_dict()
        for c, space in spaces.items()
    ]
    winner = select_best(results, config)
    assert winner["candidate"] in {"linear", "hist_gradient_boosting"}
    json.dumps(winner, allow_nan=False)
