"""Fixtures of the Models pages' data layer: a folder of declarations, moto's S3 seen through a
Store that counts its calls, a fake MLflow registry, and the platform's own writers filling them
(the gate's decision record, registry promotion and rollback, monitoring reports, ingestion's
quarantine, dead-letter records), so a change of any format breaks these tests."""

from __future__ import annotations

import collections
import datetime as dt
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from moto import mock_aws
from tests.support.aws import aws_test_env

from modelops import registry
from modelops.config import MODELS_DIR, get_model
from modelops.store import Store
from modelops.ui.cache import LruCache

TODAY = dt.date(2026, 11, 20)
#: Declared models (copies of churn): promoted, refused after a promotion, failed run, nothing yet.
MODELS = ("churn", "fraud", "broken", "fresh")
EXPERIMENT_ID = "17"


class CountingStore(Store):
    """A Store that counts LISTs, GETs and HEADs (what the cache must save)."""

    def __init__(self, bucket: str, client):
        super().__init__(bucket, client)
        self.calls: collections.Counter[str] = collections.Counter()

    def list(self, prefix: str):
        self.calls["list"] += 1
        yield from super().list(prefix)

    def get_bytes(self, key: str) -> bytes:
        self.calls["get"] += 1
        return super().get_bytes(key)

    def exists(self, key: str) -> bool:
        self.calls["head"] += 1
        return super().exists(key)


class FakeRegistry:
    """The MlflowClient calls the registry module and the pages make, on real ModelVersion entities."""

    def __init__(self):
        self.versions: dict[str, list] = collections.defaultdict(list)
        self.aliases: dict[tuple[str, str], str] = {}

    def create_model_version(self, name: str, tags: dict[str, str]):
        from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

        number = str(len(self.versions[name]) + 1)
        created = int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp() * 1000) + int(number) * 3_600_000
        version = ModelVersion(
            name, number, created, source=f"models:/m-{number}", run_id=f"mlflow-run-{number}",
            tags=[ModelVersionTag(k, v) for k, v in tags.items()],
        )  # fmt: skip
        self.versions[name].append(version)
        return version

    def search_model_versions(self, filter_string: str):
        name = filter_string.split("=", 1)[1].strip().strip("'")
        return list(self.versions.get(name, []))

    def get_model_version(self, name: str, version: str):
        return self.versions[name][int(version) - 1]

    def get_model_version_by_alias(self, name: str, alias: str):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        if (name, alias) not in self.aliases:
            raise MlflowException(f"no alias {alias} on {name}", error_code=RESOURCE_DOES_NOT_EXIST)
        return self.get_model_version(name, self.aliases[(name, alias)])

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = str(version)

    def get_experiment_by_name(self, name: str):
        return SimpleNamespace(experiment_id=EXPERIMENT_ID, name=name)


@pytest.fixture
def models_dir(tmp_path) -> Path:
    """The declarations: copies of churn under the names of :data:`MODELS`, and one invalid file."""
    folder = tmp_path / "models"
    folder.mkdir()
    churn = (MODELS_DIR / "churn.yaml").read_text()
    for name in MODELS:
        (folder / f"{name}.yaml").write_text(churn.replace("name: churn", f"name: {name}", 1))
    (folder / "bad.yaml").write_text(churn.replace("name: churn", "name: bad", 1).replace("roc_auc", "rmse", 1))
    return folder


@pytest.fixture(scope="module")
def s3():
    """moto's S3 for the whole file (a client is slow to make); each test gets its own bucket."""
    with aws_test_env(), mock_aws():
        import boto3

        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def store(s3) -> CountingStore:
    counting = CountingStore(f"ui-{uuid.uuid4().hex[:12]}", s3)
    counting.ensure_bucket()
    return counting


@pytest.fixture
def mlflow_client(monkeypatch) -> FakeRegistry:
    """The fake registry, also what ``registry.client()`` returns (steps.promote and rollback use it)."""
    fake = FakeRegistry()
    monkeypatch.setattr(registry, "client", lambda: fake)
    return fake


@pytest.fixture
def cache() -> LruCache:
    return LruCache()


