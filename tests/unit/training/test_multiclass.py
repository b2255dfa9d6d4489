"""A three-class model through the in-process platform: declaration, training, gate, baseline,
serving with capture, and monitoring.

The shipped models are binary (churn) and regression (delivery_time); this proves the
``multiclass_classification`` problem type end to end on scikit-learn's bundled wine data (178
rows, 3 cultivars, no download), shaped like a sample ``python -m modelops.scaffold`` would take:
string class labels, a categorical feature, an id and a timestamp over ten days.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import boto3
import numpy as np
import pandas as pd
import pytest
import skops.io
from fastapi.testclient import TestClient
from moto import mock_aws
from pydantic import ValidationError
from sklearn.datasets import load_wine
from sklearn.dummy import DummyClassifier
from sklearn.metrics import f1_score, log_loss
from sklearn.pipeline import Pipeline
from tests.unit.local_mlflow import local_mlflow

from modelops import registry
from modelops.config import ModelConfig
from modelops.data.baseline import profile_baseline
from modelops.layout import partition
from modelops.metrics import metric_names
from modelops.monitoring import day_report as monitoring
from modelops.scaffold import cli as scaffold
from modelops.serving.app import create_app
from modelops.serving.capture import CaptureOptions
from modelops.serving.options import ServingOptions
from modelops.settings import Settings
from modelops.store import Store
from modelops.training.candidate import train_candidate
from modelops.training.evaluation import evaluate_model
from modelops.training.gate import decide_promotion, policy_from_config
from modelops.training.search_spaces import skops_trusted_types
from modelops.training.selection import select_best
from modelops.training.time_split import time_split

NAME = "wine"
TARGET = "cultivar"
CLASSES = ["class_0", "class_1", "class_2"]
CANDIDATES = ["linear", "hist_gradient_boosting"]
BUCKET = "multiclass-test"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Capture days of the simulated traffic (set through X-Modelops-Event-Time).
NORMAL_DAY = dt.date(2026, 3, 20)
SHIFTED_DAY = dt.date(2026, 3, 22)


def wine_sample() -> pd.DataFrame:
    """The wine data as a scaffold sample: string classes, binned alcohol, an id and a shuffled time.

    The rows come sorted by class; the timestamps are a seeded permutation, so the time split's
    held-out tail holds every class.
    """
    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame["alcohol_level"] = pd.cut(frame["alcohol"], bins=[-np.inf, 12.5, 13.5, np.inf], labels=["low", "mid", "high"])
    frame["alcohol_level"] = frame["alcohol_level"].astype(str)
    frame[TARGET] = [f"class_{code}" for code in data.target]
    n = len(frame)
    order = np.random.default_rng(0).permutation(n)
    start = pd.Timestamp("2026-03-01", tz="UTC")
    times = start + pd.to_timedelta(order * (10 * 24 * 3600 // n), unit="s")
    frame["measured_at"] = times.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.insert(0, "sample_id", [f"w{i:03d}" for i in range(n)])
    return frame


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """HistGradientBoosting's OpenMP threads cost more than they save on 178 rows."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return wine_sample()


@pytest.fixture(scope="module")
def declaration(sample) -> dict:
    return scaffold.infer_declaration(sample, NAME, TARGET, timestamp_column="measured_at", id_column="sample_id")


@pytest.fixture(scope="module")
def config(declaration) -> ModelConfig:
    """The scaffolded declaration, edited as a data scientist would: two candidates, two folds, a floor."""
    edited = {
        **declaration,
        "training": {**declaration["training"], "candidates": CANDIDATES, "cv_folds": 2},
        "gate": {**declaration["gate"], "min_primary": 0.8},
    }
    return ModelConfig.model_validate(edited)


