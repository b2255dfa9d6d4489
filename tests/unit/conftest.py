"""Shared unit-test fixtures: AWS calls go to moto's in-process mock (never a network)."""

from __future__ import annotations

import pytest
from moto import mock_aws
from tests.support.aws import set_test_aws_env
from tests.support.own_code import models_folder

from modelops.store import Store


@pytest.fixture
def aws_env(monkeypatch):
    """Test credentials and no endpoint, so boto3 talks to ``mock_aws`` only."""
    set_test_aws_env(monkeypatch)


@pytest.fixture
def store(aws_env):
    """A Store on an empty mocked bucket named ``bucket``."""
    with mock_aws():
        s = Store("bucket")
        s.ensure_bucket()
        yield s


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A models folder of the test's own to write a data scientist's packages into (tests/support/own_code.py)."""
    yield from models_folder(tmp_path, monkeypatch)
