"""The ``smoke_<model>`` stack check's history read on moto's S3: only batches dated on or before
the run's as-of day count, an unreadable batch is listed rather than fatal, an empty history is a
refusal that says what to do; the summary's JSON keys are what the MLflow step and the UI read."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops.config import ModelConfig
from modelops.stack_check import steps


def make_config(name: str) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": name,
            "problem_type": "binary_classification",
            "target": "y",
            "features": [{"name": "x0", "type": "numeric"}],
            "data": {"timestamp_column": "ts"},
            "metrics": {"primary": "roc_auc"},
        }
    )


def put(store, day: str, name: str, body: bytes, model: str = "history") -> None:
    store.put_bytes(f"raw/{model}/dt={day}/{name}", body, "text/csv")


# One model name per test: the session may share one mocked bucket between tests.


def test_read_raw_history_counts_rows_up_to_as_of(store):
    put(store, "2026-11-01", "a.csv", b"x0,y\n1,0\n2,1\n")
    put(store, "2026-11-01", "b.csv", b"x0,y\n3,0\n")
    put(store, "2026-11-02", "c.csv", b"x0,y\n4,1\n")
    put(store, "2026-11-02", "empty.csv", b"")
    put(store, "2026-11-03", "later.csv", b"x0,y\n5,1\n")
    summary = steps.read_raw_history(make_config("history"), dt.date(2026, 11, 2), store)
    assert summary == {
        "model": "history",
        "as_of": "2026-11-02",
        "batches": 4,
        "unreadable": ["raw/history/dt=2026-11-02/empty.csv"],
        "rows": 4,
        "first_day": "2026-11-01",
        "last_day": "2026-11-02",
        "rows_per_day": {"2026-11-01": 3, "2026-11-02": 1},
    }
    assert steps.HistorySummary.from_json(summary).rows == 4


def test_read_raw_history_without_batches_says_what_to_do(store):
    put(store, "2026-11-05", "later.csv", b"x0,y\n5,1\n", model="quiet")
    with pytest.raises(
        FileNotFoundError,
        match=r"no raw batches for model 'quiet' in s3://bucket/raw/quiet/ on or before 2026-11-02.*make up",
    ):
        steps.read_raw_history(make_config("quiet"), dt.date(2026, 11, 2), store)
