"""Fixtures of the serving tests: ``env`` (MLflow registry with champions, moto S3) and ``client`` (one running app)."""

from __future__ import annotations

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from tests.unit.local_mlflow import local_mlflow
from tests.unit.serving.serving_helpers import (
    BUCKET,
    CONFIGS,
    log_and_register,
    make_app,
    make_frame,
)

from modelops import registry
from modelops.training.pipelines import build_pipeline


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """AWS test credentials, moto's S3 with the bucket, and an MLflow registry with champions."""
    tmp = tmp_path_factory.mktemp("serving")
    with local_mlflow(tmp, "serving-test") as registry_env:
        import mlflow

        uri, client, experiment_id = registry_env.uri, registry_env.client, registry_env.experiment_id
        pipelines = {}
        for name in ("toy", "toy_reg"):
            config = CONFIGS[name]
            frame = make_frame(config.problem_type)
            pipeline = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
            version = log_and_register(mlflow, client, config, pipeline, experiment_id, f"{name}-1")
            client.set_registered_model_alias(name, registry.CHAMPION, version)
            pipelines[name] = pipeline
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            yield {"uri": uri, "client": client, "s3": s3, "pipelines": pipelines, "experiment_id": experiment_id}


@pytest.fixture(scope="module")
def client(env):
    """One running app for the tests that only read (its capture is flushed at module end)."""
    with TestClient(make_app(env, max_batch=5)) as test_client:
        yield test_client
