"""retrain_<model> through Airflow's REST API on the running stack: promotion with lineage,
idempotent re-runs, the gate, bad batches left out, empty windows, approval, dry runs and backfill windows.

Runs of one DAG execute one at a time (max_active_runs=1), so the tests trigger what they can
at once and then wait. Past-dated runs (logical_date in 2025) read only batches the test wrote
into their window, which is how a backfill sees only the data up to its date.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from pathlib import Path

import pytest

from modelops import batches, registry
from modelops.config import get_model
from modelops.layout import decision_record_key as decision_key
from modelops.layout import partition, snapshot_key
from modelops.local import datagen

CHURN = "retrain_churn"
REPO = Path(__file__).resolve().parents[2]


def _wait(airflow, dag_id, run_id, timeout=900):
    run = airflow.wait_for_run(dag_id, run_id, timeout=timeout)
    return run


def _write_days(store, model, first: dt.date, days: int, *, transform=None, rows: int = 600) -> list[str]:
    keys = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        frame = datagen.generate_batch(model.data.generator, day, rows)
        body = transform(frame, day) if transform else frame
        data = body if isinstance(body, bytes) else batches.to_csv_bytes(body)
        key = f"{partition('raw', model.name, day)}{model.name}-{day.isoformat()}.csv"
        store.put_bytes(key, data, "text/csv")
        keys.append(key)
    return keys


def _keys(store, prefix):
    return sorted((o.key, o.etag) for o in store.list(prefix))


def test_first_run_promotes_with_lineage(first_promotion, airflow, store, mlflow_client):
    run_id = first_promotion["dag_run_id"]
    states = airflow.task_states(CHURN, run_id)
    assert {states[f"train_candidates[{i}]"] for i in range(3)} == {"success"}
    assert states["promote"] == "success" and states["approve_promotion"] == "skipped"

    manifest = store.get_json(snapshot_key("churn", run_id))
    assert manifest["rows"] > 0 and len(manifest["objects"]) == get_model("churn").training.window_days
    last_day = dt.date.fromisoformat(manifest["window"]["last_day"])
    assert all(dt.date.fromisoformat(o["day"]) <= last_day for o in manifest["objects"])

    decision = store.get_json(decision_key("churn", run_id))
    assert decision["promote"] is True and decision["registered_version"]
    assert decision["promotion"]["promoted"] is True

    # Later tests (monitoring's retrain request) may have promoted newer versions since.
    champion = mlflow_client.get_model_version("churn", decision["registered_version"])
    tags = champion.tags
    for tag in (
        "dataset_hash",
        "manifest_uri",
        "gx_result_uri",
        "baseline_uri",
        "decision_uri",
        "airflow_dag_id",
        "airflow_run_id",
    ):
        assert tags.get(tag), f"version {champion.version} lacks lineage tag {tag}"
    assert tags["dataset_hash"] == manifest["dataset_hash"]
    # What trained it: the checkout's commit (the image's, in the compose stack), the hashes of the
    # declaration and suite, and the library versions (modelops.versioning).
    from modelops import versioning

    churn = get_model("churn")
    # A commit of this checkout (HEAD may have moved since the run trained, on a developer's machine).
    commit = tags["modelops.code_version"].removesuffix("-dirty")
    assert re.fullmatch(r"[0-9a-f]{40}", commit), tags["modelops.code_version"]
    assert subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO).returncode == 0
    assert tags["modelops.declaration_sha256"] == versioning.declaration_hash(churn)
    assert tags["modelops.suite_sha256"] == versioning.suite_hash(churn) != "none"
    assert tags["modelops.sklearn_version"] == versioning.library_versions()["scikit-learn"]
    assert tags["airflow_run_id"] == run_id
    for uri in (tags["manifest_uri"], tags["gx_result_uri"], tags["baseline_uri"], tags["decision_uri"]):
        assert store.exists(store.key_of(uri)), uri
    assert store.exists(store.key_of(tags["gx_result_uri"]).replace(".json", ".html"))
    artifacts = [a.path for a in mlflow_client.list_artifacts(champion.run_id, "baseline")]
    assert "baseline/baseline.json" in artifacts

    parent = mlflow_client.search_runs(
        [mlflow_client.get_run(champion.run_id).info.experiment_id],
        f"tags.airflow_run_id = '{run_id}' and tags.modelops_role = 'retrain'",
    )
    children = mlflow_client.search_runs(
        [parent[0].info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent[0].info.run_id}'"
    )
    assert sorted(c.data.tags["candidate"] for c in children) == ["hist_gradient_boosting", "linear", "random_forest"]
    history = registry.alias_history("churn", store)
    assert any(
        e["alias"] == "champion" and e["to_version"] == champion.version and e["airflow_run_id"] == run_id
        for e in history
    )


def test_clearing_the_whole_run_adds_no_version_and_no_objects(first_promotion, airflow, store, mlflow_client):
    run_id = first_promotion["dag_run_id"]
    versions_before = {v.version for v in mlflow_client.search_model_versions("name = 'churn'")}
    objects_before = _keys(store, "snapshots/churn/") + _keys(store, "decisions/churn/")
    experiment = mlflow_client.get_experiment_by_name("modelops/churn")
    runs_before = len(mlflow_client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{run_id}'"))
    history_before = len(registry.alias_history("churn", store))

    airflow.clear_run(CHURN, run_id)
    again = _wait(airflow, CHURN, run_id)
    assert again["state"] == "success", airflow.failure_logs(CHURN, run_id)

    assert {v.version for v in mlflow_client.search_model_versions("name = 'churn'")} == versions_before
    assert [k for k, _ in _keys(store, "snapshots/churn/") + _keys(store, "decisions/churn/")] == [
        k for k, _ in objects_before
    ]
    assert (
        len(mlflow_client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{run_id}'")) == runs_before
    )
    assert len(registry.alias_history("churn", store)) == history_before, "a re-run moved an alias again"


def test_approval_holds_promotion_and_runs_never_overlap(first_promotion, airflow, store, mlflow_client):
    champion_before = mlflow_client.get_model_version_by_alias("churn", "champion").version
    held = airflow.trigger(CHURN, {"require_approval": True})["dag_run_id"]
    dry = airflow.trigger(CHURN, {"dry_run": True})["dag_run_id"]

    deadline = time.monotonic() + 600
    while airflow.task_states(CHURN, held).get("approve_promotion") not in {"deferred", "awaiting_input"}:
        assert airflow.run(CHURN, held)["state"] in {"queued", "running"}, airflow.failure_logs(CHURN, held)
        assert time.monotonic() < deadline, "approval task never started waiting"
        time.sleep(2)
    # Held for a human: nothing promoted yet, and the second run has not started.
    assert mlflow_client.get_model_version_by_alias("churn", "champion").version == champion_before
    assert airflow.run(CHURN, dry)["state"] == "queued"
    challenger = mlflow_client.get_model_version_by_alias("churn", "challenger").version

    airflow.approve(CHURN, held, "approve_promotion")
    assert _wait(airflow, CHURN, held)["state"] == "success", airflow.failure_logs(CHURN, held)
    assert mlflow_client.get_model_version_by_alias("churn", "champion").version == challenger
    assert mlflow_client.get_model_version_by_alias("churn", "previous-champion").version == champion_before

    versions = {v.version for v in mlflow_client.search_model_versions("name = 'churn'")}
    finished = _wait(airflow, CHURN, dry)
    assert finished["state"] == "success", airflow.failure_logs(CHURN, dry)
    states = airflow.task_states(CHURN, dry)
    assert states["gate"] == "success" and states["register"] == "skipped" and states["promote"] == "skipped"
    assert {v.version for v in mlflow_client.search_model_versions("name = 'churn'")} == versions
    decision = store.get_json(decision_key("churn", dry))
    assert decision["dry_run"] is True and decision["champion_version_compared"] == challenger


def test_promotion_refuses_a_stale_comparison(first_promotion, store, mlflow_client):
    """The guard behind max_active_runs: a champion moved since the gate's comparison wins."""
    champion = registry.version_for_alias("churn", registry.CHAMPION)
    other = next(
        v.version for v in mlflow_client.search_model_versions("name = 'churn'") if v.version != champion.version
    )
    with pytest.raises(registry.ChampionChanged, match="promotion refused"):
        registry.promote(
            "churn", other, expected_champion=str(int(champion.version) + 100),
            reason="test", actor="test", run_id="stale", store=store,
        )  # fmt: skip
    assert registry.version_for_alias("churn", registry.CHAMPION).version == champion.version


