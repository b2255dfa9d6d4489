"""Capture and feedback through the endpoint: the files hold exactly the requests made, S3 failing never fails
a request, labels land in S3, and the simulated-traffic event time sets the capture day."""

from __future__ import annotations

import datetime as dt
import io
import time

import pandas as pd
from fastapi.testclient import TestClient
from tests.unit.serving.serving_helpers import (
    AUTH,
    KEY,
    make_app,
    read_files,
    read_rows,
    record,
)

# Capture and feedback ------------------------------------------------------------------------------


def test_capture_files_hold_exactly_the_requests_made(env):
    bucket = "capture-exact"  # its own bucket: other tests' traffic must not count
    env["s3"].create_bucket(Bucket=bucket)
    app = make_app(env, bucket=bucket, capture={"flush_records": 4, "flush_seconds": 30.0})
    sent: dict[str, list[dict]] = {}
    with TestClient(app) as client:
        for size in (1, 5, 2):
            batch = [record(i, row_id=f"id-{size}-{i}") for i in range(size)]
            body = client.post("/models/toy/predict", json={"records": batch}).json()
            sent[body["request_id"]] = [
                dict(r, prediction=str(p)) for r, p in zip(batch, body["predictions"], strict=True)
            ]
        client.post("/models/toy/predict", json={"records": []})  # refused: must not be captured
        assert app.state.serving.writer.flush(5.0)
        files = read_files(env, "capture/toy/", bucket)
    keys, rows = list(files), pd.concat(files.values(), ignore_index=True)
    assert all(KEY.match(key) for key in keys), keys
    for key, frame in files.items():  # at most flush_records rows per file, in its capture day's partition
        assert 1 <= len(frame) <= 4
        assert {f"dt={day}" for day in frame["captured_at"].dt.date.astype(str)} == {key.split("/")[2]}
    assert len(rows) == 8 and set(rows["request_id"]) == set(sent)
    for request_id, batch in sent.items():
        got = rows[rows["request_id"] == request_id].sort_values("record_index")
        assert got["record_index"].tolist() == list(range(len(batch)))
        assert got["row_id"].tolist() == [r["row_id"] for r in batch]
        assert got["x0"].tolist() == [r["x0"] for r in batch]
        assert got["prediction"].tolist() == [r["prediction"] for r in batch]
    assert set(rows["model_version"]) == {"1"} and set(rows["classes"].map(tuple)) == {("0", "1")}
    assert str(rows["captured_at"].dt.tz) == "UTC"


