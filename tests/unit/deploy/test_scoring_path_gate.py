"""The deploy's parity gate: the version is tagged ``compiled`` only when the compiled scorer answers
like the pipeline on its held-out rows; otherwise ``pipeline``, with the reason, and the deploy goes on."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tests.unit.serving.compiled.compiled_helpers import fitted, scoring_rows
from threadpoolctl import threadpool_limits

from modelops.deploy import scoring_path
from modelops.serving.compiled import COMPILED, PIPELINE, lower, parity
from modelops.serving.compiled.parity import SCORING_PATH_PARITY_TAG, SCORING_PATH_REASON_TAG, SCORING_PATH_TAG


class FakeRegistry:
    """The two MLflow client calls the gate makes: read a version, tag it."""

    def __init__(self, tags: dict[str, str] | None = None):
        self.tags = dict(tags or {"airflow_run_id": "manual__1"})

    def get_model_version(self, name, version):
        return SimpleNamespace(name=name, version=version, tags=dict(self.tags))

    def set_model_version_tag(self, name, version, key, value):
        self.tags[key] = value


@pytest.fixture(autouse=True)
def one_native_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def version_of(monkeypatch):
    """A registry version whose pipeline is ``family``/``problem``, held-out rows from the helpers."""

    def make(family: str, problem: str):
        config, pipeline = fitted(family, problem)
        monkeypatch.setattr(scoring_path, "load_pipeline", lambda uri: pipeline)
        monkeypatch.setattr(
            scoring_path, "held_out_rows", lambda model, version, tags, store: (scoring_rows(), "test rows")
        )
        return config, pipeline

    return make


@pytest.mark.parametrize("family", ["random_forest", "hist_gradient_boosting"])
def test_parity_passes_and_the_version_is_tagged_compiled(version_of, family):
    config, _ = version_of(family, "multiclass_classification")
    registry = FakeRegistry()
    verdict = scoring_path.parity_gate(config, "3", store=object(), mlflow_client=registry)
    assert verdict.path == COMPILED and verdict.rows == len(scoring_rows())
    assert registry.tags[SCORING_PATH_TAG] == COMPILED
    assert (
        "parity passed" in registry.tags[SCORING_PATH_REASON_TAG]
        and "test rows" in registry.tags[SCORING_PATH_REASON_TAG]
    )
    assert json.loads(registry.tags[SCORING_PATH_PARITY_TAG])["max_difference"] <= 1e-6


def test_a_perturbed_lowering_fails_parity_and_the_pipeline_is_chosen_saying_why(version_of, monkeypatch):
    config, pipeline = version_of("hist_gradient_boosting", "binary_classification")
    perturbed = lower(pipeline)
    perturbed.model.leaf_values = perturbed.model.leaf_values * 1.01  # a lowering bug, deliberately
    monkeypatch.setattr(parity, "lower_or_reason", lambda p: (perturbed, None))
    registry = FakeRegistry({SCORING_PATH_TAG: COMPILED, "airflow_run_id": "manual__1"})  # an earlier verdict
    verdict = scoring_path.parity_gate(config, "4", store=object(), mlflow_client=registry)
    assert verdict.path == PIPELINE and verdict.max_difference > 1e-6
    assert registry.tags[SCORING_PATH_TAG] == PIPELINE
    reason = registry.tags[SCORING_PATH_REASON_TAG]
    assert "parity failed" in reason and "max difference" in reason and "pipeline serves" in reason


def test_a_check_that_cannot_run_chooses_the_pipeline_and_does_not_fail_the_deploy(monkeypatch):
    config, _ = fitted("linear", "regression")

    def unreachable(uri):
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(scoring_path, "load_pipeline", unreachable)
    registry = FakeRegistry()
    verdict = scoring_path.parity_gate(config, "5", store=object(), mlflow_client=registry)
    assert verdict.path == PIPELINE and registry.tags[SCORING_PATH_TAG] == PIPELINE
    assert "could not run" in verdict.reason and "artifact store unreachable" in verdict.reason


def test_without_a_training_run_the_newest_snapshot_rows_are_used(monkeypatch):
    from modelops.deploy import verification

    monkeypatch.setattr(verification, "recent_rows_of_version", lambda model, version, store: "newest rows")
    config, _ = fitted("linear", "regression")
    rows, source = scoring_path.held_out_rows(config, "6", {}, store=object())
    assert rows == "newest rows" and "newest rows of the version's snapshot" in source
