"""Training with a model's own code: their feature steps come first in every candidate, their
candidates train like the built-in ones, a failure inside their code is located in their file, the
types skops may load are the declaration's, and the logged model carries (and loads with) its code.

Each test writes a throw-away package into a temporary models folder (``MODELOPS_MODELS_DIR``)
under a name of its own; the MLflow tests share one SQLite tracking store per module."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.support.own_code import ADD_GAP, line_of
from tests.unit.local_mlflow import local_mlflow
from tests.unit.training.training_helpers import make_config, make_frame

from modelops import versioning
from modelops.config import ModelConfig
from modelops.layout import experiment_name
from modelops.training import steps
from modelops.training.candidate import train_candidate
from modelops.training.pipelines import build_pipeline
from modelops.training.search_spaces import skops_trusted_types
from modelops.training.trust import UntrustedTypes, trusted_types_for
from modelops.usercode import models as logged_models
from modelops.usercode.loader import UserCodeError

FEATURES = (
    ADD_GAP
    + """

    class ForgetsGap(AddGap):
        def transform(self, X):
            return X.copy()


    def forgets_gap():
        return ForgetsGap()


    class AsArray(AddGap):
        def transform(self, X):
            return super().transform(X).to_numpy()


    def as_array():
        return AsArray()
    """
)
CANDIDATES = """\
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    SEARCH_SPACE = [{"C": 0.1}, {"C": 1.0}]


    def make_logit(C=1.0, random_seed=0):
        return LogisticRegression(C=C, random_state=random_seed, max_iter=1000)


    def make_raw(C=1.0):
        columns = ColumnTransformer([("numeric", SimpleImputer(), ["x0", "x1", "x2", "gap"])])
        return make_pipeline(columns, LogisticRegression(C=C, max_iter=1000))


    class Explodes(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            raise ValueError("the data scientist forgot something")

        def predict(self, X):
            return X[:, 0]


    def make_explodes():
        return Explodes()


    def make_broken(C=1.0):
        return LogisticRegression(C=C, penalty=PENALTY)
    """


FIT_RAISES_LINE = line_of(CANDIDATES, "raise ValueError")
BROKEN_FACTORY_LINE = line_of(CANDIDATES, "PENALTY")


def _package(models, files: dict[str, str] | None = None) -> str:
    """``files`` (default: the features and candidates above) as a package of ``models``."""
    return models.package(files or {"features.py": FEATURES, "candidates.py": CANDIDATES})


def own_model(
    package: str, step: str | None = "add_gap", candidates: tuple[dict, ...] = (), **code: Any
) -> ModelConfig:
    """``toy`` (training_helpers) with ``code:``: one feature step adding ``gap``, and ``candidates``."""
    declared = {
        "package": package,
        "feature_steps": [f"{package}.features:{step}"] if step else [],
        "engineered_features": [{"name": "gap", "type": "numeric"}] if step else [],
        "candidates": [c | {"factory": f"{package}.candidates:{c['factory']}"} for c in candidates],
        **code,
    }
    names = ["linear", *(c["name"] for c in candidates)]
    return make_config(code=declared, training={"cv_folds": 3, "random_seed": 7, "candidates": names})


@pytest.fixture(scope="module")
def frame():
    return make_frame(n=150)


# -- training with their code ----------------------------------------------------------------------


def test_a_shared_preprocessing_candidate_trains_after_their_feature_step(models, frame):
    package = _package(models)
    config = own_model(
        package,
        candidates=({"name": "own_logit", "factory": "make_logit", "search_space": f"{package}.candidates:SEARCH_SPACE",
                     "relative_cost": 2.0},),
    )  # fmt: skip
    result = train_candidate(config, "own_logit", frame[config.feature_names], frame["y"])

    pipeline = result.model
    assert [name for name, _ in pipeline.steps] == ["feature_add_gap", "preprocess", "model"]
    assert type(pipeline.steps[0][1]).__module__ == f"{package}.features"
    assert "gap" in pipeline.named_steps["preprocess"].get_feature_names_out()  # their column reaches the model
    model = pipeline.named_steps["model"]
    assert type(model).__name__ == "LogisticRegression" and model.random_state == 7  # the declaration's seed
    assert result.params in ({"C": 0.1}, {"C": 1.0}) and len(result.search) == 2  # their search space
    assert result.relative_cost == 2.0 and result.cv_primary > 0.7
    serving = frame[config.feature_names].head(3)  # raw declared columns: the step adds gap itself
    assert len(pipeline.predict(serving)) == 3


def test_a_candidate_without_shared_preprocessing_takes_the_raw_and_engineered_columns(models, frame):
    package = _package(models)
    config = own_model(package, candidates=({"name": "own_raw", "factory": "make_raw", "preprocessing": "none"},))
    result = train_candidate(config, "own_raw", frame[config.feature_names], frame["y"])

    pipeline = result.model
    assert [name for name, _ in pipeline.steps] == ["feature_add_gap", "model"]  # no shared preprocessing
    columns = pipeline.named_steps["model"][0]
    assert list(columns.feature_names_in_) == [*config.feature_names, "gap"]
    assert result.cv_primary > 0.7


def test_their_feature_step_comes_first_in_the_built_in_candidates_too(models, frame):
    package = _package(models)
    config = own_model(package)
    pipeline = build_pipeline(config, "random_forest").fit(frame[config.feature_names], frame["y"])
    assert pipeline.steps[0][0] == "feature_add_gap"
    assert "gap" in pipeline.named_steps["preprocess"].get_feature_names_out()


def test_an_estimator_that_raises_in_fit_is_located_in_their_file(models, frame):
    package = _package(models)
    config = own_model(package, candidates=({"name": "own_explodes", "factory": "make_explodes"},))
    with pytest.raises(UserCodeError) as failed:
        train_candidate(config, "own_explodes", frame[config.feature_names], frame["y"])
    error = failed.value
    assert Path(error.file) == models.path / package / "candidates.py" and error.line == FIT_RAISES_LINE
    assert error.what == "training candidate 'own_explodes'"
    assert error.problem == "ValueError: the data scientist forgot something"
    assert isinstance(error.__cause__, ValueError)  # the original stays attached for the task log


@pytest.mark.parametrize(
    "step, expected",
    [
        ("forgets_gap", ["their output lacks column(s) ['gap']", "code.engineered_features"]),
        ("as_array", ["feature step 'as_array'", "returned ndarray", "a feature step must return a pandas DataFrame"]),
    ],
    ids=["forgets-its-column", "returns-an-array"],
)
def test_a_feature_step_that_breaks_its_contract_is_named(models, frame, step, expected):
    config = own_model(_package(models), step=step)
    with pytest.raises(UserCodeError) as failed:
        train_candidate(config, "linear", frame[config.feature_names], frame["y"])
    assert all(part in str(failed.value) for part in expected), str(failed.value)


@pytest.mark.parametrize(
    "break_data, problem",
    [
        (lambda X, y: (X.drop(columns="x2"), y), r"training data lacks feature column\(s\) \['x2'\]"),
        (lambda X, y: (X, y * 0), "has a single class"),  # after their feature step ran: still ours
    ],
    ids=["missing-column", "single-class"],
)
def test_a_data_problem_outside_their_code_is_not_blamed_on_it(models, frame, break_data, problem):
    package = _package(models)
    config = own_model(package, candidates=({"name": "own_logit", "factory": "make_logit"},))
    X, y = break_data(frame[config.feature_names], frame["y"])
    with pytest.raises(ValueError, match=problem) as failed:
        train_candidate(config, "own_logit", X, y)
    assert not isinstance(failed.value, UserCodeError)


# -- what skops may load -------------------------------------------------------------------------------


def test_their_class_must_be_listed_in_trusted_types(models, frame):
    package = _package(models)
    config = own_model(package)  # trusts nothing of theirs
    fitted = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
    with pytest.raises(UntrustedTypes) as refused:
        trusted_types_for(config, "linear", fitted)
    message = str(refused.value)
    assert f"'{package}.features.AddGap'" in message and "code.trusted_types in toy.yaml" in message


def test_a_lambda_in_their_step_is_refused_with_advice_to_name_it(models, frame):
    lambda_step = (
        ADD_GAP
        + """

    from sklearn.preprocessing import FunctionTransformer


    def add_gap_lambda():
        return FunctionTransformer(lambda X: X.assign(gap=X["x0"] - X["x1"]))
    """
    )
    package = models.package({"features.py": lambda_step})
    config = own_model(package, step="add_gap_lambda", trusted_types=[f"{package}.features.AddGap"])
    fitted = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
    with pytest.raises(UntrustedTypes) as refused:
        trusted_types_for(config, "linear", fitted)
    message = str(refused.value)
    assert f"'{package}.features.<lambda>'" in message and "no importable name (a lambda" in message
    assert "define them at the top level of a module of code.package" in message


def test_a_listed_class_is_trusted_with_the_library_types_it_needs(models, frame):
    import skops.io

    package = _package(models)
    config = own_model(package, trusted_types=[f"{package}.features.AddGap"])
    fitted = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
    trusted = trusted_types_for(config, "linear", fitted)
    assert trusted == sorted({f"{package}.features.AddGap", *skops_trusted_types("linear")})  # numpy.dtype
    loaded = skops.io.loads(skops.io.dumps(fitted), trusted=trusted)
    np.testing.assert_array_equal(
        loaded.predict(frame[config.feature_names]), fitted.predict(frame[config.feature_names])
    )


@pytest.mark.parametrize("problem", ["binary_classification", "regression"])
@pytest.mark.parametrize("candidate", ["linear", "random_forest", "xgboost", "lightgbm"])
def test_a_built_in_family_without_their_code_gets_exactly_its_table(candidate, problem):
    """Taken from the proven table, not from the fitted object (which is not even looked at)."""
    assert trusted_types_for(make_config(problem), candidate, object()) == skops_trusted_types(candidate, problem)


# -- the logged model carries its code ------------------------------------------------------------------

RUN_ID = "manual__2026-12-02T10:00:00+00:00"
SNAPSHOT = {
    "dataset_hash": "d" * 64,
    "manifest_uri": "s3://bucket/snapshots/toy/run/manifest.json",
    "window": {"days": 30, "last_day": "2026-12-01"},
    "rows": 150,
}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One SQLite MLflow for the module (creating one costs seconds) with the ``toy`` experiment."""
    with local_mlflow(tmp_path_factory.mktemp("mlflow"), experiment_name("toy")) as ml:
        yield ml


def test_a_logged_model_loads_with_its_own_copy_of_their_code(models, frame, tracking):
    import mlflow

    package = _package(models)
    config = own_model(package, trusted_types=[f"{package}.features.AddGap"])
    X = frame[config.feature_names]
    fitted = build_pipeline(config, "linear").fit(X, frame["y"])
    with mlflow.start_run(experiment_id=tracking.experiment_id):
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            code_paths=[str(models.path / package)],
            skops_trusted_types=trusted_types_for(config, "linear", fitted),
            pip_requirements=["scikit-learn", "skops"],  # skip requirement inference: slow and beside the point
        )

    # Their code moves on after training, and this process imports the new version.
    features = models.path / package / "features.py"
    features.write_text(features.read_text().replace('out["x0"] - out["x1"]', "1000.0"))
    importlib.invalidate_caches()
    changed = importlib.reload(sys.modules[f"{package}.features"])
    assert (changed.AddGap().transform(X)["gap"] == 1000.0).all()

    loaded = logged_models.load_model(info.model_uri)
    step = loaded.steps[0][1]
    module = sys.modules[type(step).__module__]
    assert Path(module.__file__).parts[-3:] == ("code", package, "features.py")  # the artifact's copy
    assert not Path(module.__file__).is_relative_to(models.path)
    np.testing.assert_allclose(step.transform(X)["gap"], X["x0"] - X["x1"])  # the logged behaviour
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    local = mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri)
    assert logged_models.logged_code_packages(local) == {package}


