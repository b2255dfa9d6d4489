"""Models pages benchmark: ``model_page`` (and ``overview``) of a model with 100 registry versions
and 365 days of monitoring reports, cold and warm.

What is measured
----------------
* Data, written by the platform's own writers into moto's in-process S3 (``mock_aws``) and a
  SQLite MLflow registry: :data:`VERSIONS` promoted retrain runs (the gate's decision record,
  evaluation and Data Docs page, a registry version, the promotion and its alias moves) plus one
  refused run per three promoted ones; one real monitoring report (drift, prediction drift,
  live performance, built by ``modelops.monitoring.report``) stored for each of :data:`DAYS`
  days; :data:`QUARANTINED` files through ingestion's quarantine and :data:`DEAD_LETTERS`
  dead-letter records. Airflow's runs come from a fixed list (``runs=``), as the plugin passes them.
* **first**: ``model_page`` with an empty cache: one LIST per prefix and one GET per object.
* **warm**: the median (and max) of :data:`WARM_CALLS` further calls: the same LISTs, no GET for
  an unchanged ETag. S3 calls of each kind are counted for both.
* ``model_page_warm_list_seconds_median``: the part of a warm page spent in the six LISTs. moto
  answers in-process, and serialising ~1,300 keys is most of a warm page here; against S3 each
  LIST is a round trip (tens of ms) plus parsing. The MLflow figures are SQLite's.

Run with ``python -m benchmarks.run ui``.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("bench.ui")

MODEL = "churn"
VERSIONS = 100
DAYS = 365
QUARANTINED = 30
DEAD_LETTERS = 20
WARM_CALLS = 5
TODAY = dt.date(2026, 11, 20)
BUCKET = "bench-ui"


def _counting_store(client):
    from modelops.store import Store

    class CountingStore(Store):
        """Counts LISTs, GETs and HEADs: what the cache saves."""

        calls: collections.Counter
        list_seconds = 0.0

        def list(self, prefix):
            self.calls["list"] += 1
            started = time.perf_counter()
            items = [*super().list(prefix)]
            self.list_seconds += time.perf_counter() - started
            yield from items

        def get_bytes(self, key):
            self.calls["get"] += 1
            return super().get_bytes(key)

        def exists(self, key):
            self.calls["head"] += 1
            return super().exists(key)

    store = CountingStore(BUCKET, client)
    store.calls = collections.Counter()
    store.ensure_bucket()
    return store


@contextmanager
def _services():
    """moto S3 and a SQLite MLflow in a temporary folder, with the environment pointing at them."""
    home = Path(tempfile.mkdtemp(prefix="modelops-bench-ui-"))
    saved = dict(os.environ)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
         "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db", "MODELOPS_BUCKET": BUCKET}
    )  # fmt: skip
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(name, None)
    try:
        import boto3
        from mlflow.tracking import MlflowClient
        from moto import mock_aws

        from modelops.layout import experiment_name

        with mock_aws():
            mlflow_client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
            mlflow_client.create_experiment(experiment_name(MODEL), artifact_location=(home / "artifacts").as_uri())
            yield _counting_store(boto3.client("s3", region_name="us-east-1")), mlflow_client
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(home, ignore_errors=True)


def _evaluation(primary: float) -> dict:
    return {
        "n_rows": 2000, "primary_metric": "roc_auc", "higher_is_better": True, "primary": primary,
        "metrics": {"roc_auc": primary, "f1": 0.5, "accuracy": 0.7, "log_loss": 0.5}, "slices": None,
        "latency_ms_per_1k": 12.0, "latency_rows": 1000, "model_size_mb": 0.4,
    }  # fmt: skip


def _retrain_run(config, store, mlflow_client, run_id: str, primary: float) -> None:
    """evaluate's output, the gate, and register's and promote's writes, as the retrain DAG runs them."""
    from modelops import registry
    from modelops.layout import decision_record_key, evaluation_key, training_data_docs_key
    from modelops.training import steps

    champion = registry.champion_info(MODEL, mlflow_client)
    champion_eval = _evaluation(0.80) | {"version": champion["version"], "model_uri": "x"} if champion else None
    candidate = _evaluation(primary) | {
        "candidate": "linear",
        "model_uri": "models:/m-x",
        "mlflow_run_id": f"c-{run_id}",
    }
    store.put_json(
        evaluation_key(MODEL, run_id), {"test_rows": 2000, "candidate": candidate, "champion": champion_eval}
    )
    store.put_text(training_data_docs_key(MODEL, run_id), "<html>" + "data docs " * 2000 + "</html>")
    best = {
        "candidate": "linear", "cv_primary": primary, "mlflow_run_id": f"c-{run_id}", "model_uri": "models:/m-x",
        "parent_run_id": "p", "passed": True, "failure_reasons": [], "selection": {"reason": "best"}, "params": {},
    }  # fmt: skip
    evaluated = {
        "evaluation_uri": store.uri(evaluation_key(MODEL, run_id)), "candidate_primary": primary,
        "champion_primary": 0.80 if champion else None, "champion_version": champion["version"] if champion else None,
    }  # fmt: skip
    decided = steps.gate(
        config, run_id=run_id, dag_id=f"retrain_{MODEL}", best=best, evaluated=evaluated,
        snapshot={"manifest_uri": store.uri("m.json"), "dataset_hash": "h"},
        validation={"result_uri": store.uri("v.json"), "data_docs_uri": store.uri("v.html")},
        baseline={"baseline_uri": store.uri("b.json")}, overrides={}, dry_run=False, store=store,
    )  # fmt: skip
    if not steps.promotion_allowed(decided):
        return
    version = registry.register_version(MODEL, f"s3://{BUCKET}/models/{run_id}", None, {"airflow_run_id": run_id},
                                        mlflow_client=mlflow_client)  # fmt: skip
    store.update_json(decision_record_key(MODEL, run_id), registered_version=version.version)
    registered = {"version": version.version, "model_uri": f"models:/{MODEL}/{version.version}"}
    steps.promote(config, run_id, f"retrain_{MODEL}", registered, decided, store=store)


