"""Daily monitoring on generated churn traffic in moto's S3: drift, quality, labels, decisions, HTML."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from modelops.config import ModelConfig, get_model
from modelops.data.baseline import profile_baseline
from modelops.layout import partition
from modelops.local.datagen import generate_batch
from modelops.monitoring.day_report import monitor_day
from modelops.monitoring.decision import decide
from modelops.monitoring.live_data import collect
from modelops.monitoring.notify import notify_decision
from modelops.monitoring.report import SCHEMA_VERSION, build_report
from modelops.monitoring.report_html import render_report_html
from modelops.monitoring.storage import append_decision, load_decision_history, write_report
from modelops.store import Store
from modelops.training.evaluation import evaluate_model
from modelops.training.pipelines import build_pipeline

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


# --------------------------------------------------------------------------------------------
# Fixtures: a trained churn model, its baseline, moto S3 with capture-format files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return get_model("churn")


@pytest.fixture(scope="module")
def trained(config):
    """A linear churn model on two generated days, its baseline (with predictions) and test metrics."""
    train = pd.concat([generate_batch("churn", day, 1500) for day in TRAIN_DAYS], ignore_index=True)
    X = train[config.feature_names]
    model = build_pipeline(config, "linear").fit(X, train[config.target])
    baseline = profile_baseline(train, config, predictions=model.predict(X))
    test = generate_batch("churn", TEST_DAY, 1000)
    evaluation = evaluate_model(model, test[config.feature_names], test[config.target], config)
    return {"model": model, "baseline": baseline, "evaluation": evaluation}


@pytest.fixture(scope="module")
def store():
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        with mock_aws():
            import boto3

            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            yield Store(bucket=BUCKET, client=client)


@pytest.fixture(scope="module")
def gx_context():
    from modelops.data.validation import make_context

    return make_context()


def _parquet(frame: pd.DataFrame, schema) -> bytes:
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
        store.put_bytes(key, _parquet(captured.iloc[part], capture_schema(config)))
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
        store.put_bytes(key, _parquet(part, feedback_schema(config)))
    return captured


@pytest.fixture(scope="module")
def reports(store, config, trained, gx_context):
    """One monitored day per scenario: ``{name: (report, day_data)}``."""
    model = trained["model"]
    for name, day in DAYS.items():
        if name == "script":
            frame = generate_batch("churn", day, ROWS)
            frame.loc[frame.index[::3], "region"] = MALICIOUS
            write_day(store, config, model, day, frame=frame)
        else:
            write_day(store, config, model, day, scenario=None if name == "normal" else name)
    out = {}
    for name, day in DAYS.items():
        out[name] = monitor_day(
            store,
            config,
            day,
            {"1": trained["baseline"]},
            evaluations=trained["evaluation"],
            baseline_uris={"1": f"s3://{BUCKET}/snapshots/churn/run-1/baseline.json"},
            generated_at=dt.datetime(2024, 3, 20, tzinfo=dt.UTC),
            gx_context=gx_context,
        )
    return out


def drifted(report: dict) -> list[str]:
    return report["verdict"]["drifted_features"]


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def test_normal_day_is_ok_with_a_stable_json_safe_schema(reports, config):
    report, data = reports["normal"]
    assert report["status"] == "ok"
    assert drifted(report) == []
    assert report["data_quality"]["status"] == "ok"
    assert report["performance"]["status"] == "ok"
    assert report["prediction_drift"]["status"] == "ok" and not report["prediction_drift"]["drifted"]
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["main_version"] == "1"
    assert report["rows"] == {
        "captured": ROWS,
        "files": 3,
        "by_version": {"1": ROWS},
        "without_baseline": 0,
        "versions_without_baseline": [],
        "missing_columns": {},
    }
    assert report["links"]["baseline_uri"].endswith("baseline.json")
    assert report["links"]["report_json_key"] == "monitoring/churn/dt=2024-03-01/report.json"
    assert set(report) >= {"model", "day", "served_versions", "verdict", "drift", "histograms", "performance"}
    json.dumps(report, allow_nan=False)  # JSON-safe: no NaN, no numpy
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "no_action" and decision["alerts"] == []


def test_covariate_shift_drifts_monthly_charges_and_requests_a_retrain(reports, config):
    report, _ = reports["covariate_shift"]
    assert report["status"] == "drift"
    assert "monthly_charges" in drifted(report)
    assert drifted(report)[0] == "monthly_charges"  # most severe first
    assert {"plan", "contract", "region"}.isdisjoint(drifted(report))
    histogram = next(h for h in report["histograms"] if h["feature"] == "monthly_charges")
    assert len(histogram["labels"]) == len(histogram["reference"]) == len(histogram["current"])
    assert sum(histogram["current"]) == pytest.approx(1.0)
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "retrain" and decision["triggers"] == ["drift"]
    assert any("monthly_charges" in reason for reason in decision["reasons"])


def test_new_category_drifts_plan_and_breaks_the_allowed_set(reports, config):
    report, _ = reports["new_category"]
    assert "plan" in drifted(report)
    plan = next(f for f in report["drift"]["features"] if f["feature"] == "plan")
    assert "enterprise" in plan["details"]["unseen_categories"]
    violation = next(v for v in report["data_quality"]["violations"] if v["column"] == "plan")
    assert violation["expectation"] == "expect_column_values_to_be_in_set"
    assert "enterprise" in violation["sample_values"]
    assert decide(report, [], config, NOW)["action"] == "retrain"


def test_null_column_is_a_quality_violation_that_alerts_without_retraining(reports, config):
    report, _ = reports["null_column"]
    assert report["status"] == "quality"
    assert drifted(report) == []
    violation = next(v for v in report["data_quality"]["violations"] if v["column"] == "avg_session_minutes")
    assert violation["expectation"] == "expect_column_values_to_not_be_null"
    assert violation["unexpected_percent"] == pytest.approx(100.0)
    session = next(f for f in report["drift"]["features"] if f["feature"] == "avg_session_minutes")
    assert session["status"] == "no_data"  # nothing to compare, so no drift verdict from a broken feed
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "no_action"
    assert [a["kind"] for a in decision["alerts"]] == ["quality"]
    assert any("bad data is not drift" in r for r in decision["reasons"])


def test_a_day_without_capture_files_is_a_no_data_report(store, config, trained):
    day = dt.date(2025, 1, 1)
    data = collect(store, config.name, day, {"1": trained["baseline"]})
    assert data.no_data and data.files == [] and data.main_version is None
    report = build_report(data)
    assert report["status"] == "no_data"
    assert "no captured traffic" in report["verdict"]["messages"][0]
    assert report["drift"] is None and report["performance"] is None
    json.dumps(report, allow_nan=False)
    assert "no_data" in render_report_html(report)
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "no_action" and decision["alerts"] == []


def test_labels_are_joined_from_the_day_and_the_next_day(reports):
    report, data = reports["normal"]
    labels = data.versions["1"].labels
    expected = int(ROWS * LABEL_SHARE)
    # Half of the labels sit in the next day's partition; the next day's partition also holds
    # nothing of other days here, and no capture row is joined twice.
    assert report["labels"]["joined"] == expected == len(labels)
    assert report["labels"]["partitions"] == ["feedback/churn/dt=2024-03-01/", "feedback/churn/dt=2024-03-02/"]
    assert not labels.duplicated(["request_id", "record_index"]).any()
    # Only the small columns travel: keys, prediction, label and the probabilities to score with.
    assert set(labels.columns) == {"request_id", "record_index", "prediction", "label", "probabilities"}
    assert report["performance"]["labels"] == expected


def test_late_and_duplicate_labels(store, config, trained):
    """The last label received for a record wins; labels of other days' requests are not joined."""
    from modelops.serving.capture_schema import feedback_schema

    day = dt.date(2024, 4, 1)
    captured = write_day(store, config, trained["model"], day, rows=300, label_share=0.0, files=1)
    first = captured.iloc[:5]
    rows = [
        (first["request_id"].iloc[0], 0, "1", "2024-04-01T10:00:00Z"),
        (first["request_id"].iloc[0], 0, "0", "2024-04-02T09:00:00Z"),  # correction, a day later
        (first["request_id"].iloc[0], 1, "1", "2024-04-02T09:00:00Z"),
        ("req-from-another-day", 0, "1", "2024-04-02T09:00:00Z"),
    ]
    feedback = pd.DataFrame(rows, columns=["request_id", "record_index", "label", "received_at"])
    feedback["received_at"] = pd.to_datetime(feedback["received_at"], utc=True)
    feedback["model"] = config.name
    store.put_bytes(
        partition("feedback", config.name, day) + "extra-a.parquet",
        _parquet(feedback.iloc[:1], feedback_schema(config)),
    )
    store.put_bytes(
        partition("feedback", config.name, day + dt.timedelta(days=1)) + "extra-b.parquet",
        _parquet(feedback.iloc[1:], feedback_schema(config)),
    )
    data = collect(store, config.name, day, {"1": trained["baseline"]})
    labels = data.versions["1"].labels.set_index(["request_id", "record_index"])["label"].to_dict()
    assert labels == {(first["request_id"].iloc[0], 0): "0", (first["request_id"].iloc[0], 1): "1"}
    assert data.duplicate_labels == 1 and data.labels_received == 4