def test_capture_keeps_serving_when_s3_fails_and_bounds_memory(env):
    bucket = "not-created-yet"
    capture = {"flush_records": 5, "flush_seconds": 0.05, "max_buffered": 10, "shutdown_timeout_seconds": 2.0}
    app = make_app(env, bucket=bucket, capture=capture)
    writer = app.state.serving.writer
    ids = []
    with TestClient(app) as client:
        for _ in range(6):
            response = client.post("/models/toy/predict", json={"records": [record(i) for i in range(4)]})
            assert response.status_code == 200, response.text
            ids.append(response.json()["request_id"])
        deadline = time.monotonic() + 5
        while writer.stats()["write_failures"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = writer.stats()
        assert stats["write_failures"] > 0 and stats["written"] == 0
        assert stats["pending"] <= 10 and stats["dropped"] == 24 - stats["pending"] >= 14
        metrics = client.get("/metrics").text
        assert f'modelops_capture_records_dropped_total{{model="toy",stream="capture"}} {stats["dropped"]}' in metrics
        assert client.get("/health").json()["capture"]["dropped"] == stats["dropped"]

        env["s3"].create_bucket(Bucket=bucket)  # S3 comes back: what is buffered is written
        assert writer.flush(5.0)
        after = writer.stats()
    assert after["written"] + after["dropped"] == 24 and after["written"] == stats["pending"]
    keys = [o["Key"] for o in env["s3"].list_objects_v2(Bucket=bucket, Prefix="capture/toy/")["Contents"]]
    got = pd.concat(
        pd.read_parquet(io.BytesIO(env["s3"].get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys
    )
    assert ids[-1] in set(got["request_id"])  # the newest request survives
    assert ids[0] not in set(got["request_id"])  # the oldest was dropped


def test_feedback_lands_in_s3(env):
    app = make_app(env)
    with TestClient(app) as client:
        request_id = client.post("/models/toy/predict", json={"records": [record(0), record(1)]}).json()["request_id"]
        labels = {"labels": [{"request_id": request_id, "record_index": i, "label": i} for i in range(2)]}
        assert client.post("/models/toy/feedback", json=labels).status_code == 401
        response = client.post("/models/toy/feedback", json=labels, headers=AUTH)
        assert response.status_code == 202 and response.json()["accepted"] == 2
        bad = client.post(
            "/models/toy/feedback", headers=AUTH,
            json={"labels": [{"request_id": request_id, "record_index": 0, "label": 1},
                             {"request_id": request_id, "record_index": 1, "label": "maybe"}]},
        )  # fmt: skip
        assert bad.status_code == 422 and bad.json()["detail"][0]["record_index"] == 1
        missing = client.post(
            "/models/toy/feedback", headers=AUTH, json={"labels": [{"request_id": "x", "record_index": 0}]}
        )
        assert missing.status_code == 422 and "label" in missing.text
        reg = client.post(
            "/models/toy_reg/feedback",
            headers=AUTH,
            json={"labels": [{"request_id": "r", "record_index": 0, "label": 12.5}]},
        )
        assert reg.status_code == 202
        assert app.state.serving.writer.flush(5.0)
        keys, rows = read_rows(env, "feedback/toy/")
        _, reg_rows = read_rows(env, "feedback/toy_reg/")
    assert keys and all(KEY.match(k) for k in keys)
    mine = rows[rows["request_id"] == request_id].sort_values("record_index")
    assert mine["label"].tolist() == ["0", "1"] and mine["record_index"].tolist() == [0, 1]
    assert reg_rows["label"].tolist() == [12.5]


# Event time for simulated traffic --------------------------------------------------------------------


EVENT = {"X-Modelops-Event-Time": "2026-11-18T12:00:00Z"}


def test_event_time_is_refused_unless_the_server_accepts_it_and_the_token_comes_with_it(env):
    with TestClient(make_app(env)) as client:  # production default: not accepted
        refused = client.post("/models/toy/predict", json={"record": record(0)}, headers=EVENT | AUTH)
        assert refused.status_code == 403
        assert "X-Modelops-Event-Time" in refused.text and "MODELOPS_SERVING_ACCEPT_EVENT_TIME" in refused.text
        labels = {"labels": [{"request_id": "r", "record_index": 0, "label": 1}]}
        assert client.post("/models/toy/feedback", json=labels, headers=EVENT | AUTH).status_code == 403
        assert client.post("/models/toy/predict", json={"record": record(0)}).status_code == 200  # no header: fine
    with TestClient(make_app(env, accept_event_time=True)) as client:
        for headers in (EVENT, EVENT | {"Authorization": "Bearer wrong"}):
            response = client.post("/models/toy/predict", json={"record": record(0)}, headers=headers)
            assert response.status_code == 403, response.text
            assert "X-Modelops-Event-Time" in response.text and "bearer token" in response.text
        for value in ("yesterday", "2026-11-18T12:00:00", "2026-13-01T00:00:00Z", "", "0001-01-01T00:00:00+01:00"):
            response = client.post(
                "/models/toy/predict", json={"record": record(0)}, headers=AUTH | {"X-Modelops-Event-Time": value}
            )
            assert response.status_code == 400, (value, response.text)
            assert "X-Modelops-Event-Time" in response.text and "ISO-8601" in response.text
            bad_feedback = client.post(
                "/models/toy/feedback", json=labels, headers=AUTH | {"X-Modelops-Event-Time": value}
            )
            assert bad_feedback.status_code == 400 and "X-Modelops-Event-Time" in bad_feedback.text


def test_event_time_sets_capture_day_and_feedback_time(env):
    bucket = "event-time"
    env["s3"].create_bucket(Bucket=bucket)
    app = make_app(env, bucket=bucket, accept_event_time=True)
    with TestClient(app) as client:
        stamped = client.post(
            "/models/toy/predict", json={"records": [record(0), record(1)]},
            headers=AUTH | {"X-Modelops-Event-Time": "2026-11-18T23:30:00-02:00"},  # 01:30 UTC on the 19th
        )  # fmt: skip
        assert stamped.status_code == 200, stamped.text
        plain = client.post("/models/toy/predict", json={"record": record(2)})
        labels = {"labels": [{"request_id": stamped.json()["request_id"], "record_index": 0, "label": 1}]}
        fed = client.post("/models/toy/feedback", json=labels, headers=AUTH | EVENT)
        assert fed.status_code == 202 and fed.json()["received_at"] == "2026-11-18T12:00:00+00:00"
        assert app.state.serving.writer.flush(5.0)
        captured = read_files(env, "capture/toy/", bucket)
        feedback = read_files(env, "feedback/toy/", bucket)
    by_request = {}
    for key, frame in captured.items():
        for request_id, group in frame.groupby("request_id"):
            by_request[request_id] = (key.split("/")[2], group)
    day, rows = by_request[stamped.json()["request_id"]]
    assert day == "dt=2026-11-19" and len(rows) == 2
    assert set(rows["captured_at"]) == {pd.Timestamp("2026-11-19T01:30:00Z")}
    today = dt.datetime.now(dt.UTC).date()
    assert by_request[plain.json()["request_id"]][0] in {f"dt={today}", f"dt={today - dt.timedelta(days=1)}"}
    [(key, frame)] = feedback.items()
    assert key.split("/")[2] == "dt=2026-11-18"
    assert frame["received_at"].tolist() == [pd.Timestamp("2026-11-18T12:00:00Z")]
