"""The Models pages' data layer (modelops.ui.reads) on moto's S3 and a fake registry, filled by
the platform's own writers (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from modelops.layout import evaluation_key
from modelops.ui import reads
from modelops.ui.cache import CachedReads, LruCache, decision_fields

RUN_1 = "scheduled__2026-11-01T00:00:00+00:00"
RUN_2 = "manual__2026-11-08T10:00:00+00:00"


def airflow(runs: dict[str, list[dict]]):
    """``runs(dag_id)`` as the plugin passes it (Airflow's DB), from a fixed table."""
    return lambda dag_id: runs.get(dag_id, [])


def by_model(result: dict) -> dict[str, dict]:
    return {row["model"]: row for row in result["models"]}


def test_overview_rows_promoted_refused_failed_and_without_champion(world, day_reports):
    world.retrain_run("churn", RUN_1, 0.82)
    world.retrain_run("fraud", RUN_1, 0.83)
    world.retrain_run("fraud", RUN_2, 0.65)  # below the floor 0.70 and worse than the champion
    world.write_reports(
        "churn", {world.today - dt.timedelta(days=1): day_reports["ok"], world.today: day_reports["drift"]}
    )
    failed = {
        "run_id": RUN_2,
        "state": "failed",
        "start_date": "2026-11-08T10:00:00Z",
        "end_date": "2026-11-08T10:05:00Z",
    }
    runs = airflow({"retrain_broken": [failed], "retrain_churn": [{"run_id": RUN_1, "state": "success"}]})

    result = reads.overview(**world.pages(), runs=runs, today=world.today)

    rows = by_model(result)
    assert sorted(rows) == ["broken", "churn", "fraud", "fresh"]
    churn, fraud, broken, fresh = (rows[name] for name in ("churn", "fraud", "broken", "fresh"))
    assert churn["champion"]["version"] == "1" and churn["champion"]["metric"] == 0.82
    assert churn["champion"]["since"] is not None
    assert churn["last_retrain"]["outcome"] == "promoted" and churn["last_retrain"]["run_id"] == RUN_1
    assert churn["monitoring"] == {"day": world.today.isoformat(), "status": day_reports["drift"]["status"]}
    assert churn["monitoring"]["status"] == "performance"
    assert (churn["problem_type"], churn["primary_metric"]) == ("binary_classification", "roc_auc")

    assert fraud["champion"]["version"] == "1" and fraud["champion"]["metric"] == 0.83
    assert fraud["last_retrain"]["outcome"] == "kept_champion" and fraud["last_retrain"]["run_id"] == RUN_2
    assert fraud["last_retrain"]["reason"].startswith("Do not promote linear: 2 of")
    assert "primary_floor" in fraud["last_retrain"]["reason"]

    assert broken["champion"] is None
    assert broken["last_retrain"]["outcome"] == "failed" and broken["last_retrain"]["run_id"] == RUN_2
    assert "failed" in broken["last_retrain"]["reason"]
    assert broken["last_retrain"]["at"] == "2026-11-08T10:05:00+00:00"

    assert fresh == {
        "model": "fresh", "problem_type": "binary_classification", "primary_metric": "roc_auc", "champion": None,
        "last_retrain": None, "monitoring": None, "dead_letters": 0, "quarantined_7d": 0,
    }  # fmt: skip
    json.dumps(result, allow_nan=False)  # JSON-safe


def test_invalid_declaration_is_listed_with_its_error(world):
    result = reads.overview(**world.pages(), today=world.today)

    assert [item["file"] for item in result["invalid"]] == ["bad.yaml"]
    assert "metrics.primary" in result["invalid"][0]["error"] and "rmse" in result["invalid"][0]["error"]
    assert "bad" not in by_model(result)


def test_dead_letters_and_quarantine_counts_honour_status_and_the_7_day_window(world):
    world.dead_letter("churn", "m1", "ValueError: not a CSV")
    world.dead_letter("churn", "m2", "KeyError: plan")
    world.dead_letter("churn", "m3", "fixed", status="redriven")
    inside = [
        world.quarantine("churn", world.today, "a.csv"),
        world.quarantine("churn", world.today - dt.timedelta(days=6), "b.csv"),
    ]
    world.quarantine("churn", world.today - dt.timedelta(days=7), "old.csv")
    world.quarantine("churn", world.today + dt.timedelta(days=1), "future.csv")

    row = by_model(reads.overview(**world.pages(), today=world.today))["churn"]
    page = reads.model_page("churn", **world.pages(), today=world.today)

    assert (row["dead_letters"], row["quarantined_7d"]) == (2, 2)
    assert [d["message_id"] for d in page["dead_letters"]] == ["m1", "m2"]
    assert page["dead_letters"][0]["reason"] == "ValueError: not a CSV"
    assert page["dead_letters"][0]["key"] == "raw/churn/dt=2026-11-20/m1.csv"
    assert [q["key"] for q in page["quarantined"]] == inside  # newest first, no report files
    first = page["quarantined"][0]
    assert first["day"] == "2026-11-20" and first["reason"] == "expect_column_values_to_not_be_null (plan)"
    assert first["report"] == first["key"] + ".validation.html"


def test_timeline_newest_first_with_both_metrics_and_links(world):
    world.retrain_run("fraud", RUN_1, 0.83)
    world.retrain_run("fraud", RUN_2, 0.65)
    world.store.client.delete_object(Bucket=world.store.bucket, Key=evaluation_key("fraud", RUN_2))
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    running = {"run_id": "manual__later", "state": "running", "start_date": now.isoformat()}
    runs = airflow({"retrain_fraud": [running, {"run_id": RUN_2, "state": "success"}]})

    page = reads.model_page("fraud", **world.pages(), runs=runs, mlflow_ui="http://mlflow:5000/", today=world.today)

    timeline = page["timeline"]
    assert [(e["run_id"], e["outcome"]) for e in timeline] == [
        ("manual__later", "running"), (RUN_2, "kept_champion"), (RUN_1, "promoted"),
    ]  # fmt: skip
    refused, promoted = timeline[1], timeline[2]
    assert refused["candidate"] == {"name": "linear", "metric": 0.65, "version": None}
    assert refused["champion"] == {"version": "1", "metric": 0.8}
    assert refused["reasons"][0].startswith("Do not promote linear")
    assert promoted["candidate"] == {"name": "linear", "metric": 0.83, "version": "1"}
    assert promoted["champion"] == {"version": None, "metric": None}
    quoted = "manual__2026-11-08T10%3A00%3A00%2B00%3A00"
    assert refused["links"] == {
        "airflow_run": f"/dags/retrain_fraud/runs/{quoted}",
        "mlflow_run": f"http://mlflow:5000/#/experiments/{world.experiment_id}/runs/candidate-{RUN_2}",
        "mlflow_version": None,
        "data_docs": f"models/fraud/runs/{quoted}/data-docs",
        "evaluation": None,  # deleted above: no link to a missing object
    }
    assert promoted["links"]["mlflow_version"] == "http://mlflow:5000/#/models/fraud/versions/1"
    assert timeline[0]["links"]["data_docs"] is None and timeline[0]["candidate"]["metric"] is None
    assert page["metric_by_version"] == [{"version": "1", "value": 0.83, "at": "2026-11-01T01:00:00+00:00"}]


def test_alias_history_newest_first_with_the_rollback_marked(world):
    world.retrain_run("churn", RUN_1, 0.82)
    world.retrain_run("churn", RUN_2, 0.85)
    event = world.roll_back("churn")

    page = reads.model_page("churn", **world.pages(), today=world.today)

    moves = [(a["alias"], a["from_version"], a["to_version"], a["rollback"]) for a in page["aliases"]]
    assert moves == [
        ("champion", "2", "1", True),
        ("champion", "1", "2", False),
        ("previous-champion", None, "1", False),
        ("champion", None, "1", False),
    ]
    assert page["aliases"][0]["actor"] == "alice via rollback_churn" and page["aliases"][0]["run_id"] == "manual__rb"
    assert page["aliases"][0]["reason"] == "rollback: bad answers"
    assert page["champion"] == {"version": "1", "since": event["at"], "metric": 0.82}
    assert [v["value"] for v in page["metric_by_version"]] == [0.82, 0.85]


def test_days_and_heatmap_cells_are_effect_size_over_threshold(world, day_reports):
    yesterday = world.today - dt.timedelta(days=1)
    world.write_reports("churn", {world.today: day_reports["drift"], yesterday: day_reports["ok"]})

    page = reads.model_page("churn", **world.pages(), today=world.today)

    heatmap = page["heatmap"]
    assert heatmap["features"] == world.config["churn"].feature_names  # as declared, not by severity
    assert heatmap["days"] == [yesterday.isoformat(), world.today.isoformat()]
    stored = {f["feature"]: f for f in day_reports["drift"]["drift"]["features"]}
    expected = [
        None if stored[f]["effect_size"] is None else stored[f]["effect_size"] / stored[f]["effect_threshold"]
        for f in heatmap["features"]
    ]
    assert [row[1] for row in heatmap["cells"]] == pytest.approx(expected)
    charges = heatmap["features"].index("monthly_charges")
    assert heatmap["cells"][charges][1] > 1 > heatmap["cells"][charges][0]
    assert heatmap["cells"][heatmap["features"].index("total_charges")][1] is None  # all missing that day
    today = page["days"][1]
    assert (today["day"], today["status"], today["rows"]) == (world.today.isoformat(), "performance", 400)
    assert today["performance"]["value"] == pytest.approx(day_reports["drift"]["performance"]["primary"])
    assert today["performance"]["reference"] == 0.8 and today["performance"]["status"] == "degraded"
    assert today["prediction_drift"]["drifted"] is True and today["prediction_drift"]["ratio"] >= 1
    assert page["days"][0]["performance"]["status"] == "insufficient_labels"
    assert page["days"][0]["performance"]["value"] is None


def test_a_second_page_reads_no_unchanged_object_and_rereads_a_changed_one(world, day_reports):
    world.retrain_run("churn", RUN_1, 0.82)
    world.write_reports("churn", {world.today - dt.timedelta(days=n): day_reports["ok"] for n in range(5)})
    world.quarantine("churn", world.today, "a.csv")
    world.dead_letter("churn", "m1", "boom")
    store = world.store

    store.calls.clear()
    first = reads.model_page("churn", **world.pages(), today=world.today)
    assert dict(store.calls) == {"list": 6, "get": 9}  # record, history, 5 reports, a validation report, a dead letter
    store.calls.clear()
    second = reads.model_page("churn", **world.pages(), today=world.today)
    assert second == first
    assert store.calls["get"] == 0 and store.calls["head"] == 0
    assert store.calls["list"] == 6  # decisions, alias history, snapshots, monitoring, dead letters, quarantine

    world.write_reports("churn", {world.today: day_reports["drift"]})  # a re-run of today's monitor
    store.calls.clear()
    third = reads.model_page("churn", **world.pages(), today=world.today)
    assert store.calls["get"] == 1
    assert third["days"][-1]["status"] == "performance" and first["days"][-1]["status"] == "ok"


def test_validation_report_serves_only_report_keys_of_the_model(world):
    key = world.quarantine("churn", world.today, "a.csv")

    body, content_type = reads.validation_report("churn", key + ".validation.json", store=world.store)
    assert json.loads(body)["verdict"] == "quarantined" and content_type == "application/json"
    assert reads.validation_report("churn", key + ".validation.html", store=world.store)[1].startswith("text/html")
    with pytest.raises(KeyError, match="no validation report"):
        reads.validation_report("churn", "ingest/churn/reports/dt=2026-11-20/x.csv.validation.html", store=world.store)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("quarantine/fraud/dt=2026-11-20/a.csv.validation.json", "is not under"),
        ("raw/churn/dt=2026-11-20/a.csv", "is not under"),
        ("quarantine/churn/../../decisions/churn/x.validation.json", "is not under"),
        ("ingest/churn/results/abc.validation.json", "is not under"),
        ("quarantine/churn/dt=2026-11-20/a.csv", "is not a validation report"),
        ("ingest/churn/reports/dt=2026-11-20/a.csv.validation.txt", "is not a validation report"),
    ],
)
def test_validation_report_refuses_other_keys(key, problem):
    with pytest.raises(ValueError, match=problem):
        reads.validation_report("churn", key, store=None)  # refused before any store is made


