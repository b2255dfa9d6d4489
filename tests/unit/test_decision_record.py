"""A cleared and re-run retrain keeps its decision record: evaluate → gate → register → promote
twice for one run id, on moto's S3 and a local MLflow (SQLite) registry."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import make_classification
from tests.unit.local_mlflow import fresh_tracking_uri

from modelops import registry
from modelops.config import ModelConfig
from modelops.layout import decision_record_key
from modelops.training import steps as retrain
from modelops.training.pipelines import build_pipeline
from modelops.training.search_spaces import SEARCH_SPACES, skops_trusted_types

NAME = "toy"
RUN = "manual__2026-12-01T10:00:00+00:00"
DAG = "retrain_toy"


def make_config() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": NAME,
            "problem_type": "binary_classification",
            "target": "y",
            "features": [{"name": f"x{i}", "type": "numeric"} for i in range(3)],
            "data": {"timestamp_column": "ts"},
            "metrics": {"primary": "roc_auc"},
            "gate": {"min_primary": 0.6},
        }
    )


@pytest.fixture
def env(store, tmp_path, monkeypatch):
    """A SQLite registry, the run's split handed to evaluate, a stand-in for register's baseline."""
    uri = fresh_tracking_uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("toy-test", artifact_location=(tmp_path / "artifacts").as_uri())
    X, y = make_classification(n_samples=300, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"]).assign(y=y)
    monkeypatch.setattr(retrain, "training_split", lambda model, run_id, store=None: (frame[:200], frame[200:]))
    monkeypatch.setattr(retrain, "_baseline_with_predictions", lambda model, run_id, best, store: {"rows": 300})
    config = make_config()

    def candidate(labels=None) -> dict:
        """A logged linear candidate, in select_best's shape (``labels`` replaces y: a weak model)."""
        target = frame["y"][:200] if labels is None else labels
        pipeline = build_pipeline(config, "linear", SEARCH_SPACES["linear"][0])
        pipeline.fit(frame[config.feature_names][:200], target)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                skops_trusted_types=skops_trusted_types("linear", config.problem_type),
                pip_requirements=["scikit-learn"],
            )
        return {
            "candidate": "linear",
            "cv_primary": 0.9,
            "mlflow_run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "parent_run_id": run.info.run_id,
            "passed": True,
            "failure_reasons": [],
            "selection": {"reason": "test"},
            "params": {},
        }

    client = MlflowClient(tracking_uri=uri)
    # The champion before the run: a model fit to shuffled labels, which the run's candidate beats.
    weak = candidate(np.random.default_rng(1).permutation(frame["y"][:200].to_numpy()))
    v1 = registry.register_version(
        NAME, weak["model_uri"], weak["mlflow_run_id"], {"airflow_run_id": "old"}, "", client
    )
    client.set_registered_model_alias(NAME, registry.CHAMPION, v1.version)
    evidence = {
        "snapshot": {"manifest_uri": store.uri("m.json"), "dataset_hash": "h"},
        "validation": {"result_uri": store.uri("v.json"), "data_docs_uri": store.uri("v.html")},
        "baseline": {"baseline_uri": store.uri("b.json")},
    }
    return {"config": config, "client": client, "store": store, "candidate": candidate, **evidence}


def run_steps(env: dict, best: dict, dry_run: bool = False) -> dict:
    """The retrain DAG's last four tasks, as the DAG routes them."""
    config, store = env["config"], env["store"]
    evaluated = retrain.evaluate(config, RUN, best, store)
    evidence = {"snapshot": env["snapshot"], "validation": env["validation"], "baseline": env["baseline"]}
    decided = retrain.gate(
        config, run_id=RUN, dag_id=DAG, best=best, evaluated=evaluated, **evidence, overrides={}, dry_run=dry_run,
        store=store,
    )  # fmt: skip
    out = {"evaluated": evaluated, "decided": decided}
    if decided["promote"] and not decided["dry_run"]:
        out["registered"] = retrain.register(
            config, run_id=RUN, dag_id=DAG, best=best, **evidence, decided=decided, store=store
        )
        out["promoted"] = retrain.promote(config, RUN, DAG, out["registered"], decided, store=store)
    return out


