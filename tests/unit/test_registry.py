"""The registry by the platform's conventions: versions registered once per run, aliases moved
with a history entry each, versions resolved from numbers and aliases, refusals that name what is
missing. On moto's S3 and a throw-away SQLite MLflow registry."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from tests.unit.local_mlflow import local_mlflow

from modelops import registry
from modelops.layout import alias_history_key

MODEL = "toy"


@pytest.fixture
def reg(store, tmp_path):
    """A local registry and a ``register(run)`` helper that adds one version per Airflow run id."""
    with local_mlflow(tmp_path, "registry-test") as ml:

        def register(airflow_run_id: str):
            with mlflow.start_run(experiment_id=ml.experiment_id) as run:
                mlflow.log_text("stand-in", "model/MLmodel")
            return registry.register_version(
                MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id, {"airflow_run_id": airflow_run_id}
            )

        yield ml.client, register


def test_register_version_is_idempotent_per_airflow_run(reg):
    client, register = reg
    first = register("run-1")
    again = register("run-1")
    other = register("run-2")
    assert again.version == first.version
    assert other.version != first.version
    assert registry.find_version_for_run(MODEL, "run-2").version == other.version
    assert registry.find_version_for_run(MODEL, "run-3") is None


def test_resolve_version_of_numbers_and_aliases(reg, store):
    client, register = reg
    v1, v2 = register("run-1"), register("run-2")
    registry.set_alias(MODEL, registry.CHAMPION, v2.version, reason="test", actor="me", store=store)
    assert registry.resolve_version(MODEL, str(v1.version)) == str(v1.version)
    assert registry.resolve_version(MODEL, f" {v1.version} ") == str(v1.version)
    assert str(registry.resolve_version(MODEL, "champion")) == str(v2.version)


def test_resolve_version_names_what_is_missing(reg):
    client, register = reg
    register("run-1")
    with pytest.raises(registry.RegistryError, match="model 'toy' has no version with alias 'challenger'"):
        registry.resolve_version(MODEL, "challenger")
    with pytest.raises(MlflowException, match="version=9"):
        registry.resolve_version(MODEL, "9")


def test_version_for_alias_is_none_without_model_or_alias(reg):
    client, register = reg
    assert registry.version_for_alias("nobody", registry.CHAMPION) is None
    register("run-1")
    assert registry.version_for_alias(MODEL, registry.CHAMPION) is None
    assert registry.champion_info(MODEL) is None


def test_set_alias_appends_to_the_alias_history(reg, store):
    client, register = reg
    v1, v2 = register("run-1"), register("run-2")
    first = registry.set_alias(MODEL, registry.CHAMPION, v1.version, reason="first", actor="alice", store=store)
    second = registry.set_alias(
        MODEL, registry.CHAMPION, v2.version, reason="better", actor="bob", store=store, extra={"airflow_run_id": "r"}
    )
    assert first["from_version"] is None and first["to_version"] == str(v1.version)
    # ``from_version`` is what the store reports (an int from SQLite, text from the REST store).
    assert str(second["from_version"]) == str(v1.version) and second["to_version"] == str(v2.version)
    history = registry.alias_history(MODEL, store)
    assert history == store.get_json(alias_history_key(MODEL))
    assert [(e["alias"], e["reason"], e["actor"]) for e in history] == [
        ("champion", "first", "alice"),
        ("champion", "better", "bob"),
    ]
    assert history[1]["airflow_run_id"] == "r" and history[1]["at"]
    info = registry.champion_info(MODEL)
    assert info["version"] == str(v2.version) and info["model_uri"] == f"models:/{MODEL}/{v2.version}"
    assert info["tags"]["airflow_run_id"] == "run-2"


def test_alias_history_is_empty_before_any_move(reg, store):
    assert registry.alias_history(MODEL, store) == []


def test_promote_moves_champion_and_keeps_the_previous_one(reg, store):
    client, register = reg
    v1, v2 = register("run-1"), register("run-2")
    first = registry.promote(
        MODEL, v1.version, expected_champion=None, reason="gate", actor="dag", run_id="run-1", store=store
    )
    assert first["promoted"] is True and first["previous_champion"] is None
    second = registry.promote(
        MODEL, v2.version, expected_champion=v1.version, reason="gate", actor="dag", run_id="run-2", store=store
    )
    assert second["promoted"] is True
    assert second["champion"] == str(v2.version) and second["previous_champion"] == str(v1.version)
    assert str(registry.version_for_alias(MODEL, registry.PREVIOUS).version) == str(v1.version)
    moves = [(e["alias"], e["to_version"]) for e in registry.alias_history(MODEL, store)]
    assert moves == [
        ("champion", str(v1.version)),
        ("previous-champion", str(v1.version)),
        ("champion", str(v2.version)),
    ]


def test_promote_rerun_and_already_champion_do_nothing(reg, store):
    client, register = reg
    v1 = register("run-1")
    registry.promote(MODEL, v1.version, expected_champion=None, reason="gate", actor="dag", run_id="run-1", store=store)
    rerun = registry.promote(
        MODEL, v1.version, expected_champion=None, reason="gate", actor="dag", run_id="run-1", store=store
    )
    assert rerun["promoted"] is False and rerun["already_promoted_at"]
    assert rerun["champion"] == str(v1.version)
    other_run = registry.promote(
        MODEL, v1.version, expected_champion=v1.version, reason="gate", actor="dag", run_id="run-9", store=store
    )
    assert other_run == {
        "promoted": False,
        "already_champion": True,
        "champion": str(v1.version),
        "previous_champion": None,
    }
    assert len(registry.alias_history(MODEL, store)) == 1


def test_promote_refuses_when_the_champion_moved(reg, store):
    client, register = reg
    v1, v2, v3 = register("run-1"), register("run-2"), register("run-3")
    registry.set_alias(MODEL, registry.CHAMPION, v2.version, reason="by hand", actor="ops", store=store)
    with pytest.raises(
        registry.ChampionChanged, match=f"champion is now version {v2.version}.*against version {v1.version}"
    ):
        registry.promote(
            MODEL, v3.version, expected_champion=v1.version, reason="gate", actor="dag", run_id="run-3", store=store
        )
    assert str(registry.version_for_alias(MODEL, registry.CHAMPION).version) == str(v2.version)


def test_champion_to_compare_skips_the_runs_own_version(reg, store):
    client, register = reg
    v1, v2 = register("run-1"), register("run-2")
    registry.promote(MODEL, v1.version, expected_champion=None, reason="gate", actor="dag", run_id="run-1", store=store)
    assert registry.champion_to_compare(MODEL, "run-2")["version"] == str(v1.version)
    registry.promote(
        MODEL, v2.version, expected_champion=v1.version, reason="gate", actor="dag", run_id="run-2", store=store
    )
    # A re-run of run-2 after its promotion compares with the version it replaced, not itself.
    assert registry.champion_to_compare(MODEL, "run-2")["version"] == str(v1.version)
    assert registry.champion_to_compare(MODEL, "run-2", record={"champion_version_compared": None}) is None
