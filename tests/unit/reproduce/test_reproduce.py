"""Reproducing a registered version: rebuilt in a fresh process from its lineage alone, compared
on the evaluation split (predictions, probabilities, canonical model bytes); every changed input
named; versions trained elsewhere refused plainly.

One random-forest version is trained and registered for the whole module (training is the slow
part); a test that changes the bucket puts it back."""

from __future__ import annotations

import pytest
from moto import mock_aws
from tests.support.aws import aws_test_env
from tests.unit.local_mlflow import local_mlflow
from tests.unit.reproduce.reproduce_helpers import Registered, churn_frames, train_and_register

from modelops import versioning
from modelops.config import get_model
from modelops.layout import experiment_name
from modelops.reproduce import report as reports
from modelops.reproduce.runner import reproduce
from modelops.store import Store


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Store, Registered]:
    """churn's random forest trained by the real step and registered as version 1."""
    with aws_test_env(MODELOPS_BUCKET="bucket"), mock_aws(), pytest.MonkeyPatch.context() as mp:
        mp.setenv(versioning.CODE_VERSION_ENV, "c0ffee-trained")
        store = Store("bucket")
        store.ensure_bucket()
        with local_mlflow(tmp_path_factory.mktemp("mlflow"), experiment_name("churn")):
            yield store, train_and_register(get_model("churn"), store, churn_frames(150), "random_forest")


def test_a_trained_version_is_rebuilt_identically(trained, tmp_path):
    store, registered = trained

    report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")

    assert report.verdict == reports.MATCH, report.to_text()
    assert report.exit_status == 0
    comparison = report.comparison
    assert comparison["predictions"]["identical"] and comparison["predictions"]["rows"] == 90
    assert comparison["probabilities"]["identical"]
    assert comparison["deterministic"] and comparison["model_digest"]["identical"]
    assert report.lineage["params"] == registered.record["params"]
    assert report.lineage["declaration_source"].startswith("recorded")
    assert report.lineage["openmp_threads"] == 1  # the fit ran under threadpool_limits(1)
    assert not report.changed_inputs


def test_a_changed_snapshot_object_is_named_and_nothing_is_rebuilt(trained, tmp_path):
    store, registered = trained
    changed = registered.manifest["objects"][1]["key"]
    original = store.get_bytes(changed)
    store.put_bytes(changed, original + b"\n", "text/csv")  # same rows, other bytes
    try:
        report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")
    finally:
        store.put_bytes(changed, original, "text/csv")  # same bytes, same ETag

    assert report.verdict == reports.MISMATCH and report.exit_status == 1
    assert report.comparison is None  # not rebuilt: the training bytes are gone
    assert [r for r in report.reasons if store.uri(changed) in r and "ETag" in r], report.reasons
    assert [c.subject for c in report.inputs if c.blocks] == [f"snapshot object {store.uri(changed)}"]
    assert f"! snapshot object {store.uri(changed)}: changed" in report.to_text()


def test_a_rebuild_that_differs_is_a_mismatch_naming_what_differs(trained, tmp_path, monkeypatch):
    from modelops.reproduce import runner

    store, registered = trained
    real = runner.rebuild_request

    def other_params(lineage, *args):
        request = real(lineage, *args)
        return request | {"params": {**request["params"], "max_depth": 2}}  # not what was chosen

    monkeypatch.setattr(runner, "rebuild_request", other_params)

    report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")

    assert report.verdict == reports.MISMATCH and report.exit_status == 1
    assert any(r.startswith("model bytes differ") for r in report.reasons), report.reasons
    assert any(r.startswith("probabilities differ") for r in report.reasons), report.reasons
    assert not report.comparison["model_digest"]["identical"]


def test_a_later_code_version_and_declaration_are_named_beside_the_match(trained, tmp_path, monkeypatch):
    import shutil

    from modelops.config import models_dir

    store, registered = trained
    later = tmp_path / "models"
    later.mkdir()
    text = (models_dir() / "churn.yaml").read_text()
    shutil.copy(models_dir() / "churn.yaml", later / "churn.yaml")
    (later / "churn.yaml").write_text(text.replace("description:", "description: edited since.", 1))
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(later))
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "beef-later")

    report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")

    assert report.verdict == reports.MATCH, report.to_text()  # rebuilt with the recorded declaration
    changed = {c.subject: c for c in report.changed_inputs}
    assert set(changed) == {"code version", "declaration SHA-256"}
    assert (changed["code version"].then, changed["code version"].now) == ("c0ffee-trained", "beef-later")
    assert "changed since training: code version: changed (then c0ffee-trained, now beef-later)" in report.reasons[-1]


def test_a_submitted_version_says_it_has_no_training_run(trained):
    from modelops import registry

    store, registered = trained
    tags = {"candidate": "submitted", "submitted_by": "alice", "submitted_model_uri": "runs:/abc/model",
            "submitted_from_run": "abc", "training_data": "unknown", "airflow_run_id": "manual__submitted"}  # fmt: skip
    version = registry.register_version(
        "churn", registered.record["model_uri"], registered.record["mlflow_run_id"], tags
    )

    report = reproduce("churn", str(version.version), store=store)

    assert report.verdict == reports.NOT_REPRODUCIBLE and report.exit_status == 3
    assert "trained outside the platform and submitted (by alice, model runs:/abc/model" in report.reasons[0]
    assert "no training run to rebuild" in report.reasons[0]


def test_an_unknown_version_is_named_and_the_cli_exits_3(trained, capsys):
    import json

    store, _ = trained

    from modelops.reproduce import cli

    report = reproduce("churn", "champion", store=store)
    assert report.verdict == reports.NOT_REPRODUCIBLE
    assert "model 'churn' has no registered version 'champion'" in report.reasons[0]

    assert cli.main(["churn", "champion", "--json"]) == 3
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == "not reproducible" and not printed["reproduced"]


def test_a_rebuild_that_fails_is_reported_with_its_error(trained, tmp_path, monkeypatch):
    from modelops.reproduce import runner

    store, registered = trained
    real = runner.rebuild_request
    monkeypatch.setattr(runner, "rebuild_request", lambda *args: real(*args) | {"candidate": "no_such_family"})

    report = reproduce("churn", registered.version, store=store, workdir=tmp_path / "work")

    assert report.verdict == reports.MISMATCH and report.comparison is None
    assert report.reasons[0].startswith("the rebuild failed: the rebuild process exited with 1")
    assert "no_such_family" in report.reasons[0]
