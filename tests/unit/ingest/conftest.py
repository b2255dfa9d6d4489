"""Fixtures of the ingest unit tests: the churn model and moto's in-process S3 + SQS with the
model's queue and dead-letter queue, as provisioning creates them."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from tests.support.aws import set_test_aws_env
from tests.unit.ingest.ingest_helpers import BUCKET

from modelops.config import get_model
from modelops.local import bootstrap
from modelops.store import Store


@pytest.fixture
def model():
    return get_model("churn")


@pytest.fixture
def aws(monkeypatch, model):
    set_test_aws_env(monkeypatch, MODELOPS_BUCKET=BUCKET)
    with mock_aws():
        import boto3

        store = Store(BUCKET)
        store.ensure_bucket()
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName=bootstrap.dead_letter_queue_name("churn"))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=bootstrap.queue_name("churn"),
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        yield {"store": store, "sqs": sqs, "url": url, "dlq": dlq}