@pytest.fixture(scope="module")
def split(sample, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    return time_split(sample, config)


@pytest.fixture(scope="module")
def trained(split, config) -> dict:
    train, _ = split
    results = {c: train_candidate(config, c, train[config.feature_names], train[TARGET]) for c in CANDIDATES}
    best = select_best([r.to_dict() for r in results.values()], config)
    return {"results": results, "best": best, "model": results[best["candidate"]].model}


@pytest.fixture(scope="module")
def evaluation(split, config, trained) -> dict:
    _, test = split
    return evaluate_model(trained["model"], test[config.feature_names], test[TARGET], config)


@pytest.fixture(scope="module")
def baseline(split, config, trained) -> dict:
    """As the retrain DAG registers it: training rows plus the model's predictions as strings."""
    train, _ = split
    predictions = [str(p) for p in trained["model"].predict(train[config.feature_names])]
    return profile_baseline(train, config, predictions=predictions)


# --------------------------------------------------------------------------------------------
# Declaration, training, evaluation, gate, baseline
# --------------------------------------------------------------------------------------------


def test_scaffold_declares_a_multiclass_model_with_a_multiclass_metric(declaration, config):
    assert declaration["problem_type"] == "multiclass_classification"
    assert declaration["metrics"]["primary"] == "f1_macro"
    assert config.is_classifier and config.primary_higher_is_better
    assert "f1" not in metric_names(config)  # binary-only f1 would need a positive class
    assert config.categorical_features == ["alcohol_level"] and config.gate.slice_column == "alcohol_level"
    assert len(config.numeric_features) == 13
    assert {TARGET, "sample_id", "measured_at"}.isdisjoint(config.feature_names)
    assert config.data.timestamp_column == "measured_at" and config.data.id_column == "sample_id"
    assert config.training.window_days == 10


@pytest.mark.parametrize("metric", ["f1", "precision", "recall"])
@pytest.mark.parametrize("field", ["primary", "secondary"])
def test_binary_only_metrics_are_refused_at_declaration_not_mid_training(declaration, field, metric):
    """sklearn's f1/precision/recall need a positive class: on three classes cross-validation raises."""
    metrics = {"primary": "f1_macro", "secondary": ["accuracy"]}
    metrics[field] = metric if field == "primary" else ["accuracy", metric]
    with pytest.raises(ValidationError, match=rf"metrics\.{field}: '{metric}' is binary-only"):
        ModelConfig.model_validate({**declaration, "metrics": metrics})


def test_every_candidate_trains_on_three_classes_and_one_is_selected(split, config, trained):
    train, test = split
    assert set(train[TARGET]) == set(test[TARGET]) == set(CLASSES)  # the time split holds every class
    for candidate, result in trained["results"].items():
        assert result.passed, (candidate, result.failure_reasons)
        assert list(result.model.classes_) == CLASSES
        for metric in metric_names(config):
            cv = result.cv_metrics[metric]
            assert cv["mean"] is not None and math.isfinite(cv["mean"]), (candidate, metric, cv)
            assert all(f is not None and math.isfinite(f) for f in cv["folds"]), (candidate, metric, cv)
            assert math.isfinite(result.train_metrics[metric]), (candidate, metric)
        assert 0.8 < result.cv_primary <= 1.0, (candidate, result.cv_primary)  # wine is easy: a model learned
        assert 0.0 < result.cv_metrics["log_loss"]["mean"] < math.log(3)  # better than guessing 1/3 each
        json.dumps(result.to_dict(), allow_nan=False)
        # What MLflow's skops dump-then-load needs for this fitted three-class pipeline, whichever wins.
        untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(result.model))
        assert sorted(untrusted) == sorted(skops_trusted_types(candidate, config.problem_type)), candidate
    best = trained["best"]
    assert best["candidate"] in CANDIDATES and best["selection"]["primary_metric"] == "f1_macro"
    assert [r["candidate"] for r in best["selection"]["ranking"]][0] == best["candidate"]


