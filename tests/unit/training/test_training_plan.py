"""steps.training_plan: the keyword arguments of the mapped training tasks, built by start_tracking."""

from __future__ import annotations

import pytest

from modelops.records import RecordError
from modelops.training import steps

PARENT = {"parent_run_id": "abc", "experiment_id": "1"}


def test_one_entry_per_candidate_in_the_order_chosen():
    plan = steps.training_plan(PARENT, ["random_forest", "linear"])
    assert plan == [{"candidate": "random_forest", "parent": PARENT}, {"candidate": "linear", "parent": PARENT}]


def test_a_parent_without_its_run_id_is_refused_naming_the_field():
    with pytest.raises(RecordError, match="parent_run_id"):
        steps.training_plan({"experiment_id": "1"}, ["linear"])
