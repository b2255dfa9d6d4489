"""Folding a day of traffic: one state per served version, bounded by features and bins, not rows."""

from __future__ import annotations

import datetime as dt

from tests.unit.monitoring.monitoring_helpers import (
    write_day,
)

from modelops.monitoring.day_report import monitor_day
from modelops.monitoring.live_data import collect


def test_traffic_of_several_versions_is_grouped_per_version(store, config, trained):
    day = dt.date(2024, 4, 10)
    write_day(store, config, trained["model"], day, rows=1200, version="1", files=2)
    write_day(store, config, trained["model"], day, rows=300, version="2", files=1)
    loaded = []

    def loader(version: str):
        loaded.append(version)
        return trained["baseline"] if version == "1" else None  # version 2's baseline is missing

    report, data = monitor_day(store, config, day, loader)
    assert sorted(loaded) == ["1", "2"]  # one lookup per version, however many chunks
    assert report["rows"]["by_version"] == {"1": 1200, "2": 300}
    assert report["rows"]["versions_without_baseline"] == ["2"]
    assert report["main_version"] == "1" and list(report["drift_by_version"]) == ["1"]
    assert [v["version"] for v in report["served_versions"]] == ["1", "2"]
    assert report["performance"]["status"] == "no_reference"  # no evaluation passed: metrics, no verdict


def test_state_is_bounded_by_features_and_bins_not_rows(store, config, trained):
    small, large = dt.date(2024, 5, 1), dt.date(2024, 5, 3)
    write_day(store, config, trained["model"], small, rows=2500, files=2, label_share=0.0)
    write_day(store, config, trained["model"], large, rows=10_000, files=5, label_share=0.0)
    sizes, samples = [], []
    for day in (small, large):
        data = collect(store, config.name, day, {"1": trained["baseline"]}, chunk_rows=700, quality_sample_rows=500)
        version = data.versions["1"]
        sizes.append(version.profile.state_size())
        samples.append(len(version.quality_sample))
        assert version.profile.rows == data.rows
    assert sizes[0] == sizes[1]
    assert samples == [500, 500]