def test_a_logged_model_without_code_lists_no_packages(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn:\n    code: null\n    pickled_model: model.skops\n")
    assert logged_models.logged_code_packages(tmp_path) == set()
    assert logged_models.logged_code_packages(tmp_path / "absent") == set()


# -- a failing candidate of theirs is recorded, and the run goes on --------------------------------------


@pytest.fixture
def retrain(models, frame, tracking, tmp_path, monkeypatch):
    """The real train_candidates step on the module's MLflow; the snapshot split is stood in for."""
    monkeypatch.setenv("MODELOPS_EXPECTATIONS_DIR", str(tmp_path))  # no suite: hashed as "none"
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "c0ffee")
    monkeypatch.setenv(versioning.BUILD_TIME_ENV, "2026-12-01T00:00:00Z")
    monkeypatch.setattr(steps, "training_split", lambda model, run_id, store=None: (frame, frame))
    return models, tracking


def test_a_candidate_of_theirs_is_logged_with_its_code_and_its_trusted_types(retrain, monkeypatch, frame):
    import mlflow.models

    # Requirement inference loads the model in a subprocess (seconds) and is beside the point here.
    monkeypatch.setattr(mlflow.models, "infer_pip_requirements", lambda *args, **kwargs: ["scikit-learn"])
    models, ml = retrain
    package = _package(models)
    config = own_model(
        package, candidates=({"name": "own_logit", "factory": "make_logit"},),
        trusted_types=[f"{package}.features.AddGap"],
    )  # fmt: skip
    run_id = f"{RUN_ID}-{package}"
    parent = steps.start_tracking(config, run_id, "retrain_toy", SNAPSHOT)

    record = steps.train_candidates(config, run_id, "own_logit", parent)

    assert record["model_uri"] and record["cv_primary"] is not None
    assert ml.client.get_run(record["mlflow_run_id"]).info.status == "FINISHED"
    local = mlflow.artifacts.download_artifacts(artifact_uri=record["model_uri"])
    assert logged_models.logged_code_packages(local) == {package}
    flavor = logged_models.flavor_conf(local)
    assert flavor["skops_trusted_types"] == sorted({f"{package}.features.AddGap", *skops_trusted_types("linear")})
    loaded = logged_models.load_model(record["model_uri"])
    assert loaded.steps[0][0] == "feature_add_gap" and loaded.steps[-1][0] == "model"
    assert len(loaded.predict(frame[config.feature_names].head(3))) == 3


