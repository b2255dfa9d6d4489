"""Generated churn traffic in the capture and feedback format serving writes, for the monitoring tests.

Scenario days are two apart, so each day's "next day" feedback partition is its own; every test
uses days of its own, so the session-wide bucket never mixes two tests' traffic.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd

from modelops.layout import partition
from modelops.local.datagen import generate_batch
from modelops.store import Store

BUCKET = "monitoring-test"
TRAIN_DAYS = [dt.date(2024, 2, 1), dt.date(2024, 2, 2)]
TEST_DAY = dt.date(2024, 2, 5)
#: Scenario days two apart, so each day's "next day" feedback partition is its own.
DAYS = {
    "normal": dt.date(2024, 3, 1),
    "covariate_shift": dt.date(2024, 3, 3),
    "new_category": dt.date(2024, 3, 5),
    "null_column": dt.date(2024, 3, 7),
    "concept_shift": dt.date(2024, 3, 9),
    "script": dt.date(2024, 3, 11),
}
ROWS = 2000
LABEL_SHARE = 0.8
MALICIOUS = "<script>alert('x')</script>"
NOW = dt.datetime(2024, 3, 20, 6, 0, tzinfo=dt.UTC)


def parquet_bytes(frame: pd.DataFrame, schema) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), buffer)
    return buffer.getvalue()


def capture_frame(config, model, frame: pd.DataFrame, day: dt.date, version: str) -> pd.DataFrame:
    """What serving's ``capture_rows`` writes: 10 records per request, strings for categories."""
    from modelops.serving.validation import category_text

    X = frame[config.feature_names]
    n = len(frame)
    classes = [category_text(c) for c in model.classes_]
    out = pd.DataFrame(
        {
            "request_id": [f"req-{day:%Y%m%d}-v{version}-{i // 10:05d}" for i in range(n)],
            "record_index": np.arange(n) % 10,
            "captured_at": frame["event_time"],
            "model": config.name,
            "model_version": version,
        }
    )
    for name in config.numeric_features:
        out[name] = frame[name].astype(float)
    for name in config.categorical_features:
        out[name] = frame[name]
    out["customer_id"] = frame["customer_id"]
    out["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["prediction"] = [category_text(p) for p in model.predict(X)]
    out["probabilities"] = list(model.predict_proba(X))
    out["classes"] = [classes] * n
    return out


def write_day(
    store: Store,
    config,
    model,
    day: dt.date,
    *,
    scenario: str | None = None,
    rows: int = ROWS,
    version: str = "1",
    files: int = 3,
    label_share: float = LABEL_SHARE,
    frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Capture files for ``day``; labels for the first ``label_share`` rows, half of them a day late."""
    from modelops.serving.capture_schema import capture_schema, feedback_schema

    frame = generate_batch("churn", day, rows, scenario=scenario) if frame is None else frame
    captured = capture_frame(config, model, frame, day, version)
    for i, part in enumerate(np.array_split(np.arange(len(captured)), files)):
        key = partition("capture", config.name, day) + f"v{version}-{i:04d}.parquet"
        store.put_bytes(key, parquet_bytes(captured.iloc[part], capture_schema(config)))
    labelled = int(len(captured) * label_share)
    feedback = pd.DataFrame(
        {
            "request_id": captured["request_id"][:labelled],
            "record_index": captured["record_index"][:labelled].astype("int64"),
            "label": frame[config.target].astype(str)[:labelled],
            "received_at": frame["event_time"][:labelled] + pd.Timedelta(hours=6),
            "model": config.name,
        }
    )
    half = labelled // 2
    for offset, part in ((0, feedback.iloc[:half]), (1, feedback.iloc[half:])):
        key = partition("feedback", config.name, day + dt.timedelta(days=offset)) + f"v{version}-{day:%d}.parquet"
        store.put_bytes(key, parquet_bytes(part, feedback_schema(config)))
    return captured


def drifted(report: dict) -> list[str]:
    return report["verdict"]["drifted_features"]


def retrain_entry(day: str, at: dt.datetime) -> dict:
    return {"day": day, "action": "retrain", "at": at.isoformat()}