def test_concept_shift_with_labels_degrades_performance(reports, config, trained):
    report, _ = reports["concept_shift"]
    performance = report["performance"]
    assert drifted(report) == []  # the features did not move, the concept did
    assert performance["status"] == "degraded" and performance["degraded"]
    assert performance["primary_metric"] == "roc_auc"
    assert performance["reference"]["primary"] == pytest.approx(trained["evaluation"]["primary"])
    assert performance["primary_drop"] > performance["tolerance"] >= config.gate.tolerance
    assert report["status"] == "performance"
    decision = decide(report, [], config, NOW)
    assert decision["action"] == "retrain" and decision["triggers"] == ["performance"]
    # On the normal day the same scorers agree with the test metrics within the tolerance.
    normal = reports["normal"][0]["performance"]
    assert abs(normal["primary_drop"]) < normal["tolerance"]
    assert set(normal["metrics"]) == {"roc_auc", "f1", "accuracy", "log_loss"}


# --------------------------------------------------------------------------------------------
# Versions, bounded state, sampling
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def test_html_is_self_contained_shows_the_verdict_and_escapes_values(reports):
    report, _ = reports["script"]
    assert "region" in drifted(report)
    page = render_report_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert 'class="badge s-drift">drift</span>' in page
    assert page.index("badge") < page.index("<h2>Drift</h2>")  # verdict first
    assert "<svg" in page and "monthly_charges" not in drifted(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "<link" not in page and "src=" not in page  # no external assets
    covariate = render_report_html(reports["covariate_shift"][0])
    assert covariate.count("<svg") == len(reports["covariate_shift"][0]["histograms"]) >= 1
    assert covariate.index("monthly_charges") < covariate.index("support_calls")  # sorted by drift


# --------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------


def _retrain(day: str, at: dt.datetime) -> dict:
    return {"day": day, "action": "retrain", "at": at.isoformat()}


def test_decide_honours_the_cooldown(reports, config):
    report, _ = reports["covariate_shift"]
    recent = [_retrain("2024-03-02", NOW - dt.timedelta(hours=config.drift.cooldown_hours - 1))]
    decision = decide(report, recent, config, NOW)
    assert decision["action"] == "no_action" and decision["suppressed_by"] == "cooldown"
    assert {a["kind"] for a in decision["alerts"]} >= {"drift", "suppressed"}  # still alerted
    older = [_retrain("2024-03-01", NOW - dt.timedelta(hours=config.drift.cooldown_hours + 1))]
    assert decide(report, older, config, NOW)["action"] == "retrain"
    # A backfill deciding an older day sees later requests as recent: no burst of retrains.
    later = [_retrain("2024-03-25", NOW + dt.timedelta(days=5))]
    assert decide(report, later, config, NOW)["suppressed_by"] == "cooldown"


def test_decide_honours_the_budget_per_window(reports, config):
    report, _ = reports["covariate_shift"]
    spec = config.drift
    budget = [
        _retrain(f"2024-03-{10 + i}", NOW - dt.timedelta(days=2 + i)) for i in range(spec.max_retrains_per_window)
    ]
    decision = decide(report, budget, config, NOW)
    assert decision["action"] == "no_action" and decision["suppressed_by"] == "budget"
    assert decision["retrains_in_window"] == spec.max_retrains_per_window
    outside = [_retrain("2024-03-01", NOW - dt.timedelta(days=spec.retrain_window_days, hours=1)), *budget[1:]]
    assert decide(report, outside, config, NOW)["action"] == "retrain"
    no_budget = config.model_copy(update={"drift": spec.model_copy(update={"max_retrains_per_window": 0})})
    assert decide(report, [], no_budget, NOW)["suppressed_by"] == "budget"


def test_decide_is_idempotent_per_day(reports, config):
    report, _ = reports["covariate_shift"]
    first = decide(report, [], config, NOW)
    assert first["action"] == "retrain" and not first["already_requested"]
    later = NOW + dt.timedelta(hours=3)
    again = decide(report, [first], config, later)
    assert again["action"] == "retrain" and again["already_requested"] is True
    assert again["requested_at"] == first["requested_at"]  # the cooldown stays anchored on the first request
    # Even if a re-run sees less (e.g. a report rebuilt differently), the day's request stands.
    calm = decide(reports["normal"][0] | {"day": report["day"]}, [first], config, later)
    assert calm["action"] == "retrain" and calm["already_requested"]
    # A no_action entry of the same day does not block a new verdict for that day.
    assert decide(report, [{**first, "action": "no_action"}], config, later)["already_requested"] is False


# --------------------------------------------------------------------------------------------
# Storage and alerts
# --------------------------------------------------------------------------------------------


def test_reports_and_decisions_are_stored_per_day_and_overwritten(store, reports, config):
    report, _ = reports["covariate_shift"]
    html_text = render_report_html(report)
    uris = write_report(store, config.name, report["day"], report, html_text)
    assert uris["report_json"] == f"s3://{BUCKET}/monitoring/churn/dt=2024-03-03/report.json"
    write_report(store, config.name, report["day"], report, html_text)  # re-run: same keys
    keys = [o.key for o in store.list("monitoring/churn/dt=2024-03-03/")]
    assert keys == ["monitoring/churn/dt=2024-03-03/report.html", "monitoring/churn/dt=2024-03-03/report.json"]
    assert store.get_json(keys[1]) == report

    assert load_decision_history(store, "churn") == []
    first = decide(report, [], config, NOW)
    append_decision(store, "churn", first)
    history = load_decision_history(store, "churn")
    again = decide(report, history, config, NOW + dt.timedelta(hours=1))
    append_decision(store, "churn", again)
    other = decide(reports["normal"][0], history, config, NOW)
    append_decision(store, "churn", other)
    history = load_decision_history(store, "churn")
    assert [(d["day"], d["action"]) for d in history] == [("2024-03-01", "no_action"), ("2024-03-03", "retrain")]
    assert history[1]["already_requested"] is True
    assert load_decision_history(store, "churn", since="2024-03-02") == [history[1]]


def test_alert_logs_posts_and_never_raises(reports, config, caplog):
    decision = decide(reports["null_column"][0], [], config, NOW)
    hooked = config.model_copy(
        update={"drift": config.drift.model_copy(update={"alert_webhook": "https://hooks.example/secret-path"})}
    )
    sent = []
    with caplog.at_level(logging.WARNING, logger="modelops.monitoring.notify"):
        outcome = notify_decision(
            decision, hooked, post=lambda url, payload, timeout: sent.append((url, payload, timeout))
        )
    assert outcome["webhook"] == "sent" and outcome["logged"] == 1
    assert any(r.levelno == logging.WARNING and "quality" in r.getMessage() for r in caplog.records)
    url, payload, timeout = sent[0]
    assert payload["action"] == "no_action" and payload["alerts"][0]["kind"] == "quality"
    assert timeout <= 10
    json.dumps(payload)

    def failing(url, payload, timeout):
        raise TimeoutError("timed out")

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="modelops.monitoring.notify"):
        assert notify_decision(decision, hooked, post=failing)["webhook"] == "failed"
    assert "secret-path" not in caplog.text and "hooks.example" in caplog.text
    assert notify_decision(decision, hooked, post=lambda *a: 500)["webhook"] == "failed"
    assert notify_decision(decision, config, post=failing)["webhook"] == "not_configured"
    assert notify_decision({**decision, "alerts": []}, hooked, post=failing)["webhook"] == "skipped"
    assert notify_decision({"broken": object()}, hooked, post=failing)["webhook"] in {"skipped", "failed"}


def test_decide_accepts_airflows_pendulum_datetimes(reports, config):
    """Airflow hands tasks pendulum DateTimes; their timedelta arithmetic drops tzinfo."""
    import pendulum

    report, _ = reports["covariate_shift"]
    now = pendulum.instance(NOW)
    recent = [_retrain("2024-03-02", NOW - dt.timedelta(hours=config.drift.cooldown_hours - 1))]
    assert decide(report, recent, config, now)["suppressed_by"] == "cooldown"


def test_a_24h_cooldown_holds_back_the_next_daily_request(reports, config):
    """Daily runs are exactly 24 h apart: the cooldown includes its end, so drift on three days in
    a row asks on day 1, is held back on day 2 (24 h after) and asks again on day 3 (48 h after)."""
    assert config.drift.cooldown_hours == 24
    report, _ = reports["covariate_shift"]
    history: list[dict] = []
    actions = []
    for offset in range(3):
        now = NOW + dt.timedelta(days=offset)
        day = (now - dt.timedelta(days=1)).date().isoformat()
        decision = decide({**report, "day": day}, history, config, now)
        actions.append((decision["action"], decision["suppressed_by"]))
        history.append(decision)
    assert actions == [("retrain", None), ("no_action", "cooldown"), ("retrain", None)]
