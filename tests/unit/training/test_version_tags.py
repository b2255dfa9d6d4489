"""Every candidate run and every registered version carries the code version, the declaration and
suite hashes and the library versions; the registered version keeps those the candidate was
*trained* with. The real steps on a throw-away SQLite MLflow and moto's S3; the snapshot split
and the baseline profile are stood in for (their own tests cover them)."""

from __future__ import annotations

import json

import pytest
from tests.unit.local_mlflow import local_mlflow
from tests.unit.training.training_helpers import make_config, make_frame

from modelops import registry, versioning
from modelops.layout import decision_record_key, experiment_name
from modelops.training import steps

RUN_ID = "manual__2026-12-02T10:00:00+00:00"
DAG_ID = "retrain_toy"
SUITE = {"name": "toy", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x0"}}]}
SNAPSHOT = {
    "dataset_hash": "d" * 64,
    "manifest_uri": "s3://bucket/snapshots/toy/run/manifest.json",
    "window": {"days": 30, "last_day": "2026-12-01"},
    "rows": 300,
}


@pytest.fixture
def tracked(store, tmp_path, monkeypatch):
    """Local MLflow with the model's experiment, a suite for ``toy``, and the split stood in for."""
    suites = tmp_path / "expectations"
    suites.mkdir()
    (suites / "toy.json").write_text(json.dumps(SUITE))
    monkeypatch.setenv("MODELOPS_EXPECTATIONS_DIR", str(suites))
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "c0ffee-trained")
    monkeypatch.setenv(versioning.BUILD_TIME_ENV, "2026-12-01T00:00:00Z")
    frame = make_frame(n=200)
    monkeypatch.setattr(steps, "training_split", lambda model, run_id, store=None: (frame, frame))
    monkeypatch.setattr(steps, "_baseline_with_predictions", lambda model, run_id, best, store: {"stand_in": True})
    with local_mlflow(tmp_path, experiment_name("toy")) as ml:
        yield ml, store, suites


def _register(model, store, best: dict) -> dict:
    baseline_uri = store.uri("snapshots/toy/run/baseline.json")
    store.put_json(decision_record_key(model.name, RUN_ID), {"promote": True})
    return steps.register(
        model,
        run_id=RUN_ID,
        dag_id=DAG_ID,
        best=best,
        snapshot=SNAPSHOT,
        validation={"result_uri": "s3://bucket/validation.json"},
        baseline={"baseline_uri": baseline_uri},
        decided={"decision_uri": store.uri(decision_record_key(model.name, RUN_ID))},
        store=store,
    )


def _best(record: dict) -> dict:
    return {
        "candidate": record["candidate"],
        "cv_primary": record.get("cv_primary"),
        "mlflow_run_id": record["mlflow_run_id"],
        "model_uri": record["model_uri"],
        "parent_run_id": record["parent_run_id"],
        "passed": True,
        "failure_reasons": [],
        "selection": {"reason": "test"},
        "params": {},
    }


def test_trained_and_registered_versions_carry_the_training_time_versions(tracked, monkeypatch):
    ml, store, suites = tracked
    model = make_config()
    parent = steps.start_tracking(model, RUN_ID, DAG_ID, SNAPSHOT)
    trained_with = versioning.version_tags(model)
    record = steps.train_candidates(model, RUN_ID, "linear", parent)

    candidate_tags = ml.client.get_run(record["mlflow_run_id"]).data.tags
    assert {k: candidate_tags.get(k) for k in versioning.VERSION_TAGS} == trained_with
    assert trained_with["modelops.code_version"] == "c0ffee-trained"
    assert trained_with["modelops.suite_sha256"] == versioning.canonical_sha256(SUITE)
    assert trained_with["modelops.declaration_sha256"] == versioning.declaration_hash(model)
    parent_tags = ml.client.get_run(parent["parent_run_id"]).data.tags
    assert versioning.recorded_version_tags(parent_tags) == trained_with

    # Between training and registration the code and the suite move on: the version keeps what it was trained with.
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "later-commit")
    (suites / "toy.json").write_text(json.dumps(SUITE | {"meta": {"edited": True}}))
    registered = _register(model, store, _best(record))

    version = ml.client.get_model_version("toy", registered["version"])
    assert {k: version.tags.get(k) for k in versioning.VERSION_TAGS} == trained_with
    assert version.tags[versioning.VERSIONS_FROM_TAG] == versioning.FROM_TRAINING_RUN
    assert version.tags["airflow_run_id"] == RUN_ID  # the lineage tags are still there
    decision = store.get_json(decision_record_key("toy", RUN_ID))
    assert decision["registered_version"] == registered["version"]
    assert {k: decision["version_tags"][k] for k in versioning.VERSION_TAGS} == trained_with


def test_runs_without_version_tags_are_registered_with_the_register_steps_versions(tracked):
    """Runs trained before the tags existed: the register step fills in what they lack and says so."""
    ml, store, _ = tracked
    model = make_config()
    import mlflow

    with mlflow.start_run(experiment_id=ml.experiment_id) as run:
        mlflow.log_text("stand-in", "model/MLmodel")
    best = _best(
        {"candidate": "linear", "mlflow_run_id": run.info.run_id, "model_uri": f"runs:/{run.info.run_id}/model",
         "parent_run_id": run.info.run_id}
    )  # fmt: skip
    registered = _register(model, store, best)
    tags = ml.client.get_model_version("toy", registered["version"]).tags
    assert {k: tags.get(k) for k in versioning.VERSION_TAGS} == versioning.version_tags(model)
    assert tags[versioning.VERSIONS_FROM_TAG] == versioning.FROM_REGISTER
    assert registry.find_version_for_run("toy", RUN_ID).version == registered["version"]

    with mlflow.start_run(experiment_id=ml.experiment_id) as partly:
        mlflow.set_tag("modelops.code_version", "old-commit")
    versions = steps.trained_versions(model, partly.info.run_id, ml.client)
    assert versions["modelops.code_version"] == "old-commit"
    assert versions["modelops.suite_sha256"] == versioning.canonical_sha256(SUITE)
    assert versions[versioning.VERSIONS_FROM_TAG] == versioning.FROM_BOTH
