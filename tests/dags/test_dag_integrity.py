"""Every DAG file imports cleanly through a DagBag, follows the conventions, and parses fast."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{k}:\n{v}" for k, v in dagbag.import_errors.items())


def test_one_dag_set_per_declared_model(dagbag):
    from modelops.config import load_all_models

    for name in load_all_models():
        assert f"smoke_{name}" in dagbag.dag_ids


def test_every_dag_follows_conventions(dagbag):
    assert dagbag.dags, "no DAGs found"
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id}: doc_md missing"
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.dagrun_timeout is not None, f"{dag_id}: no dagrun_timeout"
        assert dag.start_date is not None and dag.start_date.utcoffset().total_seconds() == 0, (
            f"{dag_id}: start_date not UTC"
        )
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: owner not set"
            assert task.retries >= 1, f"{dag_id}.{task.task_id}: no retries"


def test_every_dag_call_states_schedule_and_catchup():
    """``schedule`` defaults silently; each @dag(...) must say it (and catchup) out loud, either
    itself or through ``dagkit.dag_header``, whose ``schedule`` is a required keyword (it sets
    ``catchup``, ``tags`` and ``default_args`` for every DAG)."""
    for path in DAG_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"dag", "DAG"}:
                keywords = {kw.arg for kw in node.keywords}
                headers = [
                    kw.value
                    for kw in node.keywords
                    if kw.arg is None
                    and isinstance(kw.value, ast.Call)
                    and getattr(kw.value.func, "id", None) == "dag_header"
                ]
                if headers:
                    keywords |= {kw.arg for kw in headers[0].keywords} | {"catchup", "tags", "default_args"}
                assert {"schedule", "catchup", "doc_md", "tags", "default_args"} <= keywords, f"{path.name}: {keywords}"


def test_every_dag_states_its_conventions(dagbag):
    """What the header gives every DAG, checked on the parsed DAGs themselves."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md, f"{dag_id}: no doc_md"
        assert dag.catchup is False, f"{dag_id}: catchup"
        assert "modelops" in dag.tags, f"{dag_id}: tags {dag.tags}"
        assert dag.dagrun_timeout is not None, f"{dag_id}: no dagrun_timeout"
        assert dag.start_date is not None and dag.start_date.utcoffset().total_seconds() == 0, dag_id


def test_every_task_says_what_it_does(dagbag):
    """The one-line docstring (or doc_md) the UI shows on the task's page."""
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            doc = getattr(task, "doc_md", None) or getattr(task, "doc", None)
            if doc is None and hasattr(task, "partial_kwargs"):  # a mapped task
                doc = task.partial_kwargs.get("doc_md")
            assert doc, f"{dag_id}.{task.task_id}: no docstring"


