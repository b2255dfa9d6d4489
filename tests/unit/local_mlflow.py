"""One way for unit tests to get a throw-away MLflow registry: SQLite in a temporary folder,
AWS test credentials and no endpoint (so boto3 reaches ``mock_aws`` only).

Creating MLflow's schema costs seconds (its migrations); each process does it once, into a
template database that every test then copies."""

from __future__ import annotations

import contextlib
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class LocalMlflow:
    uri: str
    client: object  # mlflow.tracking.MlflowClient
    experiment_id: str


@functools.cache
def _template() -> Path:
    """An empty database with MLflow's current schema (made once per process)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = Path(tempfile.mkdtemp(prefix="mlflow-template-"))
    store = SqlAlchemyStore(f"sqlite:///{folder}/mlflow.db", (folder / "artifacts").as_uri())
    store.engine.dispose()
    return folder / "mlflow.db"


def fresh_tracking_uri(tmp: Path) -> str:
    """A copy of the template whose default experiment keeps its artifacts under ``tmp``."""
    path = tmp / "mlflow.db"
    shutil.copyfile(_template(), path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", ((tmp / "artifacts").as_uri(),)
        )
    return f"sqlite:///{path}"


@contextlib.contextmanager
def local_mlflow(tmp: Path, experiment: str) -> Iterator[LocalMlflow]:
    """Environment and tracking URI set for the ``with`` block; restored after it."""
    uri = fresh_tracking_uri(tmp)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_TRACKING_URI": uri,
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MLFLOW_REGISTRY_URI"):
            mp.delenv(name, raising=False)
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(uri)
        client = MlflowClient(tracking_uri=uri)
        experiment_id = mlflow.create_experiment(experiment, artifact_location=(tmp / "artifacts").as_uri())
        yield LocalMlflow(uri=uri, client=client, experiment_id=experiment_id)