def registry_state(env: dict) -> dict:
    client = env["client"]
    return {
        "versions": sorted(str(v.version) for v in client.search_model_versions(f"name = '{NAME}'")),
        "champion": str(registry.version_for_alias(NAME, registry.CHAMPION, client).version),
        "previous": str(registry.version_for_alias(NAME, registry.PREVIOUS, client).version),
        "challenger": str(registry.version_for_alias(NAME, registry.CHALLENGER, client).version),
        "history": registry.alias_history(NAME, env["store"]),
    }


def test_a_cleared_promoted_run_keeps_its_decision_and_evidence(env):
    store = env["store"]
    best = env["candidate"]()
    first = run_steps(env, best)
    assert first["decided"]["promote"] is True and first["decided"]["champion_version_compared"] == "1"
    assert first["promoted"]["promoted"] is True and first["promoted"]["champion"] == "2"
    record = store.get_json(decision_record_key(NAME, RUN))
    evaluation = store.get_json(store.key_of(first["evaluated"]["evaluation_uri"]))
    state = registry_state(env)

    again = run_steps(env, best)  # Airflow clear of the run: the same tasks, the same run id

    after = store.get_json(decision_record_key(NAME, RUN))
    assert {k: v for k, v in after.items() if k != "attempts"} == record, "the decision record was rewritten"
    assert after["champion_version_compared"] == "1" and after["champion"]["version"] == "1"
    assert [(a["step"], a["outcome"]) for a in after["attempts"]] == [
        ("gate", "kept original decision"),
        ("promote", "kept original promotion"),
    ]
    assert store.get_json(store.key_of(first["evaluated"]["evaluation_uri"])) == evaluation
    assert again["evaluated"] == first["evaluated"] and again["decided"] == first["decided"]
    assert again["registered"] == first["registered"]
    assert again["promoted"]["promoted"] is False and again["promoted"]["champion"] == "2"
    assert registry_state(env) == state, "a re-run added a version or moved an alias"


def test_a_cleared_rejected_run_keeps_its_decision(env):
    store = env["store"]
    best = env["candidate"]()
    first = run_steps(env, best, dry_run=True)
    record = store.get_json(decision_record_key(NAME, RUN))

    again = run_steps(env, best, dry_run=True)

    after = store.get_json(decision_record_key(NAME, RUN))
    assert {k: v for k, v in after.items() if k != "attempts"} == record
    assert [a["step"] for a in after["attempts"]] == ["gate"]
    assert again["decided"] == first["decided"] and "registered" not in again


def test_a_retrained_candidate_that_registered_nothing_is_decided_again_keeping_the_first(env):
    store = env["store"]
    first = run_steps(env, env["candidate"](), dry_run=True)
    original = store.get_json(decision_record_key(NAME, RUN))
    retrained = env["candidate"]()  # train_candidate redone: another MLflow run, another model

    again = run_steps(env, retrained, dry_run=True)

    after = store.get_json(decision_record_key(NAME, RUN))
    assert after["evidence"]["candidate_run_id"] == retrained["mlflow_run_id"]
    assert [d["evidence"]["candidate_run_id"] for d in after["earlier_decisions"]] == [
        original["evidence"]["candidate_run_id"]
    ]
    assert after["earlier_decisions"][0]["decided_at"] == original["decided_at"]
    assert [a["outcome"] for a in after["attempts"]] == [
        "decided again: the candidate changed and no version was registered"
    ]
    assert again["evaluated"]["champion_version"] == first["evaluated"]["champion_version"] == "1"


def test_the_champion_compared_is_never_the_runs_own_version(env):
    """No record (e.g. deleted) but this run's version is champion: compare with previous-champion."""
    client = env["client"]
    best = env["candidate"]()
    v2 = registry.register_version(NAME, best["model_uri"], best["mlflow_run_id"], {"airflow_run_id": RUN}, "", client)
    registry.promote(NAME, v2.version, expected_champion="1", reason="t", actor="t", run_id=RUN, store=env["store"])

    compared = registry.champion_to_compare(NAME, RUN, None, client)

    assert compared["version"] == "1"
    assert registry.champion_to_compare(NAME, "another run", None, client)["version"] == str(v2.version)
