"""A data scientist's work on the running stack, through Airflow's REST API:

- their own code (churn_plus: an engineered feature and their LightGBM factory) trains, is
  promoted and served, and the served answer uses the engineered feature;
- a candidate of theirs that fails in fit is recorded as failed with their file and line, and
  the other candidates of the run go on to the gate;
- a model trained on their own machine and logged to the tracking server is submitted with
  ``python -m modelops.submit``: refused when it does not fit the declaration, otherwise checked,
  evaluated beside the champion, gated, registered, promoted and deployed with its lineage.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
from tests.support.laptop import laptop_model
from tests.support.polling import wait_until

from modelops import registry
from modelops.config import get_model
from modelops.layout import decision_record_key, experiment_name
from modelops.local import datagen
from modelops.submit import cli as submit

MODEL = "churn_plus"
DAG = f"retrain_{MODEL}"


def _run(airflow, dag_id: str, today: dt.date, conf: dict | None = None, timeout: float = 900) -> dict:
    airflow.wait_for_dag(dag_id, timeout=240)
    airflow.unpause(dag_id)
    as_of = dt.datetime.combine(today, dt.time(), dt.UTC)
    run = airflow.trigger(dag_id, conf=conf, logical_date=as_of.isoformat())
    return airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=timeout)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _predict(stack, model: str, frame: pd.DataFrame) -> dict:
    answer = requests.post(
        f"{stack.config.serving_url}/models/{model}/predict", json={"records": _records(frame)}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def own_code_champion(airflow, today):
    finished = _run(airflow, DAG, today)
    assert finished["state"] == "success", airflow.failure_logs(DAG, finished["dag_run_id"])
    return finished


def test_own_code_trains_promotes_and_serves_with_the_engineered_feature(own_code_champion, airflow, stack):
    from modelops.usercode.models import load_model

    run_id = own_code_champion["dag_run_id"]
    trained = {r["candidate"]: r for r in airflow.xcom(DAG, run_id, "select_best")["selection"]["ranking"]}
    assert set(trained) == {"linear", "renewal_lightgbm"} and trained["renewal_lightgbm"]["passed"]
    champion = registry.version_for_alias(MODEL, registry.CHAMPION)
    assert champion is not None
    pipeline = load_model(f"models:/{MODEL}/{champion.version}")
    assert pipeline.steps[0][0] == "feature_renewal_window"  # their step is part of the logged model
    assert type(pipeline.steps[0][1]).__module__ == "churn_plus.features"

    # Customers at a renewal month: the served answer is the full pipeline's, and it differs from
    # what the same model answers when the engineered column is forced to 0.
    frame = datagen.generate_batch("churn", dt.date(2026, 11, 21), 400, seed=7)
    frame = frame[frame["contract"] != "month-to-month"].head(40).copy()
    frame["tenure_months"] = frame["contract"].map({"one-year": 12, "two-year": 24})
    features = frame[get_model(MODEL).feature_names]
    body = _predict(stack, MODEL, features)
    assert body["version"] == str(champion.version)
    served = [p[1] for p in body["probabilities"]]
    assert served == pytest.approx(pipeline.predict_proba(features)[:, 1].tolist(), abs=1e-9)
    without = pipeline[1:].predict_proba(pipeline[0].transform(features).assign(near_renewal=0.0))[:, 1]
    assert max(abs(a - b) for a, b in zip(served, without, strict=True)) > 0.01


@pytest.fixture
def declare_by_hand(models_dir, expectations_dir):
    """Declares copies of churn_plus as a data scientist would by hand, reading churn_plus's data;
    removes them afterwards, so the stack's declared models are the shipped ones again."""
    written: list = []

    def declare(name: str, edit_package=None, edit_declaration=None) -> Path:
        package = models_dir / name
        shutil.copytree(models_dir / MODEL, package, ignore=shutil.ignore_patterns("__pycache__", "test_*.py"))
        written.append(package)
        for path in package.glob("*.py"):
            path.write_text(path.read_text().replace(MODEL, name))
        if edit_package:
            edit_package(package)
        declaration = yaml.safe_load((models_dir / f"{MODEL}.yaml").read_text())
        declaration = yaml.safe_load(yaml.safe_dump(declaration).replace(MODEL, name))
        declaration["data"] = declaration["data"] | {"raw_prefix": f"raw/{MODEL}/"}  # their data, read only
        declaration["schedule"] = {"retrain": None, "monitor": None}
        if edit_declaration:
            edit_declaration(declaration)
        suite = expectations_dir / f"{name}.json"
        suite.write_text((expectations_dir / f"{MODEL}.json").read_text().replace(f'"{MODEL}"', f'"{name}"'))
        path = models_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(declaration, sort_keys=False))
        written.extend([suite, path])
        return package

    yield declare
    for path in reversed(written):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def test_a_failing_candidate_of_their_code_is_recorded_and_the_others_go_on(
    own_code_champion, airflow, declare_by_hand, today, mlflow_client
):
    name = "churn_broken"

    def add_broken(package: Path) -> None:
        (package / "broken.py").write_text(
            "from sklearn.base import BaseEstimator, ClassifierMixin\n\n\n"
            "class Broken(ClassifierMixin, BaseEstimator):\n"
            "    def fit(self, X, y):\n"
            "        raise ValueError('the data scientist forgot something')\n\n"
            "    def predict(self, X):\n"
            "        return X[:, 0]\n\n\n"
            "def make_broken():\n"
            "    return Broken()\n"
        )

    def two_candidates(declaration: dict) -> None:
        declaration["code"]["candidates"].append({"name": "broken", "factory": f"{name}.broken:make_broken"})
        declaration["training"]["candidates"] = ["linear", "broken"]

    package = declare_by_hand(name, add_broken, two_candidates)
    finished = _run(airflow, f"retrain_{name}", today)
    assert finished["state"] == "success", airflow.failure_logs(f"retrain_{name}", finished["dag_run_id"])
    best = airflow.xcom(f"retrain_{name}", finished["dag_run_id"], "select_best")
    assert best["candidate"] == "linear" and "broken" in best["selection"]["reason"]
    failed = [
        run
        for run in mlflow_client.search_runs(
            [mlflow_client.get_experiment_by_name(experiment_name(name)).experiment_id],
            f"tags.candidate = 'broken' and tags.airflow_run_id = '{finished['dag_run_id']}'",
        )
    ]
    assert len(failed) == 1 and failed[0].info.status == "FAILED"
    error = failed[0].data.tags["error"]
    assert f"{package / 'broken.py'}, line 6" in error and "the data scientist forgot something" in error
    assert registry.version_for_alias(name, registry.CHAMPION) is not None  # linear went through the gate


