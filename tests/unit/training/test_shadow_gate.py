"""The shadow half of the gate on plain values: N counted days decide; live labels first, the
declared disagreement bound without them; one worse day among the latest N ends the shadow."""

from __future__ import annotations

import pytest

from modelops.config import GateSpec
from modelops.training.shadow_gate import END, PROMOTE, WAIT, decide_shadow, judge_day


def day(n: int, *, regression: float | None = None, disagreement: float = 0.0, rows: int = 500) -> dict:
    live = (
        {"status": "ok", "regression": regression, "labelled_rows": 300, "primary_metric": "roc_auc"}
        if regression is not None
        else {"status": "insufficient_labels", "regression": None}
    )
    return {
        "day": f"2026-11-{n:02d}",
        "rows_compared": rows,
        "disagreement_rate": disagreement,
        "mean_relative_difference": disagreement,
        "live": live,
    }


def test_promotes_after_n_days_no_worse_on_live_labels():
    gate = GateSpec(require_shadow_days=3, max_live_regression=0.01)
    days = [day(1, regression=0.0), day(2, regression=-0.02), day(3, regression=0.01)]
    verdict = decide_shadow(days, gate, is_classifier=True)
    assert verdict["action"] == PROMOTE and verdict["counted_days"] == 3
    assert all(d["basis"] == "live_labels" and d["no_worse"] for d in verdict["days"])
    assert "3 days no worse" in verdict["reasons"][0]


def test_waits_until_enough_days_count_and_days_without_evidence_do_not():
    gate = GateSpec(require_shadow_days=3)
    days = [day(1, regression=0.0), day(2), day(3, rows=0), day(4, regression=0.0)]
    verdict = decide_shadow(days, gate, is_classifier=True)
    assert verdict["action"] == WAIT and verdict["reasons"] == ["2 of 3 days of shadow evidence so far"]
    assert "no max_disagreement declared" in verdict["days"][1]["reason"]
    assert verdict["days"][2]["reason"] == "no record scored by both versions"


def test_a_worse_day_among_the_latest_n_ends_the_shadow_naming_it():
    gate = GateSpec(require_shadow_days=2, max_live_regression=0.0)
    verdict = decide_shadow([day(2, regression=0.03), day(1, regression=0.0)], gate, is_classifier=True)
    assert verdict["action"] == END and verdict["reasons"][0].startswith("2026-11-02: roc_auc beyond")
    later = decide_shadow([day(1, regression=0.03), day(2, regression=0.0), day(3, regression=0.0)], gate, True)
    assert later["action"] == PROMOTE  # only the latest N decide


@pytest.mark.parametrize(("classifier", "measure"), [(True, "disagreement_rate"), (False, "mean_relative_difference")])
def test_without_labels_the_declared_disagreement_bound_judges(classifier, measure):
    gate = GateSpec(require_shadow_days=2, max_disagreement=0.05)
    assert decide_shadow([day(1, disagreement=0.01), day(2, disagreement=0.04)], gate, classifier)["action"] == PROMOTE
    verdict = decide_shadow([day(1, disagreement=0.01), day(2, disagreement=0.2)], gate, classifier)
    assert verdict["action"] == END and measure in verdict["reasons"][0]
    assert judge_day(day(1, disagreement=0.2), gate, classifier)["basis"] == "disagreement"


def test_zero_required_days_only_observes():
    verdict = decide_shadow([day(1, regression=0.0)], GateSpec(), is_classifier=True)
    assert verdict["action"] == WAIT and "observation only" in verdict["reasons"][0]


def test_the_declaration_refuses_bad_bounds():
    with pytest.raises(ValueError, match="require_shadow_days"):
        GateSpec(require_shadow_days=-1)
    with pytest.raises(ValueError, match="max_disagreement"):
        GateSpec(max_disagreement=-0.1)