def _day_report(config) -> dict:
    """One real report (drifted feature, a feature without data, predictions, labels)."""
    import numpy as np
    import pandas as pd

    from modelops.data.baseline import profile_baseline
    from modelops.drift.detect import drift_dataframe
    from modelops.drift.streaming import StreamingProfile
    from modelops.local.datagen import generate_batch
    from modelops.monitoring.live_data import DayData, VersionData
    from modelops.monitoring.performance import performance
    from modelops.monitoring.report import build_report

    train = generate_batch(MODEL, TODAY - dt.timedelta(days=400), 2000)
    baseline = profile_baseline(train, config, predictions=list(np.where(train["support_calls"] > 2, "1", "0")))
    live = generate_batch(MODEL, TODAY, 2000, seed=1)
    live["prediction"] = np.where(live["support_calls"] > 1, "1", "0")
    live["monthly_charges"] *= 3
    live["total_charges"] = np.nan
    labels = pd.DataFrame({"prediction": live["prediction"], "label": live["churned"].astype(str),
                           "probabilities": [[0.3, 0.7] if p == "1" else [0.6, 0.4] for p in live["prediction"]]})  # fmt: skip
    measured = performance(config, labels, {"primary_metric": "roc_auc", "primary": 0.8}, classes=["0", "1"])
    versions = {"1": VersionData("1", baseline, StreamingProfile.from_baseline(baseline), None, rows=2000)}
    day = DayData(MODEL, TODAY, files=["f.parquet"], rows=2000, versions=versions)
    return build_report(day, drift={"1": drift_dataframe(baseline, live, config.drift)}, performance=measured)


def _quarantine(config, store, day: dt.date, name: str) -> None:
    """A raw file that fails its suite, through ingestion (moved to quarantine, its report beside it)."""
    from modelops.data.validation import ValidationOutcome
    from modelops.ingest.ingestor import Ingestor
    from modelops.ingest.messages import reconciliation_event
    from modelops.ingest.queues import Received
    from modelops.layout import raw_batch_key

    def failing(data, loader, data_name):
        failure = {"expectation_type": "expect_column_values_to_not_be_null", "column": "plan", "kwargs": {}}
        return ValidationOutcome(MODEL, data_name, False, {"evaluated_expectations": 1}, [failure], {}), False

    key = raw_batch_key(MODEL, day, name)
    etag = store.put_bytes(key, b"customer_id,plan\n1,\n")
    body = json.dumps(reconciliation_event(BUCKET, key, etag, 20, None))
    Ingestor(config, store, known_models={MODEL}, validator=failing).handle(Received(f"q-{name}", "r", body, 1))