@pytest.fixture(scope="session")
def day_reports() -> dict[str, dict]:
    """Two monitoring reports built by the monitor's own modules (pure values, built once):
    ``drift``: monthly_charges shifted, total_charges all missing (no drift verdict possible),
    predictions shifted, labels arrived (performance degraded); ``ok``: same distribution, no labels."""
    import numpy as np
    import pandas as pd

    from modelops.data.baseline import profile_baseline
    from modelops.drift.detect import drift_dataframe
    from modelops.drift.streaming import StreamingProfile
    from modelops.local.datagen import generate_batch
    from modelops.monitoring.live_data import DayData, VersionData
    from modelops.monitoring.performance import performance
    from modelops.monitoring.report import build_report

    config = get_model("churn")
    train = generate_batch("churn", dt.date(2026, 10, 1), 400)
    baseline = profile_baseline(train, config, predictions=list(np.where(train["support_calls"] > 2, "1", "0")))

    def report(day: dt.date, shifted: bool) -> dict:
        live = generate_batch("churn", day, 400, seed=1)
        live["prediction"] = np.where(live["support_calls"] > (1 if shifted else 2), "1", "0")
        if shifted:
            live["monthly_charges"] = live["monthly_charges"] * 3
            live["total_charges"] = np.nan
        drift = drift_dataframe(baseline, live, config.drift)
        labelled = pd.DataFrame(
            {"prediction": live["prediction"], "label": live["churned"].astype(str),
             "probabilities": [[0.3, 0.7] if p == "1" else [0.6, 0.4] for p in live["prediction"]]}
        )[: 400 if shifted else 0]  # fmt: skip
        reference = {"primary_metric": "roc_auc", "primary": 0.8, "metrics": {"roc_auc": 0.8}}
        measured = performance(config, labelled, reference, classes=["0", "1"], min_labels=50)
        profile = StreamingProfile.from_baseline(baseline)
        data = DayData("churn", day, files=["f.parquet"], rows=400, versions={"1": VersionData("1", baseline, profile, None, rows=400)})  # fmt: skip
        return build_report(data, drift={"1": drift}, performance=measured)

    return {"drift": report(TODAY, True), "ok": report(TODAY - dt.timedelta(days=1), False)}