def test_a_failing_factory_of_theirs_is_a_failed_candidate_run_naming_file_and_line(retrain):
    models, ml = retrain
    package = _package(models)
    config = own_model(package, candidates=({"name": "own_broken", "factory": "make_broken"},))
    run_id = f"{RUN_ID}-{package}"
    parent = steps.start_tracking(config, run_id, "retrain_toy", SNAPSHOT)

    record = steps.train_candidates(config, run_id, "own_broken", parent)

    candidates = models.path / package / "candidates.py"
    assert record["passed"] is False and record["model_uri"] is None and record["cv_primary"] is None
    assert len(record["failure_reasons"]) == 1
    reason = record["failure_reasons"][0]
    assert f"{candidates}, line {BROKEN_FACTORY_LINE}" in reason and "NameError" in reason and "PENALTY" in reason
    assert record["error"]["file"] == str(candidates) and record["error"]["line"] == BROKEN_FACTORY_LINE
    assert "calling" in record["error"]["what"] and "PENALTY" in record["error"]["traceback"]
    run = ml.client.get_run(record["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.parentRunId"] == parent["parent_run_id"] and run.data.tags["candidate"] == "own_broken"
    assert f"line {BROKEN_FACTORY_LINE}" in run.data.tags["error"] and run.data.tags["rules"].startswith("failed: ")
    import mlflow

    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/candidate_result.json") == record
    assert "PENALTY" in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/error_traceback.txt")

    # Cleared and re-run while still broken: the same child run is failed again, not a second one.
    again = steps.train_candidates(config, run_id, "own_broken", parent)
    assert again["mlflow_run_id"] == record["mlflow_run_id"]
    assert ml.client.get_run(again["mlflow_run_id"]).info.status == "FAILED"


def test_an_untrusted_class_of_theirs_fails_the_candidate_before_anything_is_logged(retrain):
    models, ml = retrain
    package = _package(models)
    config = own_model(package, candidates=({"name": "own_logit", "factory": "make_logit"},))  # trusts nothing
    run_id = f"{RUN_ID}-{package}"
    parent = steps.start_tracking(config, run_id, "retrain_toy", SNAPSHOT)

    record = steps.train_candidates(config, run_id, "own_logit", parent)

    assert record["passed"] is False and record["model_uri"] is None
    assert f"{package}.features.AddGap" in record["failure_reasons"][0]
    assert "code.trusted_types" in record["failure_reasons"][0]
    assert record["error"] == {"problem": record["failure_reasons"][0]}  # not a UserCodeError: no file or line
    run = ml.client.get_run(record["mlflow_run_id"])
    assert run.info.status == "FAILED"
    artifacts = {a.path for a in ml.client.list_artifacts(run.info.run_id)}
    assert artifacts == {"candidate_result.json"}  # no model was logged


def test_a_data_problem_is_not_recorded_as_their_failure(retrain, monkeypatch, frame):
    """Ours to fix (or to retry): the task fails instead of recording a failed candidate."""
    models, _ = retrain
    package = _package(models)
    config = own_model(package, candidates=({"name": "own_logit", "factory": "make_logit"},))
    run_id = f"{RUN_ID}-{package}"
    parent = steps.start_tracking(config, run_id, "retrain_toy", SNAPSHOT)
    single_class = frame.assign(y=0)
    monkeypatch.setattr(steps, "training_split", lambda model, run_id, store=None: (single_class, single_class))
    with pytest.raises(ValueError, match="single class"):
        steps.train_candidates(config, run_id, "own_logit", parent)
