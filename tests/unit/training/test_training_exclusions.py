"""The retrain steps train only on batches that passed the batch suite one by one: excluded files
travel with the snapshot summary (into the decision record) and no longer fail validation."""

from __future__ import annotations

import datetime as dt

from modelops import batches
from modelops.config import get_model
from modelops.data import steps as retrain
from modelops.layout import partition
from modelops.local import datagen


def test_excluded_batches_reach_the_summary_and_validation_passes_on_the_rest(store):
    model = get_model("churn")
    day = dt.date(2026, 3, 1)
    prefix = partition("raw", model.name, day)
    store.put_bytes(f"{prefix}clean.csv", batches.to_csv_bytes(datagen.generate_batch("churn", day, 200)))
    single = datagen.generate_batch("churn", day, 200)
    single[model.target] = single[model.target].iloc[0]
    store.put_bytes(f"{prefix}single.csv", batches.to_csv_bytes(single))
    summary = retrain.snapshot_training_data(model, dt.datetime(2026, 3, 2, tzinfo=dt.UTC), 1, "r", store)
    assert summary["objects"] == 1 and summary["rows"] == 200
    assert [e["key"] for e in summary["excluded"]] == [f"{prefix}single.csv"]
    assert summary["excluded"][0]["failed_expectations"]
    validation = retrain.validate_training_data(model, "r", store)
    assert validation["success"] is True and validation["excluded"] == 1


def test_empty_window_summary_says_nothing_to_train(store):
    summary = retrain.snapshot_training_data(get_model("churn"), dt.datetime(2026, 3, 2, tzinfo=dt.UTC), 3, "r", store)
    assert summary["nothing_to_train"] is True and "2026-02-27..2026-03-01" in summary["message"]
