"""The serving guard: inputs far outside the training range and non-finite predictions never get a 200."""

from __future__ import annotations

import dataclasses

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from tests.unit.local_mlflow import local_mlflow
from tests.unit.serving.serving_helpers import BUCKET, CONFIGS, log_and_register, make_frame, record

from modelops import registry
from modelops.data.baseline import profile_baseline
from modelops.serving import guard
from modelops.serving.app import create_app
from modelops.serving.capture import CaptureOptions
from modelops.serving.options import ServingOptions
from modelops.settings import Settings
from modelops.store import Store
from modelops.training.pipelines import build_pipeline


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """An MLflow registry whose champions were logged with their training baseline, as retrain does."""
    tmp = tmp_path_factory.mktemp("guard")
    with local_mlflow(tmp, "guard-test") as registry_env:
        import mlflow

        uri, client, experiment_id = registry_env.uri, registry_env.client, registry_env.experiment_id
        frames = {}
        for name in ("toy", "toy_reg"):
            config = CONFIGS[name]
            frame = frames[name] = make_frame(config.problem_type)
            pipeline = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
            version = log_and_register(mlflow, client, config, pipeline, experiment_id, f"{name}-1")
            run_id = client.get_model_version(name, version).run_id
            client.log_dict(run_id, profile_baseline(frame, config), guard.BASELINE_ARTIFACT)
            client.set_registered_model_alias(name, registry.CHAMPION, version)
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            yield {"uri": uri, "s3": s3, "frames": frames}


def make_client(env, policy: str | None = None) -> TestClient:
    configs = dict(CONFIGS)
    if policy is not None:
        for name in ("toy", "toy_reg"):
            configs[name] = configs[name].model_copy(
                update={"serving": configs[name].serving.model_validate({"out_of_range": {"policy": policy}})}
            )
    settings = Settings(
        bucket=BUCKET, aws_endpoint_url=None, aws_region="us-east-1", mlflow_tracking_uri=env["uri"],
        serving_url="http://testserver", serving_token=None,
    )  # fmt: skip
    options = ServingOptions(capture=CaptureOptions(flush_records=1000, flush_seconds=60.0))
    return TestClient(create_app(settings, configs, options=options, store=Store(bucket=BUCKET, client=env["s3"])))


@pytest.mark.parametrize("model", ["toy", "toy_reg"])
def test_a_value_far_outside_the_training_range_is_refused_naming_field_value_and_range(env, model):
    with make_client(env) as client:
        ok = client.post(f"/models/{model}/predict", json={"records": [record(0), record(1)]})
        bad = client.post(f"/models/{model}/predict", json={"records": [record(0), record(1, x0=1e308)]})
        single = client.post(f"/models/{model}/predict", json={"record": record(0, x1=-1e20)})
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 422, bad.text
    (detail,) = bad.json()["detail"]
    trained = env["frames"][model]["x0"]
    assert detail["type"] == "out_of_range" and detail["field"] == "x0" and detail["record_index"] == 1
    assert detail["loc"] == ["body", "records", 1, "x0"]
    assert "1e+308" in detail["msg"] and f"[{trained.min():g}, {trained.max():g}]" in detail["msg"]
    assert single.status_code == 422 and single.json()["detail"][0]["loc"] == ["body", "record", "x1"]


def test_clip_policy_serves_the_clipped_value_and_flag_serves_it_as_sent(env):
    frame = env["frames"]["toy_reg"]
    with make_client(env, "clip") as client:
        clipped = client.post("/models/toy_reg/predict", json={"records": [record(0, x0=1e308)]})
        bound = client.app.state.serving.slots["toy_reg"].current.input_ranges.bounds["x0"]
        at_bound = client.post("/models/toy_reg/predict", json={"records": [record(0, x0=bound.high)]})
    assert bound.high == frame["x0"].max() + 10 * (frame["x0"].max() - frame["x0"].min())
    assert clipped.status_code == 200, clipped.text
    assert clipped.json()["predictions"] == at_bound.json()["predictions"]
    with make_client(env, "flag") as client:
        flagged = client.post("/models/toy_reg/predict", json={"records": [record(0, x0=1e6)]})
        absurd = client.post("/models/toy_reg/predict", json={"records": [record(0, x0=1e20)]})
    assert flagged.status_code == 200 and flagged.json()["predictions"] != at_bound.json()["predictions"]
    assert absurd.status_code == 200  # flag: served as sent (and logged)


class _Infinite:
    """Wraps a fitted pipeline; answers inf (regression) or NaN probabilities where x0 == 0.25."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.classes_ = getattr(pipeline, "classes_", None)

    def predict(self, X):
        out = self.pipeline.predict(X).astype(float)
        out[X["x0"].to_numpy() == 0.25] = np.inf
        return out

    def predict_proba(self, X):
        out = self.pipeline.predict_proba(X)
        out[X["x0"].to_numpy() == 0.25] = np.nan
        return out


@pytest.mark.parametrize("model", ["toy", "toy_reg"])
def test_a_non_finite_prediction_is_a_422_for_its_request_only(env, model):
    with make_client(env) as client:
        slot = client.app.state.serving.slots[model]
        slot.current = dataclasses.replace(slot.current, pipeline=_Infinite(slot.current.pipeline))
        bad = client.post(f"/models/{model}/predict", json={"records": [record(0), record(1, x0=0.25)]})
        ok = client.post(f"/models/{model}/predict", json={"records": [record(0)]})
    assert bad.status_code == 422, bad.text
    (detail,) = bad.json()["detail"]
    assert detail["type"] == "non_finite_prediction" and detail["record_index"] == 1
    assert "model produced a non-finite prediction for record 1" in detail["msg"]
    assert ok.status_code == 200


def test_without_a_baseline_only_absurd_values_are_refused():
    config = CONFIGS["toy_reg"]
    ranges = guard.ranges_of_baseline(config, None)
    numeric = {"x0": np.array([1e9, np.nan]), "x1": np.array([0.0, -1e16])}
    problems = guard.check_inputs(ranges, numeric, ("body", "records"), "3")
    assert [(p["field"], p["record_index"]) for p in problems] == [("x1", 1)]
    assert "no training baseline" in problems[0]["msg"]


def test_the_serving_policy_defaults_to_refuse_with_a_generous_tolerance():
    spec = CONFIGS["toy"].serving.out_of_range
    assert (spec.policy, spec.tolerance) == ("refuse", 10.0)
    with pytest.raises(ValueError, match="policy"):
        CONFIGS["toy"].model_validate({**CONFIGS["toy"].model_dump(), "serving": {"out_of_range": {"policy": "x"}}})