def _fill(config, store, mlflow_client) -> dict:
    """Runs, versions, reports, quarantined files and dead letters; returns the Airflow runs."""
    from modelops.ingest.dead_letters import build_record
    from modelops.ingest.messages import reconciliation_event
    from modelops.layout import dead_letter_key, raw_batch_key
    from modelops.monitoring.storage import write_report

    runs, started = [], dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    refused = VERSIONS // 3
    for i in range(VERSIONS + refused):
        run_id = f"scheduled__{(started + dt.timedelta(days=3 * i)).isoformat()}"
        promoted = i % 4 != 3 or i >= 4 * refused
        _retrain_run(config, store, mlflow_client, run_id, 0.81 + i * 1e-4 if promoted else 0.60)
        runs.append({"run_id": run_id, "state": "success", "start_date": started + dt.timedelta(days=3 * i)})
    report = _day_report(config)
    for n in range(DAYS):
        day = TODAY - dt.timedelta(days=n)
        write_report(store, MODEL, day, report | {"day": day.isoformat()}, "<html>" + "report " * 5000 + "</html>")
    for n in range(QUARANTINED):
        _quarantine(config, store, TODAY - dt.timedelta(days=n % 10), f"batch-{n}.csv")
    for n in range(DEAD_LETTERS):
        event = reconciliation_event(BUCKET, raw_batch_key(MODEL, TODAY, f"{n}.csv"), "e", 1, None)
        message = {"MessageId": f"m-{n}", "Body": json.dumps(event)}
        record = build_record(MODEL, message, {"last_error": "ValueError: boom"}, dt.datetime.now(dt.UTC))
        store.put_json(dead_letter_key(MODEL, f"m-{n}"), record)
    return {f"retrain_{MODEL}": runs[-100:]}


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def bench_ui() -> dict:
    """First and warm ``model_page`` / ``overview`` time for 100 versions and 365 days of reports."""
    from modelops.config import get_model
    from modelops.ui import reads
    from modelops.ui.cache import LruCache

    config = get_model(MODEL)
    with _services() as (store, mlflow_client):
        runs = _fill(config, store, mlflow_client)
        objects = sum(1 for _ in store.list(""))
        cache = LruCache()
        kwargs = {"store": store, "mlflow_client": mlflow_client, "cache": cache, "today": TODAY,
                  "runs": lambda dag_id: runs.get(dag_id, [])}  # fmt: skip
        store.calls.clear()
        first_s, page = _timed(lambda: reads.model_page(MODEL, mlflow_ui="http://mlflow:5000", **kwargs))
        first_calls = dict(store.calls)
        warm, warm_calls, warm_list = [], [], []
        for _ in range(WARM_CALLS):
            store.calls.clear()
            store.list_seconds = 0.0
            warm.append(_timed(lambda: reads.model_page(MODEL, mlflow_ui="http://mlflow:5000", **kwargs))[0])
            warm_calls.append(dict(store.calls))
            warm_list.append(store.list_seconds)
        overview_cold = LruCache()
        overview_first_s = _timed(lambda: reads.overview(**(kwargs | {"cache": overview_cold})))[0]
        overview_warm_s = statistics.median(
            _timed(lambda: reads.overview(**(kwargs | {"cache": overview_cold})))[0] for _ in range(WARM_CALLS)
        )
    return {
        "model": MODEL,
        "versions": len(page["metric_by_version"]),
        "days": len(page["days"]),
        "timeline_entries": len(page["timeline"]),
        "alias_moves": len(page["aliases"]),
        "s3_objects": objects,
        "model_page_first_seconds": round(first_s, 3),
        "model_page_warm_seconds_median": round(statistics.median(warm), 3),
        "model_page_warm_seconds_max": round(max(warm), 3),
        "model_page_warm_list_seconds_median": round(statistics.median(warm_list), 3),
        "first_s3_calls": first_calls,
        "warm_s3_calls": warm_calls[-1],
        "overview_first_seconds": round(overview_first_s, 3),
        "overview_warm_seconds_median": round(overview_warm_s, 3),
        "cache_entries": len(cache),
        "page_json_kb": round(len(json.dumps(page)) / 1024, 1),
        "note": "moto in-process S3 (no network round trips) and a SQLite MLflow registry; overview covers "
        "every declared model, only churn has data",
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(bench_ui(), indent=2))