def test_artifacts_and_reports_by_kind(world, day_reports):
    world.retrain_run("churn", RUN_1, 0.82)
    world.write_reports("churn", {world.today: day_reports["ok"]})

    body, content_type = reads.artifact("churn", RUN_1, "evaluation", store=world.store)
    assert json.loads(body)["candidate"]["primary"] == 0.82 and content_type == "application/json"
    assert reads.artifact("churn", RUN_1, "data-docs", store=world.store) == (b"<html>data docs</html>", reads.HTML)
    assert reads.report("churn", world.today.isoformat(), "html", store=world.store)[0] == b"<html>report</html>"
    assert json.loads(reads.report("churn", world.today, "json", store=world.store)[0])["status"] == "ok"
    with pytest.raises(KeyError):
        reads.artifact("churn", "manual__other", "evaluation", store=world.store)
    with pytest.raises(KeyError):
        reads.report("churn", "2026-01-01", "json", store=world.store)
    with pytest.raises(ValueError, match="kind"):
        reads.artifact("churn", RUN_1, "model", store=world.store)
    with pytest.raises(ValueError, match="day"):
        reads.report("churn", "yesterday", "json", store=world.store)
    with pytest.raises(ValueError, match="model"):
        reads.artifact("../churn", RUN_1, "evaluation", store=world.store)