CORRUPTIONS = {
    # kind -> (first day of its private window, expected words in the failure)
    "nulls_in_required": (dt.date(2025, 2, 1), "expect_column_values_to_not_be_null"),
    "unit_change": (dt.date(2025, 3, 1), "expect_column_values_to_be_between"),
    "new_column": (dt.date(2025, 4, 1), "expect_table_columns_to_match_set"),
    "truncated_file": (dt.date(2025, 5, 1), "truncated"),
}


def test_corrupted_batches_are_excluded_from_training(first_promotion, airflow, store, mlflow_client):
    """Each bad file is judged on its own: left out, named in the manifest and the decision record,
    and the run trains on the rest (a single-class file next to a clean one on the same day too)."""
    model = get_model("churn")
    champion = mlflow_client.get_model_version_by_alias("churn", "champion").version
    runs, bad_keys = {}, {}
    for kind, (first, _) in CORRUPTIONS.items():
        _write_days(store, model, first, 4)
        bad_day = first + dt.timedelta(days=4)
        bad_keys[kind] = _write_days(
            store, model, bad_day, 1, transform=lambda frame, day, kind=kind: datagen.corrupt_batch(frame, kind)
        )
        if kind == "nulls_in_required":  # a single-class file on a day that also has a clean file
            single = datagen.generate_batch(model.data.generator, first, 600)
            single[model.target] = single[model.target].iloc[0]
            key = f"{partition('raw', model.name, first)}{model.name}-{first.isoformat()}-single.csv"
            store.put_bytes(key, batches.to_csv_bytes(single), "text/csv")
            bad_keys[kind] = sorted([*bad_keys[kind], key])
        as_of = dt.datetime.combine(bad_day + dt.timedelta(days=1), dt.time(), dt.UTC)
        conf = {"training_window_days": 5, "dry_run": True, "candidates": [model.training.candidates[0]]}
        runs[kind] = airflow.trigger(CHURN, conf, logical_date=as_of.isoformat())["dag_run_id"]
    for kind, run_id in runs.items():
        finished = _wait(airflow, CHURN, run_id)
        assert finished["state"] == "success", airflow.failure_logs(CHURN, run_id)
        manifest = store.get_json(snapshot_key("churn", run_id))
        excluded = {e["key"]: e for e in manifest["excluded"]}
        assert sorted(excluded) == bad_keys[kind], f"{kind}: {manifest['excluded']}"
        assert not set(excluded) & {o["key"] for o in manifest["objects"]}
        corrupt = excluded[bad_keys[kind][0] if kind != "nulls_in_required" else max(bad_keys[kind])]
        assert CORRUPTIONS[kind][1] in " ".join(corrupt["failed_expectations"]) + corrupt["reason"], corrupt
        decision = store.get_json(decision_key("churn", run_id))
        assert sorted(e["key"] for e in decision["evidence"]["excluded_batches"]) == bad_keys[kind]
    assert mlflow_client.get_model_version_by_alias("churn", "champion").version == champion


