"""Training snapshots: the window sees only complete days before the as-of instant; the manifest
pins each object's bytes; unreadable batches are listed, not fatal; changed objects are refused."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops import batches
from modelops.config import get_model
from modelops.data.snapshot import SnapshotError, Window, load_snapshot_frame, take_snapshot
from modelops.layout import partition
from modelops.local import datagen


def put_day(store, model, day, frame=None, data=None):
    frame = frame if frame is not None else datagen.generate_batch("churn", day, 50)
    key = f"{partition('raw', model.name, day)}{model.name}-{day}.csv"
    store.put_bytes(key, data if data is not None else batches.to_csv_bytes(frame))
    return key


@pytest.mark.parametrize(
    ("as_of", "first", "last"),
    [
        (dt.datetime(2026, 3, 10, tzinfo=dt.UTC), "2026-03-07", "2026-03-09"),  # midnight: the 10th has not started
        (dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.UTC), "2026-03-07", "2026-03-09"),  # the 10th is not complete
        (dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=3))), "2026-03-06", "2026-03-08"),
    ],
)
def test_window_is_complete_days_before_as_of(as_of, first, last):
    window = Window.ending_at(as_of, 3)
    assert (str(window.first_day), str(window.last_day)) == (first, last)


def test_snapshot_reads_only_the_window_and_pins_bytes(store):
    model = get_model("churn")
    for offset in range(6):
        put_day(store, model, dt.date(2026, 3, 5) + dt.timedelta(days=offset))
    manifest = take_snapshot(model, dt.datetime(2026, 3, 9, tzinfo=dt.UTC), 3, "run:1", store)
    assert [o["day"] for o in manifest["objects"]] == ["2026-03-06", "2026-03-07", "2026-03-08"]
    assert manifest["rows"] == 150 and manifest["unreadable"] == []
    assert store.exists("snapshots/churn/run_1/manifest.json")
    again = take_snapshot(model, dt.datetime(2026, 3, 9, tzinfo=dt.UTC), 3, "run:1", store)
    assert again["dataset_hash"] == manifest["dataset_hash"]
    assert len(load_snapshot_frame(model, manifest, store)) == 150

    put_day(store, model, dt.date(2026, 3, 7), frame=datagen.generate_batch("churn", dt.date(2026, 3, 7), 51))
    with pytest.raises(SnapshotError, match="changed since the snapshot was taken"):
        load_snapshot_frame(model, manifest, store)
    changed = take_snapshot(model, dt.datetime(2026, 3, 9, tzinfo=dt.UTC), 3, "run:2", store)
    assert changed["dataset_hash"] != manifest["dataset_hash"]


def test_unreadable_batch_is_listed_not_fatal(store):
    model = get_model("churn")
    good = put_day(store, model, dt.date(2026, 3, 1))
    frame = datagen.generate_batch("churn", dt.date(2026, 3, 2), 50)
    bad = put_day(store, model, dt.date(2026, 3, 2), data=datagen.corrupt_batch(frame, "truncated_file"))
    manifest = take_snapshot(model, dt.datetime(2026, 3, 3, tzinfo=dt.UTC), 2, "r", store)
    assert [u["key"] for u in manifest["unreadable"]] == [bad]
    assert "truncated" in manifest["unreadable"][0]["error"]
    assert [e["key"] for e in manifest["excluded"]] == [bad]
    assert len(load_snapshot_frame(model, manifest, store)) == 50 and good


def test_empty_window_is_nothing_to_train_not_an_error(store):
    model = get_model("churn")
    outcome = take_snapshot(model, dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 2, "r", store)
    assert outcome["nothing_to_train"] is True
    assert "nothing to train in window 2026-02-27..2026-02-28" in outcome["message"]
    assert "training_window_days" in outcome["message"]
    assert not store.exists("snapshots/churn/r/manifest.json")


def test_single_class_file_is_excluded_and_named(store):
    model = get_model("churn")
    day = dt.date(2026, 3, 1)
    clean = put_day(store, model, day)
    frame = datagen.generate_batch("churn", day, 50)
    frame[model.target] = frame[model.target].iloc[0]
    bad = f"{partition('raw', model.name, day)}{model.name}-{day}-single.csv"
    store.put_bytes(bad, batches.to_csv_bytes(frame))
    manifest = take_snapshot(model, dt.datetime(2026, 3, 2, tzinfo=dt.UTC), 1, "r", store)
    assert [o["key"] for o in manifest["objects"]] == [clean]
    assert [e["key"] for e in manifest["excluded"]] == [bad]
    assert manifest["excluded"][0]["failed_expectations"] and manifest["excluded"][0]["reason"]
    assert store.get_json("snapshots/churn/r/manifest.json")["excluded"][0]["key"] == bad
    assert len(load_snapshot_frame(model, manifest, store)) == 50


def test_ingest_quarantine_verdict_is_reused_for_the_same_etag(store):
    from modelops.layout import ingest_result_key as result_key

    model = get_model("churn")
    kept = put_day(store, model, dt.date(2026, 3, 1))
    key = put_day(store, model, dt.date(2026, 3, 2))
    etag = next(o.etag for o in store.list(model.raw_prefix) if o.key == key)
    store.put_json(result_key(model.name, key, etag), {"status": "quarantined", "failed_expectations": ["x_rule"]})
    manifest = take_snapshot(model, dt.datetime(2026, 3, 3, tzinfo=dt.UTC), 2, "r", store)
    assert [o["key"] for o in manifest["objects"]] == [kept]
    assert manifest["excluded"][0]["failed_expectations"] == ["x_rule"]
    assert manifest["excluded"][0]["verdict_source"] == "ingest"


def test_too_few_rows_left_fails_naming_the_excluded_files(store):
    model = get_model("churn")
    frame = datagen.generate_batch("churn", dt.date(2026, 3, 1), 50)
    bad = put_day(store, model, dt.date(2026, 3, 1), data=datagen.corrupt_batch(frame, "truncated_file"))
    with pytest.raises(SnapshotError, match=rf"only 0 rows left .* excluding 1 of 1 files .*{bad}"):
        take_snapshot(model, dt.datetime(2026, 3, 2, tzinfo=dt.UTC), 1, "r", store)
