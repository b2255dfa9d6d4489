"""Waiting on a condition instead of sleeping a fixed time (shared by the integration and compose tests)."""

from __future__ import annotations

import time


def wait_until(condition, what: str, timeout: float, interval: float = 0.5, fail: bool = True):
    """``condition()``'s first true value; after ``timeout`` seconds an AssertionError naming
    ``what`` (or, with ``fail=False``, the last false value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            if not fail:
                return value
            raise AssertionError(f"{what}: not true after {timeout:.0f} s")
        time.sleep(interval)
