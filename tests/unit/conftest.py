"""Shared unit-test fixtures: AWS calls go to moto's in-process mock (never a network)."""

from __future__ import annotations

import os

import pytest
from moto import mock_aws
from tests.support.aws import set_test_aws_env
from tests.support.own_code import models_folder

from modelops.store import Store

# One OpenMP/BLAS thread per test process, set before any library starts its thread pool: the tier
# already runs a process per core (pytest-xdist), and estimators' pools on a few thousand rows only
# oversubscribe the cores (HistGradientBoosting's OpenMP spin-wait made one test take 20-40 s under
# load). threadpoolctl would miss a runtime loaded after it ran; the variables are read at load.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


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
