"""The demo's pure parts: which days, what traffic, how captured rows are counted, bad arguments.
The loop itself runs against the stack in tests/integration/test_monitor.py."""

from __future__ import annotations

import datetime as dt
import io
import math

import pandas as pd
import pytest

from modelops.config import get_model
from modelops.local import demo


def test_days_end_with_the_drift_day_and_stay_before_today():
    days = demo.DemoDays.before(dt.date(2026, 11, 25), normal_days=3)
    assert days.drift == dt.date(2026, 11, 24)
    assert days.normal == (dt.date(2026, 11, 21), dt.date(2026, 11, 22), dt.date(2026, 11, 23))
    with pytest.raises(ValueError, match="normal_days must be at least 1"):
        demo.DemoDays.ending(dt.date(2026, 11, 24), normal_days=0)


def test_event_times_spread_over_the_day_in_order():
    times = demo.event_times(dt.date(2026, 11, 3), 16)
    assert times[0] == dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert {t.date() for t in times} == {dt.date(2026, 11, 3)} and times[-1].hour < 17


def test_traffic_is_json_ready_and_follows_the_scenario():
    config = get_model("churn")
    normal = demo.traffic_frame(config, dt.date(2026, 11, 3), 800, None)
    shifted = demo.traffic_frame(config, dt.date(2026, 11, 3), 800, "covariate_shift")
    assert shifted["monthly_charges"].mean() > 1.15 * normal["monthly_charges"].mean()
    records = demo.json_records(normal, config.feature_names)
    assert len(records) == 800 and set(records[0]) == set(config.feature_names)
    values = [v for r in records for v in r.values()]
    assert None in values  # nullable features arrive as JSON null, never NaN
    assert not any(isinstance(v, float) and math.isnan(v) for v in values)
    assert all(type(v) in {int, float, str, bool, type(None)} for v in values)
    # Live traffic is not the training history of the same day.
    from modelops.local import datagen

    history = datagen.generate_batch(config.data.generator, dt.date(2026, 11, 3), 800)
    assert not history[config.feature_names].equals(normal[config.feature_names])


def test_a_model_without_a_generator_is_refused():
    churn = get_model("churn")
    config = churn.model_copy(update={"data": churn.data.model_copy(update={"generator": None})})
    with pytest.raises(demo.DemoError, match="names no data generator"):
        demo.traffic_frame(config, dt.date(2026, 11, 3), 10, None)


def test_captured_rows_counts_parquet_rows_of_the_day_only(store):
    def put(key: str, rows: int) -> None:
        buffer = io.BytesIO()
        pd.DataFrame({"a": range(rows)}).to_parquet(buffer, index=False)
        store.put_bytes(key, buffer.getvalue())

    put("capture/churn/dt=2026-11-03/a.parquet", 120)
    put("capture/churn/dt=2026-11-03/b.parquet", 30)
    put("capture/churn/dt=2026-11-04/c.parquet", 999)
    store.put_bytes("capture/churn/dt=2026-11-03/_SUCCESS", b"")
    assert demo.captured_rows(store, "churn", dt.date(2026, 11, 3)) == 150
    assert demo.captured_rows(store, "churn", dt.date(2026, 11, 5)) == 0


def test_cli_refuses_a_drift_day_that_is_not_over(capsys):
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--drift-day", tomorrow.isoformat()])
    assert exit_info.value.code == 2
    assert "must be a complete day before today" in capsys.readouterr().err
