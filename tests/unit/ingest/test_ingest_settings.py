"""The ingest knobs come from the environment and are checked."""

from __future__ import annotations

import pytest

from modelops.ingest.settings import IngestSettings


def test_settings_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.setenv("MODELOPS_INGEST_CONCURRENCY", "7")
    monkeypatch.setenv("MODELOPS_INGEST_RETRY_DELAY_SECONDS", "2")
    settings = IngestSettings.from_env()
    assert (settings.concurrency, settings.retry_delay_seconds, settings.visibility_seconds) == (7, 2, 300)
    monkeypatch.setenv("MODELOPS_INGEST_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="MODELOPS_INGEST_CONCURRENCY='0' must be at least 1"):
        IngestSettings.from_env()
