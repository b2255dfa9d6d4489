"""Fixtures of the monitoring tests: a trained churn model and its baseline (once per session: pure
values), moto S3 with capture-format files and one monitored day per scenario (once per test file:
the AWS mock and its environment must end with the file, or they leak into other packages' tests).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from moto import mock_aws
from tests.support.aws import aws_test_env
from tests.unit.monitoring.monitoring_helpers import (
    BUCKET,
    DAYS,
    MALICIOUS,
    ROWS,
    TEST_DAY,
    TRAIN_DAYS,
    write_day,
)

from modelops.config import ModelConfig, get_model
from modelops.data.baseline import profile_baseline
from modelops.local.datagen import generate_batch
from modelops.monitoring.day_report import monitor_day
from modelops.store import Store
from modelops.training.evaluation import evaluate_model
from modelops.training.pipelines import build_pipeline


@pytest.fixture(scope="session")
def config() -> ModelConfig:
    return get_model("churn")


@pytest.fixture(scope="session")
def trained(config):
    """A linear churn model on two generated days, its baseline (with predictions) and test metrics."""
    train = pd.concat([generate_batch("churn", day, 1500) for day in TRAIN_DAYS], ignore_index=True)
    X = train[config.feature_names]
    model = build_pipeline(config, "linear").fit(X, train[config.target])
    baseline = profile_baseline(train, config, predictions=model.predict(X))
    test = generate_batch("churn", TEST_DAY, 1000)
    evaluation = evaluate_model(model, test[config.feature_names], test[config.target], config)
    return {"model": model, "baseline": baseline, "evaluation": evaluation}


@pytest.fixture(scope="module")
def store():
    with aws_test_env(), mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield Store(bucket=BUCKET, client=client)


@pytest.fixture(scope="session")
def gx_context():
    from modelops.data.validation import make_context

    return make_context()


@pytest.fixture(scope="module")
def reports(store, config, trained, gx_context):
    """One monitored day per scenario: ``{name: (report, day_data)}``."""
    model = trained["model"]
    for name, day in DAYS.items():
        if name == "script":
            frame = generate_batch("churn", day, ROWS)
            frame.loc[frame.index[::3], "region"] = MALICIOUS
            write_day(store, config, model, day, frame=frame)
        else:
            write_day(store, config, model, day, scenario=None if name == "normal" else name)
    out = {}
    for name, day in DAYS.items():
        out[name] = monitor_day(
            store,
            config,
            day,
            {"1": trained["baseline"]},
            evaluations=trained["evaluation"],
            baseline_uris={"1": f"s3://{BUCKET}/snapshots/churn/run-1/baseline.json"},
            generated_at=dt.datetime(2024, 3, 20, tzinfo=dt.UTC),
            gx_context=gx_context,
        )
    return out