def test_no_heavy_imports_at_module_level():
    heavy = {"pandas", "numpy", "sklearn", "mlflow", "great_expectations", "boto3", "scipy"}
    for path in DAG_FILES:
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in heavy, f"{path.name} imports {name} at parse time"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_loads_no_heavy_library(path):
    """What the dag-processor pays per file: parsing it in a fresh interpreter pulls in none of
    the heavy libraries, however deep the import (modelops modules included). The time is
    printed for information; it is not asserted (a loaded machine would make that flaky)."""
    code = textwrap.dedent(
        f"""
        import json, sys, time, runpy, airflow.sdk
        before = set(sys.modules)
        started = time.perf_counter()
        runpy.run_path({str(path)!r})
        seconds = time.perf_counter() - started
        print(json.dumps({{"seconds": seconds, "new": sorted(set(sys.modules) - before)}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO / "plugins")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\nparse time {path.name}: {measured['seconds'] * 1000:.0f} ms")
    heavy = {"pandas", "numpy", "sklearn", "mlflow", "great_expectations", "scipy", "pyarrow"}
    if path.name == "model_configs.py":
        # The one file that imports the models' own code (which imports what it likes) to report
        # its errors; only when a file changed (see test_model_code_check_is_cached).
        heavy -= {"pandas", "numpy", "sklearn", "scipy"}
    loaded = sorted({name.split(".")[0] for name in measured["new"]} & heavy)
    assert not loaded, f"parsing {path.name} imports {loaded}"


def test_bad_model_config_is_an_import_error_and_spares_other_models(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    models = tmp_path / "models"
    models.mkdir()
    (models / "churn.yaml").write_text((REPO / "include" / "models" / "churn.yaml").read_text())
    broken = yaml.safe_load((REPO / "include" / "models" / "churn.yaml").read_text())
    broken["name"] = "broken"
    broken["training"]["cv_folds"] = 1
    (models / "broken.yaml").write_text(yaml.safe_dump(broken))
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(models))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    errors = {Path(k).name: v for k, v in bag.import_errors.items()}
    assert "model_configs.py" in errors
    message = errors["model_configs.py"]
    assert "broken.yaml" in message and "training.cv_folds" in message and "greater than or equal to 2" in message
    assert "smoke_churn" in bag.dag_ids and "smoke_broken" not in bag.dag_ids


def _model_with_code(models: Path, name: str, features_source: str) -> None:
    """A copy of churn_plus named ``name`` whose feature module is ``features_source``."""
    import shutil

    declaration = yaml.safe_load((REPO / "include" / "models" / "churn_plus.yaml").read_text())
    text = yaml.safe_dump(declaration).replace("churn_plus", name)
    (models / f"{name}.yaml").write_text(text)
    shutil.copytree(REPO / "include" / "models" / "churn_plus", models / name)
    for path in (models / name).glob("*.py"):
        path.write_text(path.read_text().replace("churn_plus", name))
    (models / name / "features.py").write_text(features_source)


def test_model_code_that_does_not_import_is_an_import_error_naming_file_and_line(tmp_path, monkeypatch):
    """The model's DAGs stay (its champion keeps serving and being monitored); only the
    declarations check reports the error, with the model, the file and the line."""
    from airflow.dag_processing.dagbag import DagBag

    models = tmp_path / "models"
    models.mkdir()
    (models / "churn.yaml").write_text((REPO / "include" / "models" / "churn.yaml").read_text())
    _model_with_code(models, "broken_code", "import pandas as pd\n\n\ndef renewal_window(:\n    pass\n")
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(models))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # a fresh code-check cache
    bag = DagBag(dag_folder=str(REPO / "dags"))
    message = {Path(k).name: v for k, v in bag.import_errors.items()}["model_configs.py"]
    features = models / "broken_code" / "features.py"
    assert "model 'broken_code'" in message and f"{features}, line 4" in message and "SyntaxError" in message
    assert {"retrain_churn", "retrain_broken_code", "monitor_broken_code"} <= set(bag.dag_ids)


def test_model_code_check_is_cached_until_a_file_changes(tmp_path, monkeypatch):
    from modelops.config import get_model
    from modelops.usercode import loader

    models = tmp_path / "models"
    models.mkdir()
    _model_with_code(models, "cached_code", "raise RuntimeError('first version')\n")
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(models))
    model = get_model("cached_code")
    first = loader.cached_code_errors(model, tmp_path / "cache")
    assert len(first) == 1 and "first version" in first[0] and "line 1" in first[0]
    calls = []
    monkeypatch.setattr(loader, "declared_code_errors", lambda m: calls.append(m) or [])
    assert loader.cached_code_errors(model, tmp_path / "cache") == first and calls == []
    (models / "cached_code" / "features.py").write_text("def renewal_window():\n    return None\n# changed\n")
    assert loader.cached_code_errors(model, tmp_path / "cache") == [] and len(calls) == 1


def test_every_declared_factory_and_feature_step_imports_and_builds():
    """The DAG test imports every model's own code and builds each factory's estimator for every
    setting of its search space, and each feature step."""
    from modelops.config import load_all_models
    from modelops.training.search_spaces import search_space_for
    from modelops.usercode import loader

    with_code = [m for m in load_all_models().values() if m.code is not None]
    assert with_code, "the shipped examples include a model with its own code (churn_plus)"
    for model in with_code:
        assert loader.declared_code_errors(model) == []
        assert len(loader.feature_steps(model)) == len(model.code.feature_steps)
        for candidate in model.code.candidates:
            for setting in search_space_for(model, candidate.name):
                assert callable(loader.make_estimator(model, candidate, setting).fit)


def test_every_dag_with_params_checks_them_before_any_other_task(dagbag):
    with_params = {dag_id: dag for dag_id, dag in dagbag.dags.items() if dag.params}
    assert {"retrain_churn", "deploy_churn", "rollback_churn", "redrive_churn", "reconcile_churn"} <= set(with_params)
    for dag_id, dag in with_params.items():
        assert [task.task_id for task in dag.roots] == ["check_run_params"], f"{dag_id}: roots {dag.roots}"


def test_an_unknown_trigger_key_fails_the_run_naming_it_and_the_closest_param(dagbag, monkeypatch):
    import types

    import airflow.sdk
    from airflow.sdk.exceptions import AirflowFailException

    from modelops.dagkit import check_run_params

    dag = dagbag.dags["retrain_churn"]

    def run_with(conf):
        context = {"dag": dag, "dag_run": types.SimpleNamespace(conf=conf)}
        monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: context)
        check_run_params()

    run_with({"training_window_days": 10, "dry_run": True})  # declared keys pass
    with pytest.raises(AirflowFailException) as error:
        run_with({"trainig_window_days": 10})
    assert "'trainig_window_days' (did you mean 'training_window_days'?)" in str(error.value)
    with pytest.raises(AirflowFailException, match="'foo'"):
        run_with({"foo": "bar"})


def test_training_goes_to_its_queue_and_pool_and_nothing_else_does(dagbag):
    """Candidate training runs on the Celery queue ``training`` within ``training_<model>``; the
    light tasks stay on the default queue and pool (a worker of the default queue serves them)."""
    from modelops.config import load_all_models
    from modelops.pools import training_pool

    for name in load_all_models():
        dag = dagbag.dags[f"retrain_{name}"]
        train = dag.get_task("train_candidates")
        assert (train.queue, train.pool) == ("training", training_pool(name))
        others = [t for t in dag.tasks if t.task_id != "train_candidates"]
        assert {t.queue for t in others} == {"default"}, [(t.task_id, t.queue) for t in others]
        assert {t.pool for t in others} == {"default_pool"}
    for dag_id, dag in dagbag.dags.items():
        if not dag_id.startswith("retrain_"):
            assert {t.queue for t in dag.tasks} == {"default"}, dag_id
