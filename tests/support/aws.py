"""The environment unit tests give boto3 so that it reaches moto's in-process ``mock_aws`` only:
test credentials, a region, and no endpoint or profile that would send a call elsewhere."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

TEST_AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def set_test_aws_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for name, value in {**TEST_AWS_ENV, **extra}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def aws_test_env(**extra: str) -> Iterator[None]:
    """:func:`set_test_aws_env` for a ``with`` block (module- or session-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        set_test_aws_env(mp, **extra)
        yield
