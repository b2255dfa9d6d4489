"""Where things are: every address, bucket and credential comes from the environment.

The local stack (``modelops.local.stack``) exports these variables to every process it starts; in
production the same names are set by the deployment. Nothing here is read at import time, so a
test can change the environment and call :func:`load` again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    bucket: str
    aws_endpoint_url: str | None
    aws_region: str
    mlflow_tracking_uri: str
    serving_url: str
    serving_token: str | None

    def boto3_kwargs(self) -> dict:
        kwargs: dict = {"region_name": self.aws_region}
        if self.aws_endpoint_url:
            kwargs["endpoint_url"] = self.aws_endpoint_url
        return kwargs


def load() -> Settings:
    return Settings(
        bucket=os.environ.get("MODELOPS_BUCKET", "modelops"),
        # AWS_ENDPOINT_URL is boto3's own variable: unset in AWS, the local endpoint here.
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        aws_region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        serving_url=os.environ.get("MODELOPS_SERVING_URL", "http://127.0.0.1:8000"),
        serving_token=os.environ.get("MODELOPS_SERVING_TOKEN") or None,
    )


def s3_client(settings: Settings | None = None):
    import boto3

    settings = settings or load()
    return boto3.client("s3", **settings.boto3_kwargs())


def sqs_client(settings: Settings | None = None):
    import boto3

    settings = settings or load()
    return boto3.client("sqs", **settings.boto3_kwargs())
