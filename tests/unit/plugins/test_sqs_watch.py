"""The trigger that wakes ingest_<model> (runs in the triggerer; reads the depth, never receives)."""

from __future__ import annotations

import pytest
from moto import mock_aws

from modelops.local import bootstrap


@pytest.fixture
def aws(aws_env):
    """moto's SQS with the churn model's ingest queue."""
    with mock_aws():
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName=bootstrap.queue_name("churn"))["QueueUrl"]
        yield {"sqs": sqs, "url": url}


def test_trigger_fires_on_visible_messages_without_receiving_them(aws):
    import asyncio

    from modelops_airflow.sqs_watch import QueueHasMessagesTrigger

    name = bootstrap.queue_name("churn")
    trigger = QueueHasMessagesTrigger(name, poll_seconds=0.01, idle_seconds=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "modelops_airflow.sqs_watch.QueueHasMessagesTrigger"
    assert kwargs == {"queue_name": name, "poll_seconds": 0.01, "idle_seconds": 0.05}

    async def first_event(t):
        async for event in t.run():
            return event.payload

    assert asyncio.run(first_event(trigger))["status"] == "idle"
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody="x")
    assert asyncio.run(first_event(QueueHasMessagesTrigger(**kwargs))) == {
        "status": "messages",
        "queue": name,
        "visible": 1,
    }
    attrs = aws["sqs"].receive_message(QueueUrl=aws["url"], MessageSystemAttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ][0]["Attributes"]
    assert attrs["ApproximateReceiveCount"] == "1"  # the trigger's polls were not receives
