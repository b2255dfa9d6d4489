"""Fixtures of the training unit tests: one thread for the estimators, a small dataset of each kind."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.unit.training.training_helpers import make_config, make_frame

from modelops.config import ModelConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """HistGradientBoosting's OpenMP threads cost more than they save on a few hundred rows."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def cls_data() -> tuple[ModelConfig, pd.DataFrame]:
    return make_config(), make_frame()


@pytest.fixture(scope="module")
def reg_data() -> tuple[ModelConfig, pd.DataFrame]:
    return make_config("regression"), make_frame("regression")