def test_an_undeclared_model_has_no_page(world):
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        reads.model_page("nope", **world.pages())


@pytest.mark.parametrize(
    ("record", "state", "outcome"),
    [
        (None, "running", "running"),
        (None, "queued", "running"),
        (None, "failed", "failed"),
        (None, "success", "kept_champion"),  # an empty training window ends the run early
        ({"promote": True, "dry_run": True}, "success", "dry_run"),
        ({"promote": False}, "failed", "kept_champion"),
        ({"promote": True}, "running", "running"),
        ({"promote": True}, "failed", "failed"),
        ({"promote": True, "promotion": {"promoted": True}}, "success", "promoted"),
        ({"promote": True, "promotion": {}, "rollback": {}, "smoke_test": {"error": "503"}}, "failed", "failed"),
    ],
)
def test_retrain_outcome(record, state, outcome):
    condensed = decision_fields({"reasons": ["why"], **record}) if record is not None else None
    got, reasons = reads.retrain_outcome(condensed, state)
    assert got == outcome and reasons
    if record and "rollback" in record:
        assert reasons[0] == "deployed, then rolled back: 503"


def test_cache_evicts_the_least_recently_used_and_is_thread_safe(store):
    cache = LruCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # "b" was used least recently
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)

    shared = LruCache(max_entries=50)
    workers = [threading.Thread(target=lambda n=n: [shared.put((n, i), i) for i in range(500)]) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(shared) == 50

    etag = store.put_json("x.json", {"a": 1})
    view = CachedReads(store, LruCache()).condensing(lambda value: value["a"])
    assert [info.etag for info in view.list("x.json")] == [etag]
    assert (view.get_json("x.json"), view.get_json("x.json")) == (1, 1)
    assert store.calls["get"] == 1