def test_evaluation_scores_f1_macro_and_the_gate_promotes_a_first_model(split, config, trained, evaluation):
    _, test = split
    model = trained["model"]
    X, y = test[config.feature_names], test[TARGET]
    assert evaluation["primary_metric"] == "f1_macro" and evaluation["higher_is_better"]
    assert evaluation["primary"] == pytest.approx(f1_score(y, model.predict(X), average="macro"))
    assert evaluation["metrics"]["log_loss"] == pytest.approx(log_loss(y, model.predict_proba(X), labels=CLASSES))
    assert evaluation["slices"]["column"] == "alcohol_level"
    assert set(evaluation["slices"]["groups"]) <= {"low", "mid", "high"}
    json.dumps(evaluation, allow_nan=False)

    candidate = evaluation | {"candidate": trained["best"]["candidate"], "training_passed": True}
    decision = decide_promotion(candidate, None, policy_from_config(config))
    checks = {c["name"]: c for c in decision.checks}
    assert decision.promote, decision.reasons
    assert checks["champion_comparison"]["skipped"]
    assert checks["primary_floor"]["observed"] == evaluation["primary"] and checks["primary_floor"]["threshold"] == 0.8
    assert "f1_macro" in decision.reasons[0]

    # A model that always answers the majority class fails the floor and loses to the trained one.
    train, _ = split
    majority = Pipeline([("model", DummyClassifier(strategy="most_frequent"))])
    weak = evaluate_model(majority.fit(train[config.feature_names], train[TARGET]), X, y, config)
    assert weak["primary"] < 0.5
    refused = decide_promotion(weak | {"training_passed": True}, None, policy_from_config(config))
    assert not refused.promote and "primary_floor" in refused.failed_checks
    over_weak = decide_promotion(candidate, weak, policy_from_config(config))
    compared = next(c for c in over_weak.checks if c["name"] == "not_worse_than_champion")
    assert over_weak.promote and compared["observed"] == pytest.approx(evaluation["primary"] - weak["primary"])
    kept = decide_promotion(weak | {"training_passed": True}, evaluation, policy_from_config(config))
    assert not kept.promote and "not_worse_than_champion" in kept.failed_checks


def test_baseline_profiles_labels_and_predictions_over_the_three_classes(split, config, baseline):
    train, _ = split
    json.dumps(baseline, allow_nan=False)
    target, predictions = baseline["target"], baseline["predictions"]
    assert target["kind"] == "categorical" and set(target["counts"]) == set(CLASSES)
    assert target["counts"] == train[TARGET].value_counts().to_dict()
    assert predictions["kind"] == "categorical" and set(predictions["counts"]) == set(CLASSES)
    assert sum(predictions["counts"].values()) == len(train) == baseline["row_count"]
    assert baseline["constraints"]["features"]["alcohol_level"]["allowed_values"] == ["high", "low", "mid"]
    assert baseline["features"]["alcohol"]["kind"] == "numeric"


# --------------------------------------------------------------------------------------------
# Serving: the selected model as the registry's champion, capture to moto's S3
# --------------------------------------------------------------------------------------------


def records(frame: pd.DataFrame, config: ModelConfig) -> list[dict]:
    """Request rows: the features plus the id and time columns, which serving passes through to capture."""
    columns = [*config.feature_names, "sample_id", "measured_at"]
    return json.loads(frame[columns].to_json(orient="records"))


