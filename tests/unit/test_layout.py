"""layout: the S3 keys are the platform's contract with itself (and with anyone reading the
bucket); these are the shapes docs/ARCHITECTURE.md describes."""

from __future__ import annotations

import datetime as dt

from modelops import layout

DAY = dt.date(2026, 11, 30)
RUN = "scheduled__2026-11-30T00:00:00+00:00"


def test_partitions_and_their_dates():
    assert layout.partition("capture", "churn", DAY) == "capture/churn/dt=2026-11-30/"
    assert layout.partition_date("raw/churn/dt=2026-11-30/a.csv") == DAY
    assert layout.partition_date("raw/churn/a.csv") is None


def test_run_ids_become_portable_key_parts():
    assert layout.safe_run_id(RUN) == "scheduled__2026-11-30T00_00_00_00_00"
    assert layout.snapshot_key("churn", RUN) == "snapshots/churn/scheduled__2026-11-30T00_00_00_00_00/manifest.json"
    assert layout.decision_record_key("churn", RUN) == "decisions/churn/scheduled__2026-11-30T00_00_00_00_00.json"
    assert layout.snapshot_key("churn", RUN).startswith(layout.training_run_prefix("churn", RUN))


def test_zones_of_a_model():
    assert layout.raw_prefix("churn") == "raw/churn/"
    assert layout.raw_batch_key("churn", DAY, "a.csv") == "raw/churn/dt=2026-11-30/a.csv"
    assert layout.validated_prefix("churn") == "validated/churn/"
    assert (
        layout.ingest_destination_key("churn", "dt=2026-11-30/a.csv", "validated")
        == "validated/churn/dt=2026-11-30/a.csv"
    )
    assert (
        layout.ingest_destination_key("churn", "dt=2026-11-30/a.csv", "quarantined")
        == "quarantine/churn/dt=2026-11-30/a.csv"
    )
    assert layout.alias_history_key("churn") == "registry/churn/alias-history.json"
    assert layout.dead_letter_key("churn", "m-1") == "dead-letters/churn/m-1.json"
    assert layout.capture_file_key(layout.CAPTURE, "churn", DAY, "f1") == "capture/churn/dt=2026-11-30/f1.parquet"


def test_every_training_run_key_lives_in_the_runs_folder():
    prefix = layout.training_run_prefix("churn", RUN)
    for key in (
        layout.training_validation_key("churn", RUN),
        layout.training_data_docs_key("churn", RUN),
        layout.training_baseline_key("churn", RUN),
        layout.evaluation_key("churn", RUN),
    ):
        assert key.startswith(prefix), key


def test_ingest_markers_are_per_file_version():
    one = layout.ingest_result_key("churn", "raw/churn/dt=2026-11-30/a.csv", "etag1")
    other = layout.ingest_result_key("churn", "raw/churn/dt=2026-11-30/a.csv", "etag2")
    assert one != other and one.startswith(layout.ingest_results_prefix("churn"))


def test_monitoring_keys_of_a_day():
    keys = layout.monitoring_report_keys("churn", DAY)
    assert all(key.startswith("monitoring/churn/dt=2026-11-30/") for key in keys.values())
    assert layout.retrain_decision_key("churn", DAY).startswith("monitoring/churn/dt=2026-11-30/")


def test_serving_worker_heartbeats_live_under_one_prefix():
    key = layout.serving_worker_key("host-a.example-4242-0f3a9c")
    assert key == "serving/workers/host-a.example-4242-0f3a9c.json"
    assert key.startswith(layout.SERVING_WORKERS_PREFIX)
    assert layout.serving_worker_key("odd/host:1") == "serving/workers/odd_host_1.json"
