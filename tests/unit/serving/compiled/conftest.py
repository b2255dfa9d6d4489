"""One native thread per test: OpenMP's spinning threads make small fits slow on a busy 2-core machine."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_native_thread():
    with threadpool_limits(limits=1):
        yield