@pytest.fixture(scope="module")
def serving(tmp_path_factory, config, trained):
    """A local MLflow registry (SQLite) with the selected model as champion, moto's S3, a running app."""
    tmp = tmp_path_factory.mktemp("multiclass")
    with local_mlflow(tmp, "multiclass-test") as registry_env:
        import mlflow

        uri, client, experiment_id = registry_env.uri, registry_env.client, registry_env.experiment_id
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                trained["model"],
                name="model",
                skops_trusted_types=skops_trusted_types(trained["best"]["candidate"], config.problem_type),
                pip_requirements=["scikit-learn"],  # skips requirement inference (a subprocess, ~4 s)
            )
        version = registry.register_version(
            NAME, info.model_uri, run.info.run_id, {"airflow_run_id": "wine-1"}, mlflow_client=client
        )
        client.set_registered_model_alias(NAME, registry.CHAMPION, version.version)
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            settings = Settings(
                bucket=BUCKET,
                aws_endpoint_url=None,
                aws_region="us-east-1",
                mlflow_tracking_uri=uri,
                serving_url="http://testserver",
                serving_token=TOKEN,
            )
            options = ServingOptions(
                capture=CaptureOptions(flush_records=1000, flush_seconds=60.0), accept_event_time=True
            )
            store = Store(bucket=BUCKET, client=s3)
            app = create_app(settings, {NAME: config}, options=options, store=store)
            with TestClient(app) as test_client:
                yield {"client": test_client, "app": app, "store": store, "s3": s3}


def event_time(day: dt.date) -> dict:
    return AUTH | {"X-Modelops-Event-Time": f"{day.isoformat()}T12:00:00Z"}


@pytest.fixture(scope="module")
def traffic(serving, sample, config) -> dict:
    """A normal day (every row once, labelled) and a shifted day (class_0's rows twice, unlabelled).

    Per day: ``[(request_id, true labels, served predictions)]`` of each 50-record request.
    """
    client = serving["client"]
    sent: dict[dt.date, list[tuple[str, list[str], list[str]]]] = {NORMAL_DAY: [], SHIFTED_DAY: []}
    shifted = sample[sample[TARGET] == "class_0"]
    for day, frame in ((NORMAL_DAY, sample), (SHIFTED_DAY, pd.concat([shifted, shifted], ignore_index=True))):
        for start in range(0, len(frame), 50):
            part = frame.iloc[start : start + 50]
            response = client.post(
                f"/models/{NAME}/predict", json={"records": records(part, config)}, headers=event_time(day)
            )
            assert response.status_code == 200, response.text
            sent[day].append((response.json()["request_id"], part[TARGET].tolist(), response.json()["predictions"]))
    labels = [
        {"request_id": request_id, "record_index": i, "label": label}
        for request_id, truth, _ in sent[NORMAL_DAY]
        for i, label in enumerate(truth)
    ]
    fed = client.post(f"/models/{NAME}/feedback", json={"labels": labels}, headers=event_time(NORMAL_DAY))
    assert fed.status_code == 202, fed.text
    assert serving["app"].state.serving.writer.flush(5.0)
    return sent


def read_capture(serving, day: dt.date) -> pd.DataFrame:
    s3 = serving["s3"]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=partition("capture", NAME, day)).get("Contents", [])
    frames = [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())) for o in listed]
    return pd.concat(frames, ignore_index=True)


