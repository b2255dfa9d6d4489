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


def test_validation_processes_default_to_two_and_zero_means_in_thread(monkeypatch):
    assert IngestSettings.from_env().validation_processes == 2
    monkeypatch.setenv("MODELOPS_INGEST_VALIDATION_PROCESSES", "0")
    assert IngestSettings.from_env().validation_processes == 0
    monkeypatch.setenv("MODELOPS_INGEST_VALIDATION_PROCESSES", "-1")
    with pytest.raises(ValueError, match="MODELOPS_INGEST_VALIDATION_PROCESSES"):
        IngestSettings.from_env()
