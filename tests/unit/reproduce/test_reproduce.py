"""Reproducing a registered version: rebuilt in a fresh process from its lineage alone, compared
on the evaluation split (predictions, probabilities, canonical model bytes); every changed input
named; versions trained elsewhere refused plainly."""

from __future__ import annotations

import pytest
from tests.unit.reproduce.reproduce_helpers import churn_frames, train_and_register

from modelops.config import get_model
from modelops.reproduce import report as reports
from modelops.reproduce.runner import reproduce


@pytest.fixture
def churn():
    return get_model("churn")


def test_a_trained_version_is_rebuilt_identically(tracked, store, churn, tmp_path):
    registered = train_and_register(churn, store, churn_frames(), "random_forest")

    report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")

    assert report.verdict == reports.MATCH, report.to_text()
    assert report.exit_status == 0
    comparison = report.comparison
    assert comparison["predictions"]["identical"] and comparison["predictions"]["rows"] > 100
    assert comparison["probabilities"]["identical"]
    assert comparison["deterministic"] and comparison["model_digest"]["identical"]
    assert report.lineage["params"] == registered.record["params"]
    assert report.lineage["declaration_source"].startswith("recorded")
    assert not report.changed_inputs
