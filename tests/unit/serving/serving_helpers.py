"""What the serving tests share: two tiny configs, their training frames, registering, an app, reading capture.

The fixtures built on these (a registry with champions, moto S3, one running app) are in conftest.py.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression

from modelops import registry
from modelops.config import ModelConfig
from modelops.serving.app import create_app
from modelops.serving.capture import CaptureOptions
from modelops.serving.options import ServingOptions
from modelops.settings import Settings
from modelops.store import Store
from modelops.training.search_spaces import skops_trusted_types

BUCKET = "serving-test"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY = re.compile(r"^(capture|feedback)/[a-z_]+/dt=\d{4}-\d{2}-\d{2}/[0-9a-f]{32}\.parquet$")

FEATURES = [
    {"name": "x0", "type": "numeric"},
    {"name": "x1", "type": "numeric", "nullable": True},
    {"name": "segment", "type": "categorical"},
    {"name": "region", "type": "categorical", "nullable": True},
]


def make_config(name: str, problem: str = "binary_classification") -> ModelConfig:
    metrics = {"regression": {"primary": "rmse"}, "multiclass_classification": {"primary": "f1_macro"}}.get(
        problem, {"primary": "roc_auc"}
    )
    return ModelConfig.model_validate(
        {
            "name": name,
            "problem_type": problem,
            "target": "y",
            "features": FEATURES,
            "data": {"id_column": "row_id", "timestamp_column": "event_time"},
            "metrics": metrics,
        }
    )


CONFIGS = {
    "toy": make_config("toy"),
    "toy_reg": make_config("toy_reg", "regression"),
    "pending": make_config("pending"),
}


def make_frame(problem: str, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    if problem == "regression":
        X, y = make_regression(n_samples=n, n_features=2, noise=5.0, random_state=0)
    elif problem == "multiclass_classification":
        X, y = make_classification(
            n_samples=n,
            n_features=2,
            n_informative=2,
            n_redundant=0,
            n_classes=3,
            n_clusters_per_class=1,
            random_state=0,
        )
        y = np.asarray(["ash", "birch", "cedar"], dtype=object)[y]  # text labels, as a data scientist's would be
    else:
        X, y = make_classification(n_samples=n, n_features=2, n_informative=2, n_redundant=0, random_state=0)
    df = pd.DataFrame(X, columns=["x0", "x1"])
    df["segment"] = np.where(df["x0"] > 0, "high", "low")
    # Region codes are strings in training: a request's 2 must mean "2", not an unseen category.
    df["region"] = pd.Series(rng.choice(["1", "2", "3"], size=n), dtype=object)
    df.loc[rng.random(n) < 0.1, "x1"] = np.nan
    df.loc[rng.random(n) < 0.1, "region"] = np.nan
    df["y"] = y
    return df


def log_and_register(mlflow, client, config: ModelConfig, pipeline, experiment_id: str, tag: str) -> str:
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            skops_trusted_types=skops_trusted_types("linear"),
            pip_requirements=["scikit-learn"],  # skips requirement inference (a subprocess, ~4 s per model)
        )
    version = registry.register_version(
        config.name, info.model_uri, run.info.run_id, {"airflow_run_id": tag}, mlflow_client=client
    )
    return version.version


def make_app(env, *, bucket: str = BUCKET, token: str | None = TOKEN, configs=None, **options):
    settings = Settings(
        bucket=bucket,
        aws_endpoint_url=None,
        aws_region="us-east-1",
        mlflow_tracking_uri=env["uri"],
        serving_url="http://testserver",
        serving_token=token,
    )
    capture = {"flush_records": 1000, "flush_seconds": 60.0, "retry_initial_seconds": 0.01, "retry_max_seconds": 0.05}
    capture.update(options.pop("capture", {}))
    # The shadow process cannot reach moto's in-process mock: the unit tier scores shadows in a
    # thread (tests/unit/serving/test_shadow_process.py runs the process against moto's server).
    options.setdefault("shadow_isolation", "thread")
    serving_options = ServingOptions(capture=CaptureOptions(**capture), **options)
    store = Store(bucket=bucket, client=env["s3"])
    return create_app(settings, configs or CONFIGS, options=serving_options, store=store)


def record(i: int = 0, **changes) -> dict:
    row = {"x0": 0.5 - i, "x1": 1.25 * i, "segment": "high" if i % 2 else "low", "region": "2"}
    row.update(changes)
    return row


def read_files(env, prefix: str, bucket: str = BUCKET) -> dict[str, pd.DataFrame]:
    keys = [item["Key"] for item in env["s3"].list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {
        key: pd.read_parquet(io.BytesIO(env["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())) for key in keys
    }


def read_rows(env, prefix: str, bucket: str = BUCKET) -> tuple[list[str], pd.DataFrame]:
    files = read_files(env, prefix, bucket)
    return list(files), (pd.concat(files.values(), ignore_index=True) if files else pd.DataFrame())
