"""A model trained elsewhere: what it must be to be accepted (sklearn flavor, skops, trusted types,
declared features, declared answer form), what the record says about where it came from, and
the candidate it becomes (scored on the platform's split, claimed metrics never read)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tests.unit.local_mlflow import local_mlflow

from modelops.config import get_model
from modelops.local import datagen
from modelops.training import submission
from modelops.training.pipelines import build_pipeline
from modelops.training.search_spaces import skops_trusted_types


@pytest.fixture(scope="module")
def churn():
    return get_model("churn")


@pytest.fixture(scope="module")
def frame(churn):
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(3)]
    return pd.concat([datagen.generate_batch("churn", day, 300, seed=5) for day in days], ignore_index=True)


@pytest.fixture(scope="module")
def fitted(churn, frame):
    return build_pipeline(churn, "linear").fit(frame[churn.feature_names], frame[churn.target])


def _log(mlflow, model, example, **kwargs) -> str:
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model, name="model", input_example=example, pip_requirements=["scikit-learn"], **kwargs
        )
    return f"runs:/{run.info.run_id}/model"


def test_submission_params(churn):
    assert submission.submission_of({"submitted_model_uri": "", "submitted_by": "x"}) is None
    got = submission.submission_of({"submitted_model_uri": " runs:/abc/model "}, triggering_user="admin")
    assert got == submission.Submission("runs:/abc/model", "admin")
    assert (
        submission.submission_of({"submitted_model_uri": "runs:/a/m", "submitted_by": "alice"}).submitted_by == "alice"
    )
    with pytest.raises(submission.SubmissionRefused, match="expected an MLflow 'runs:/"):
        submission.submission_of({"submitted_model_uri": "s3://bucket/model.pkl"})


def test_contract_accepts_a_fitting_model_and_names_what_does_not_fit(churn, frame, fitted):
    X, y = frame[churn.feature_names], frame[churn.target]
    assert "predicts on the 9 declared features" in submission.check_contract(churn, fitted, X, y)

    fewer = [c for c in churn.feature_names if c != "region"]
    narrow = build_pipeline(churn, "linear").fit(X, y)
    with pytest.raises(submission.SubmissionRefused, match="cannot predict on the declared features"):
        submission.check_contract(churn, _OnlyColumns(narrow, fewer + ["age"]), X, y)

    with pytest.raises(submission.SubmissionRefused, match=r"class\(es\) \['7'\]"):
        submission.check_contract(churn, _Constant(7), X, y)

    with pytest.raises(submission.SubmissionRefused, match="no predict_proba"):
        submission.check_contract(churn, _Constant(0, proba=False), X, y)

    regression = get_model("delivery_time")
    with pytest.raises(submission.SubmissionRefused, match="finite numbers"):
        submission.check_contract(
            regression, _Constant(np.inf), X.assign(**{c: 0 for c in regression.feature_names}), y
        )


class _Constant:
    def __init__(self, value, proba=True):
        self.value = value
        if proba:
            self.predict_proba = lambda X: np.tile([0.5, 0.5], (len(X), 1))

    def predict(self, X):
        return np.full(len(X), self.value)


class _OnlyColumns:
    """A model that needs columns the declaration lacks (as if trained on another export)."""

    def __init__(self, model, columns):
        self.model, self.columns = model, columns

    def predict(self, X):
        return self.model.predict(X[self.columns])


def test_loading_trusts_only_what_the_platform_or_the_declaration_trusts(churn, frame, fitted, tmp_path):
    import mlflow

    example = frame[churn.feature_names].head(3)
    with local_mlflow(tmp_path, "laptop"):
        good = _log(mlflow, fitted, example, serialization_format="skops",
                    skops_trusted_types=skops_trusted_types("linear"))  # fmt: skip
        loaded = submission.load_submitted(churn, good, mlflow)
        assert loaded.predict(example).tolist() == fitted.predict(example).tolist()

        pickled = _log(mlflow, fitted, example, serialization_format="cloudpickle")
        with pytest.raises(submission.SubmissionRefused, match="serialized as 'cloudpickle'.*only skops"):
            submission.load_submitted(churn, pickled, mlflow)

        # A type no one vouches for (their own class, not declared): refused by name, never loaded.
        from sklearn.preprocessing import FunctionTransformer

        odd = build_pipeline(churn, "linear")
        odd.steps.insert(0, ("odd", FunctionTransformer(_identity)))
        odd.fit(frame[churn.feature_names], frame[churn.target])
        untrusted = _log(mlflow, odd, example, serialization_format="skops",
                         skops_trusted_types=["numpy.dtype", f"{__name__}._identity"])  # fmt: skip
        with pytest.raises(submission.SubmissionRefused, match=rf"\['{__name__}._identity'\].*code.trusted_types"):
            submission.load_submitted(churn, untrusted, mlflow)

        with pytest.raises(submission.SubmissionRefused, match="cannot download|not found"):
            submission.load_submitted(churn, "runs:/0123456789abcdef/model", mlflow)


def _identity(X):
    return X


def test_signature_with_undeclared_columns_is_refused(churn, frame, tmp_path):
    import mlflow

    X = frame[churn.feature_names].assign(age=40)
    model = build_pipeline(churn, "linear").fit(X, frame[churn.target])
    with local_mlflow(tmp_path, "laptop"):
        uri = _log(mlflow, model, X.head(3), serialization_format="skops",
                   skops_trusted_types=skops_trusted_types("linear"))  # fmt: skip
        with pytest.raises(submission.SubmissionRefused, match=r"column\(s\) \['age'\] that are not declared"):
            submission.load_submitted(churn, uri, mlflow)


def test_training_data_is_unknown_unless_the_run_names_a_snapshot_here(store):
    store.put_json("snapshots/churn/r1/manifest.json", {"rows": 1})
    known = store.uri("snapshots/churn/r1/manifest.json")
    assert submission.training_data_of({}, store) == submission.UNKNOWN_TRAINING_DATA
    assert submission.training_data_of({"modelops.training_manifest": known}, store) == known
    other = submission.training_data_of({"manifest_uri": "s3://elsewhere/x.json"}, store)
    assert other.startswith(submission.UNKNOWN_TRAINING_DATA) and "s3://elsewhere/x.json" in other


def test_a_submission_becomes_a_candidate_scored_on_the_platform_split(churn, frame, fitted):
    X, y = frame[churn.feature_names], frame[churn.target]
    result = submission.as_candidate(churn, fitted, X, y)
    assert result.candidate == "submitted" and result.passed and result.cv_folds == 0 and result.params == {}
    assert 0.6 < result.cv_primary < 1.0 and result.cv_primary == result.train_metrics["roc_auc"]
    from sklearn.dummy import DummyClassifier

    dummy = DummyClassifier(strategy="most_frequent").fit(X, y)
    degenerate = submission.as_candidate(churn, dummy, X, y)
    assert not degenerate.passed and "Degenerate predictions" in degenerate.failure_reasons[0]


def test_lineage_tags_name_submitter_source_and_training_data():
    record = {"submitted_by": "alice", "model_uri": "runs:/r/model", "source_run_id": "r", "training_data": "unknown"}
    assert submission.lineage_tags(record) == {
        "submitted_by": "alice", "submitted_model_uri": "runs:/r/model", "submitted_from_run": "r",
        "training_data": "unknown",
    }  # fmt: skip


def test_cli_refuses_bad_arguments_before_triggering(capsys):
    from modelops.submit import cli

    assert cli.main(["no_such_model", "--model-uri", "runs:/a/model"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert cli.main(["churn", "--model-uri", "runs:/a/model", "--timeout", "0"]) == 2
    assert cli.main(["churn", "--model-uri", "file:///tmp/model.pkl"]) == 1
    assert "expected an MLflow 'runs:/" in capsys.readouterr().err
