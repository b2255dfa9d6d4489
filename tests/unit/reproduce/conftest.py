"""Fixtures of the reproduce tests: a throw-away MLflow and bucket, fixed code version."""

from __future__ import annotations

import pytest
from tests.unit.local_mlflow import local_mlflow

from modelops import versioning
from modelops.layout import experiment_name


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def tracked(store, tmp_path, monkeypatch):
    """MLflow on SQLite under ``tmp_path`` with the churn experiment; the bucket is ``store``'s."""
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "c0ffee-trained")
    monkeypatch.setenv("MODELOPS_BUCKET", store.bucket)
    with local_mlflow(tmp_path, experiment_name("churn")) as ml:
        yield ml
