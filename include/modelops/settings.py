"""Where things are, and every typed setting read from the environment.

The local stack (``modelops.local.stack``) exports these variables to every process it starts; in
production the same names are set by the deployment. Nothing here is read at import time, so a
test can change the environment and call :func:`load` again. Every stage reads its own knobs
(``MODELOPS_INGEST_*``, ``MODELOPS_SERVING_*``, ``MODELOPS_CAPTURE_*``) through :func:`env_int`,
:func:`env_float`, :func:`env_bool` and :func:`env_str`: an unset or empty variable means the
default, a bad value raises :class:`SettingError` naming the variable and what it must be.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingError(ValueError):
    """An environment variable holds a value the platform cannot use; the message names it."""


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    raw = (os.environ if environ is None else environ).get(name)
    return None if raw is None or raw.strip() == "" else raw.strip()


def _number(name: str, default, cast, minimum, maximum, environ):
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise SettingError(f"{name}={raw!r} is not {kind}") from None
    if cast is float and not math.isfinite(value):
        raise SettingError(f"{name}={raw!r} is not a finite number")
    if minimum is not None and value < minimum:
        raise SettingError(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingError(f"{name}={raw!r} must be at most {maximum}")
    return value


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """An integer setting; ``default`` when unset or empty."""
    return _number(name, default, int, minimum, maximum, environ)


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    """A finite number setting; ``default`` when unset or empty."""
    return _number(name, default, float, minimum, maximum, environ)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (any case); ``default`` when unset."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingError(f"{name}={raw!r} is not a yes/no value (use true or false)")


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """A text setting, stripped; ``default`` when unset or empty."""
    raw = _raw(name, environ)
    return default if raw is None else raw


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
        bucket=env_str("MODELOPS_BUCKET", "modelops"),
        # AWS_ENDPOINT_URL is boto3's own variable: unset in AWS, the local endpoint here.
        aws_endpoint_url=env_str("AWS_ENDPOINT_URL"),
        aws_region=env_str("AWS_DEFAULT_REGION", "us-east-1"),
        mlflow_tracking_uri=env_str("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        serving_url=env_str("MODELOPS_SERVING_URL", "http://127.0.0.1:8000"),
        serving_token=env_str("MODELOPS_SERVING_TOKEN"),
    )


def s3_client(settings: Settings | None = None):
    import boto3

    settings = settings or load()
    return boto3.client("s3", **settings.boto3_kwargs())


def sqs_client(settings: Settings | None = None):
    import boto3

    settings = settings or load()
    return boto3.client("sqs", **settings.boto3_kwargs())