def test_predict_one_record_and_a_batch_answers_with_three_class_probabilities(serving, sample, config, trained):
    client = serving["client"]
    model = trained["model"]
    one = client.post(f"/models/{NAME}/predict", json={"record": records(sample.iloc[[0]], config)[0]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["classes"] == CLASSES and body["predictions"] == ["class_0"]
    assert len(body["probabilities"]) == 1 and len(body["probabilities"][0]) == 3
    assert sum(body["probabilities"][0]) == pytest.approx(1.0)

    batch = sample.groupby(TARGET).head(3)  # three rows of each class
    response = client.post(f"/models/{NAME}/predict", json={"records": records(batch, config)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["classes"] == CLASSES
    assert set(body["predictions"]) == set(CLASSES) and len(body["predictions"]) == 9
    assert [len(row) for row in body["probabilities"]] == [3] * 9
    assert np.allclose(np.sum(body["probabilities"], axis=1), 1.0)
    X = batch[config.feature_names]
    assert body["predictions"] == model.predict(X).tolist()
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(X))
    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert listed[NAME]["classes"] == CLASSES and listed[NAME]["problem_type"] == "multiclass_classification"


def test_a_wrong_typed_field_is_refused_naming_the_field(serving, sample, config):
    client = serving["client"]
    row = records(sample.iloc[[0]], config)[0] | {"alcohol": "13.2"}
    response = client.post(f"/models/{NAME}/predict", json={"records": [records(sample.iloc[[1]], config)[0], row]})
    assert response.status_code == 422, response.text
    problems = [d for d in response.json()["detail"] if d.get("field") == "alcohol"]
    assert problems and problems[0]["record_index"] == 1, response.json()
    bad_label = {"labels": [{"request_id": "r", "record_index": 0, "label": "class_9"}]}
    refused = client.post(f"/models/{NAME}/feedback", json=bad_label, headers=AUTH)
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "label"


def test_capture_rows_hold_the_three_class_probabilities(serving, traffic, sample):
    rows = read_capture(serving, NORMAL_DAY)
    assert len(rows) == len(sample)
    assert set(rows["classes"].map(tuple)) == {tuple(CLASSES)}
    assert set(rows["prediction"]) == set(CLASSES)
    matrix = np.vstack(rows["probabilities"].to_numpy())
    assert matrix.shape == (len(sample), 3) and np.allclose(matrix.sum(axis=1), 1.0)
    assert (np.asarray(CLASSES)[matrix.argmax(axis=1)] == rows["prediction"].to_numpy()).all()
    assert sorted(rows["sample_id"]) == sorted(sample["sample_id"])  # pass-through columns are kept
    assert set(rows["alcohol_level"]) == {"low", "mid", "high"}


# --------------------------------------------------------------------------------------------
# Monitoring the captured traffic
# --------------------------------------------------------------------------------------------


def test_monitoring_judges_prediction_drift_over_three_classes(serving, traffic, sample, config, baseline, evaluation):
    reports = {
        day: monitoring.monitor_day(serving["store"], config, day, {"1": baseline}, evaluations=evaluation)[0]
        for day in (NORMAL_DAY, SHIFTED_DAY)
    }
    for report in reports.values():
        json.dumps(report, allow_nan=False)
        assert report["main_version"] == "1" and report["drift"]["status"] == "ok"
        assert monitoring.render_report_html(report).startswith("<!DOCTYPE html>")

    normal = reports[NORMAL_DAY]
    prediction = normal["prediction_drift"]
    assert prediction["status"] == "ok" and prediction["kind"] == "categorical"
    assert not prediction["drifted"] and not normal["verdict"]["prediction_drifted"]
    assert normal["status"] == "ok" and normal["data_quality"]["status"] == "ok", normal["verdict"]["messages"]
    assert prediction["details"]["categories"] == 3 and prediction["details"]["unseen_share"] == 0
    performance = normal["performance"]
    assert performance["primary_metric"] == "f1_macro" and performance["labels"] == len(sample)
    assert performance["status"] == "ok", performance["message"]
    truth = [label for _, labels, _ in traffic[NORMAL_DAY] for label in labels]
    served = [p for _, _, predictions in traffic[NORMAL_DAY] for p in predictions]
    assert performance["primary"] == pytest.approx(f1_score(truth, served, average="macro"))
    assert 0 < performance["metrics"]["log_loss"] < math.log(3)  # scored from the captured probabilities

    shifted = reports[SHIFTED_DAY]
    prediction = shifted["prediction_drift"]
    assert prediction["status"] == "ok" and prediction["drifted"], prediction
    assert shifted["verdict"]["prediction_drifted"] and "prediction_drift" in shifted["verdict"]["findings"]
    top = prediction["details"]["largest_changes"][0]
    assert top["category"] == "class_0" and top["current_share"] > 0.9 and top["reference_share"] < 0.5
    assert shifted["performance"]["status"] == "insufficient_labels"  # no labels were sent that day