def test_empty_window_is_nothing_to_train(first_promotion, airflow):
    as_of = dt.datetime(2024, 1, 10, tzinfo=dt.UTC)  # no data this early
    run_id = airflow.trigger(CHURN, {"training_window_days": 3}, logical_date=as_of.isoformat())["dag_run_id"]
    finished = _wait(airflow, CHURN, run_id)
    assert finished["state"] == "success", airflow.failure_logs(CHURN, run_id)
    states = airflow.task_states(CHURN, run_id)
    assert states["snapshot_training_data"] == "success", states
    assert states["validate_training_data"] == "skipped" and states["start_tracking"] == "skipped", states
    assert states.get("train_candidates", "skipped") == "skipped" and states["promote"] == "skipped", states
    assert states["deploy"] == "skipped", states
    assert "nothing to train in window 2024-01-07..2024-01-09" in airflow.task_log(
        CHURN, run_id, "validate_training_data"
    )


def test_shuffled_labels_are_never_promoted(first_promotion, airflow, store, mlflow_client):
    model = get_model("churn")
    first = dt.date(2025, 6, 1)

    def shuffle(frame, day):
        shuffled = frame.copy()
        shuffled[model.target] = frame[model.target].sample(frac=1.0, random_state=day.toordinal()).to_numpy()
        return shuffled

    _write_days(store, model, first, 10, transform=shuffle, rows=800)
    champion = mlflow_client.get_model_version_by_alias("churn", "champion").version
    as_of = dt.datetime.combine(first + dt.timedelta(days=10), dt.time(), dt.UTC)
    run_id = airflow.trigger(CHURN, {"training_window_days": 10}, logical_date=as_of.isoformat())["dag_run_id"]
    finished = _wait(airflow, CHURN, run_id)
    assert finished["state"] == "success", airflow.failure_logs(CHURN, run_id)
    decision = store.get_json(decision_key("churn", run_id))
    assert decision["promote"] is False
    assert "primary_floor" in decision["failed_checks"] or "training_rules" in decision["failed_checks"]
    assert airflow.task_states(CHURN, run_id)["register"] == "skipped"
    assert mlflow_client.get_model_version_by_alias("churn", "champion").version == champion
    manifest = store.get_json(snapshot_key("churn", run_id))
    assert manifest["window"] == {"first_day": "2025-06-01", "last_day": "2025-06-10", "days": 10}