class World:
    """The S3 bucket, the registry and the declarations a test fills with the platform's writers."""

    today = TODAY
    experiment_id = EXPERIMENT_ID

    def __init__(self, store: CountingStore, client: FakeRegistry, models_dir: Path, cache: LruCache, monkeypatch):
        self.store, self.client, self.models_dir, self.cache = store, client, models_dir, cache
        self.monkeypatch = monkeypatch
        self.config = {name: get_model(name, models_dir) for name in MODELS}

    def pages(self) -> dict:
        """What every test passes to ``overview`` / ``model_page``."""
        return {"store": self.store, "mlflow_client": self.client, "models_dir": self.models_dir, "cache": self.cache}

    def write_reports(self, model: str, reports: dict[dt.date, dict]) -> None:
        """Each report stored as its day's, by the monitor's writer."""
        from modelops.monitoring.storage import write_report

        for day, report in reports.items():
            write_report(
                self.store, model, day, report | {"model": model, "day": day.isoformat()}, "<html>report</html>"
            )

    @staticmethod
    def evaluation(primary: float, **extra) -> dict:
        """An ``evaluate_model`` result (what the gate reads), with the primary metric given."""
        return {
            "n_rows": 400, "primary_metric": "roc_auc", "higher_is_better": True, "primary": primary,
            "metrics": {"roc_auc": primary, "f1": 0.5, "accuracy": 0.7, "log_loss": 0.5}, "slices": None,
            "latency_ms_per_1k": 12.0, "latency_rows": 400, "model_size_mb": 0.1, **extra,
        }  # fmt: skip

    def retrain_run(self, model: str, run_id: str, primary: float, *, dry_run: bool = False) -> dict:
        """evaluate's output, the gate step, and (if it passed) register's and promote's writes, as
        the retrain DAG runs them; returns the gate's summary."""
        from modelops.layout import decision_record_key, evaluation_key, training_data_docs_key
        from modelops.training import steps

        config, store, client = self.config[model], self.store, self.client
        champion = registry.champion_info(model, client)
        champion_eval = self.evaluation(0.8) | {"version": champion["version"], "model_uri": "x"} if champion else None
        candidate_run = f"candidate-{run_id}"
        candidate = self.evaluation(primary) | {
            "candidate": "linear",
            "model_uri": "models:/m-x",
            "mlflow_run_id": candidate_run,
        }
        store.put_json(
            evaluation_key(model, run_id), {"test_rows": 400, "candidate": candidate, "champion": champion_eval}
        )
        store.put_text(training_data_docs_key(model, run_id), "<html>data docs</html>")
        best = {
            "candidate": "linear", "cv_primary": primary, "mlflow_run_id": candidate_run, "model_uri": "models:/m-x",
            "parent_run_id": "parent", "passed": True, "failure_reasons": [], "selection": {"reason": "best"}, "params": {},
        }  # fmt: skip
        evaluated = {
            "evaluation_uri": store.uri(evaluation_key(model, run_id)), "candidate_primary": primary,
            "champion_primary": 0.8 if champion else None, "champion_version": champion["version"] if champion else None,
        }  # fmt: skip
        evidence = {
            "snapshot": {"manifest_uri": store.uri("m.json"), "dataset_hash": "h"},
            "validation": {"result_uri": store.uri("v.json"), "data_docs_uri": store.uri("v.html")},
            "baseline": {"baseline_uri": store.uri("b.json")},
        }
        decided = steps.gate(
            config, run_id=run_id, dag_id=f"retrain_{model}", best=best, evaluated=evaluated, **evidence, overrides={},
            dry_run=dry_run, store=store,
        )  # fmt: skip
        if steps.promotion_allowed(decided):
            version = client.create_model_version(model, {"airflow_run_id": run_id})
            # What register adds to the record, then the promote step itself.
            store.update_json(decision_record_key(model, run_id), registered_version=version.version)
            registered = {"version": version.version, "model_uri": f"models:/{model}/{version.version}"}
            steps.promote(config, run_id, f"retrain_{model}", registered, decided, store=store)
        return decided

    def roll_back(self, model: str, reason: str = "bad answers") -> dict:
        """``rollback_<model>``'s move, serving's reload faked (no heartbeats: nothing to wait for)."""
        from modelops.deploy import rollout

        self.monkeypatch.setattr(rollout, "reload_serving", lambda name, version: {"new_version": version})
        rolled = rollout.rollback(
            model, reason=reason, actor="alice via rollback_" + model, run_id="manual__rb", store=self.store
        )
        return rolled.event

    def quarantine(self, model: str, day: dt.date, name: str) -> str:
        """A raw file that fails its suite, through ingestion (moved to quarantine, report beside it)."""
        from modelops.data.validation import ValidationOutcome
        from modelops.ingest.ingestor import Ingestor
        from modelops.ingest.messages import reconciliation_event
        from modelops.ingest.queues import Received
        from modelops.layout import ingest_destination_key, raw_batch_key

        def failing(data, loader, data_name):
            failure = {"expectation_type": "expect_column_values_to_not_be_null", "column": "plan", "kwargs": {}}
            return ValidationOutcome("churn", data_name, False, {"evaluated_expectations": 1}, [failure], {}), False

        config, store = self.config[model], self.store
        key = raw_batch_key(model, day, name)
        etag = store.put_bytes(key, b"customer_id,plan\n1,\n")
        body = json.dumps(reconciliation_event(store.bucket, key, etag, 20, None))
        Ingestor(config, store, known_models=set(MODELS), validator=failing).handle(Received("m-" + name, "r", body, 1))
        return ingest_destination_key(model, key[len(config.raw_prefix) :], "quarantined")

    def dead_letter(self, model: str, message_id: str, error: str, status: str = "dead") -> None:
        """A dead-letter record as ``record_dead_letters`` writes it (``redriven``: as ``redrive`` marks it)."""
        from modelops.ingest.dead_letters import build_record
        from modelops.ingest.messages import reconciliation_event
        from modelops.layout import dead_letter_key, raw_batch_key

        key = raw_batch_key(model, TODAY, f"{message_id}.csv")
        message = {
            "MessageId": message_id,
            "Body": json.dumps(reconciliation_event(self.store.bucket, key, "e", 1, None)),
        }
        record = build_record(
            model, message, {"last_error": error, "attempts": [{}]}, dt.datetime(2026, 11, 19, tzinfo=dt.UTC)
        )
        self.store.put_json(dead_letter_key(model, message_id), record | {"status": status})


@pytest.fixture
def world(store, mlflow_client, models_dir, cache, monkeypatch) -> World:
    return World(store, mlflow_client, models_dir, cache, monkeypatch)