def _import_errors_naming(airflow, text: str) -> list[dict]:
    return [e for e in airflow.import_errors() if text in e["stack_trace"]]


def test_their_code_that_does_not_import_shows_in_the_ui_with_file_and_line(airflow, declare_by_hand):
    """What the Airflow UI lists as an import error (REST ``/importErrors``) names the model, their
    file and the line; the model's DAGs and everyone else's stay; fixing the file clears it."""
    name = "churn_typo"
    bad = "import pandas as pd\n\nfrom sklearn.preprocesing import FunctionTransformer\n"
    package = declare_by_hand(name, lambda p: (p / "features.py").write_text(bad))
    naming = f"model '{name}'"
    error = wait_until(lambda: _import_errors_naming(airflow, naming), f"an import error naming {naming}", 180)[0]
    assert f"{package / 'features.py'}, line 3" in error["stack_trace"]
    assert "sklearn.preprocesing" in error["stack_trace"]
    assert error["filename"].endswith("model_configs.py")
    for dag_id in (f"retrain_{name}", "retrain_churn", DAG):
        airflow.wait_for_dag(dag_id, timeout=120)

    (package / "features.py").write_text((package.parent / MODEL / "features.py").read_text().replace(MODEL, name))
    wait_until(lambda: not _import_errors_naming(airflow, naming), f"the import error of {name} to clear", 180)


def test_a_model_that_does_not_fit_the_declaration_is_refused(own_code_champion, capsys):
    model = get_model(MODEL)
    columns = [c for c in model.feature_names if c != "region"] + ["age"]
    uri, _ = laptop_model(model, None, columns)
    before = registry.version_for_alias(MODEL, registry.CHAMPION).version
    assert submit.main([MODEL, "--model-uri", uri, "--by", "alice"]) == 1
    out = capsys.readouterr()
    assert "refused" in out.out and "['age']" in out.out and "not declared features" in out.out
    assert registry.version_for_alias(MODEL, registry.CHAMPION).version == before


def test_a_submitted_model_is_gated_beside_the_champion_promoted_and_served(
    own_code_champion, airflow, stack, store, mlflow_client, capsys
):
    model = get_model(MODEL)
    first = airflow.xcom(DAG, own_code_champion["dag_run_id"], "snapshot_training_data")
    uri, source_run = laptop_model(model, first["manifest_uri"])
    before = registry.version_for_alias(MODEL, registry.CHAMPION).version
    assert submit.main([MODEL, "--model-uri", uri, "--by", "alice", "--force-promote"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    champion = registry.version_for_alias(MODEL, registry.CHAMPION)
    assert champion.version != before and f"promoted and deployed: {MODEL} version {champion.version}" in out

    tags = mlflow_client.get_model_version(MODEL, champion.version).tags
    assert tags["candidate"] == "submitted" and tags["submitted_by"] == "alice"
    assert tags["submitted_from_run"] == source_run and tags["submitted_model_uri"] == uri
    assert tags["training_data"] == first["manifest_uri"]  # the run named a snapshot of this platform
    run_id = tags["airflow_run_id"]
    record = store.get_json(decision_record_key(MODEL, run_id))
    assert record["submission"]["accepted"] and record["submission"]["submitted_by"] == "alice"
    assert record["champion_version_compared"] == before  # evaluated beside the champion
    evaluation = store.get_json(store.key_of(airflow.xcom(DAG, run_id, "evaluate")["evaluation_uri"]))
    assert evaluation["champion"]["version"] == before and evaluation["candidate"]["primary"] < 0.99  # not their 0.999

    frame = datagen.generate_batch("churn", dt.date(2026, 11, 22), 20, seed=9)[model.feature_names]
    assert _predict(stack, MODEL, frame)["version"] == str(champion.version)


def test_a_version_with_their_code_is_reproduced_from_its_lineage(own_code_champion, airflow):
    """``python -m modelops.reproduce`` rebuilds the churn_plus version the fixture's run promoted,
    with the code logged with it, in a fresh process, and finds identical predictions and model
    bytes. (Named by its run, not by the alias: the submission test above moves the champion.)"""
    import json
    import os
    import subprocess
    import sys

    from modelops.training.results import REGISTERED

    version = airflow.xcom(DAG, own_code_champion["dag_run_id"], "register", key=REGISTERED)["version"]
    completed = subprocess.run(
        [sys.executable, "-m", "modelops.reproduce", MODEL, str(version), "--json"],
        capture_output=True, text=True, timeout=1200, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["verdict"] == "match" and report["comparison"]["predictions"]["identical"]
    assert any(c["subject"].startswith("model's own code (churn_plus)") for c in report["inputs"])
