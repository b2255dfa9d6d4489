"""Provisioning: queues, dead-letter queues and bucket notifications, created idempotently."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from moto import mock_aws

from modelops.config import load_all_models
from modelops.local import bootstrap


@pytest.fixture
def cfg(aws_env, monkeypatch):
    """No stack config: the environment's services (here ``mock_aws``), as tasks and the scaffold CLI reach them."""
    monkeypatch.setenv("MODELOPS_BUCKET", "lake")
    with mock_aws():
        yield None


def _notifications(cfg) -> dict[str, str]:
    s3 = boto3.client("s3")
    configs = s3.get_bucket_notification_configuration(Bucket="lake").get("QueueConfigurations", [])
    return {c["Id"]: c["Filter"]["Key"]["FilterRules"][0]["Value"] for c in configs}


def test_every_model_gets_a_queue_with_redrive_and_a_notification(cfg):
    models = load_all_models()
    urls = bootstrap.create_resources(cfg, models)
    sqs = boto3.client("sqs")
    for name, model in models.items():
        attributes = sqs.get_queue_attributes(QueueUrl=urls[name], AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == bootstrap.MAX_RECEIVE_COUNT
        assert redrive["deadLetterTargetArn"].endswith(bootstrap.dead_letter_queue_name(name))
        assert _notifications(cfg)[f"ingest-{name}"] == model.raw_prefix
    assert bootstrap.create_resources(cfg, models) == urls  # idempotent


def test_provisioning_one_new_model_keeps_the_others_notifications(cfg):
    models = load_all_models()
    bootstrap.create_resources(cfg, models)
    before = _notifications(cfg)
    new = next(iter(models.values())).model_copy(update={"name": "orders"})
    bootstrap.create_resources(cfg, {"orders": new})
    after = _notifications(cfg)
    assert after == before | {"ingest-orders": new.raw_prefix}
    boto3.client("sqs").get_queue_url(QueueName=bootstrap.queue_name("orders"))


def _small(model, **data):
    return model.model_copy(
        update={"data": model.data.model_copy(update={"history_days": 3, "rows_per_day": 50} | data)}
    )


def test_history_fills_only_the_empty_days_of_the_models_own_landing_zone(cfg):
    boto3.client("s3").create_bucket(Bucket="lake")
    churn = _small(load_all_models()["churn"])
    today = dt.date(2026, 11, 30)
    assert bootstrap.load_history(cfg, today=today, models={"churn": churn}) == 3
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="lake")["Contents"]}
    assert keys == {bootstrap.batch_key(churn, day) for day in bootstrap.history_days(churn, today)}
    assert all(key.startswith(churn.raw_prefix) for key in keys)
    assert bootstrap.load_history(cfg, today=today, models={"churn": churn}) == 0  # idempotent

    # A second model reading churn's landing zone finds every day filled and writes nothing there.
    reader = churn.model_copy(update={"name": "churn_reader"})
    reader = _small(reader, raw_prefix=churn.raw_prefix)
    assert bootstrap.load_history(cfg, today=today, models={"churn_reader": reader}) == 0
    assert {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="lake")["Contents"]} == keys