def test_regression_model_trains_and_promotes(airflow, store, mlflow_client):
    run = airflow.run_and_wait("retrain_delivery_time", timeout=900)
    assert run["state"] == "success", airflow.failure_logs("retrain_delivery_time", run["dag_run_id"])
    decision = store.get_json(decision_key("delivery_time", run["dag_run_id"]))
    assert decision["promote"] is True, decision["reasons"]
    assert decision["policy"]["primary_metric"] == "rmse" and decision["policy"]["higher_is_better"] is False
    champion = mlflow_client.get_model_version_by_alias("delivery_time", "champion")
    assert champion.version == decision["registered_version"]


@pytest.mark.parametrize(
    "conf",
    [{"training_window_days": 0}, {"candidates": ["svm"]}, {"tolerance": -1}, {"dry_run": "maybe"}, {"candidates": []}],
)
def test_invalid_trigger_params_are_refused(airflow, conf):
    from modelops.airflow_api import AirflowError

    airflow.wait_for_dag(CHURN)
    with pytest.raises(AirflowError, match="400"):
        airflow.trigger(CHURN, conf)


def test_clearing_a_promoted_run_keeps_its_decision_record(first_promotion, airflow, store):
    """The re-run appends attempts; the decision and the champion it compared with stay as decided."""
    run_id = first_promotion["dag_run_id"]
    key = decision_key("churn", run_id)
    before = store.get_json(key)
    assert before["promote"] is True and before.get("promotion", {}).get("promoted") is True

    airflow.clear_run(CHURN, run_id)
    again = _wait(airflow, CHURN, run_id)
    assert again["state"] == "success", airflow.failure_logs(CHURN, run_id)

    after = store.get_json(key)
    for field in ("promote", "reasons", "checks", "champion", "champion_version_compared", "decided_at", "evidence"):
        assert after[field] == before[field], f"the re-run rewrote the decision record's '{field}'"
    assert after["promotion"] == before["promotion"]
    new = after["attempts"][len(before.get("attempts", [])) :]
    assert [(a["step"], a["outcome"]) for a in new] == [
        ("gate", "kept original decision"),
        ("promote", "kept original promotion"),
    ]
    assert all(a["try_number"] for a in new), new
