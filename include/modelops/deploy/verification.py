"""The post-deploy check: does the freshly loaded version answer like the registry's copy?

It sends the model's stored input example and a sample of the rows the version was trained on
through the live endpoint and compares the answers with offline predictions of the same registry
version, within a latency budget. (Not to be confused with the ``smoke_<model>`` stack check in
:mod:`modelops.stack_check`, which proves S3, MLflow and Airflow work together.)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import requests

from modelops import registry
from modelops import settings as _settings
from modelops.config import ModelConfig
from modelops.deploy.serving_client import DeployError, timed_predict
from modelops.records import Record
from modelops.serving.heartbeat import WORKER_HEADER
from modelops.store import Store

log = logging.getLogger(__name__)

CHECK_ROWS = 50
#: Generous for a 50-row batch on a 2-core machine; the point is "answers", not a benchmark.
LATENCY_BUDGET_MS = 2000.0


class PostDeployCheckFailed(DeployError):
    """The deployed version did not answer like the registry's copy; the message lists the problems."""


@dataclasses.dataclass(frozen=True)
class ServingCheck(Record):
    """What the post-deploy check saw (the ``smoke_test`` entry of results and decision records)."""

    model_uri: str
    records: int
    latency_ms: float
    passed: bool
    problems: list[str]
    #: The serving worker that answered the smoke test (its ``X-Modelops-Worker`` header).
    answered_by: str | None = None
    #: The workers whose heartbeat reported the version before the smoke test (deploy/convergence.py).
    workers_confirmed: list[str] = dataclasses.field(default_factory=list)
    #: How many workers confirmed, or why only one worker is known (no heartbeats).
    workers_note: str | None = None


def _records(frame) -> list[dict]:
    rows = []
    for row in frame.to_dict(orient="records"):
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return rows


def _same(live, offline, is_classifier: bool) -> bool:
    if is_classifier:
        return str(live) == str(offline)
    return live is not None and math.isclose(float(live), float(offline), rel_tol=1e-6, abs_tol=1e-6)


def _check_inputs(model: ModelConfig, model_uri: str, sample_frame):
    """The input example stored with the version, then up to ``CHECK_ROWS`` sample rows."""
    import mlflow
    import pandas as pd

    example = mlflow.models.Model.load(model_uri).load_input_example(mlflow.artifacts.download_artifacts(model_uri))
    frames = [pd.DataFrame(example)[model.feature_names]] if example is not None else []
    if sample_frame is not None and len(sample_frame):
        frames.append(sample_frame[model.feature_names].head(CHECK_ROWS))
    if not frames:
        raise PostDeployCheckFailed(f"{model_uri} has no input example and no sample rows to test with")
    return pd.concat(frames, ignore_index=True)


def _offline_predictions(model_uri: str, inputs):
    from modelops.usercode.models import load_model

    offline_model = load_model(model_uri)
    try:
        return offline_model.predict(inputs)
    except Exception as exc:  # noqa: BLE001 - any failure of the registry's copy fails the test
        raise PostDeployCheckFailed(
            f"{model_uri} cannot predict its own smoke-test rows offline: {type(exc).__name__}: {exc}"
        ) from exc


def answer_problems(response, version: str, expected, is_classifier: bool) -> list[str]:
    """What is wrong with serving's answer: status, version, prediction count, differing predictions."""
    if response.status_code != 200:
        return [f"predict answered {response.status_code}: {response.text[:500]}"]
    problems = []
    body = response.json()
    if str(body.get("version")) != str(version):
        problems.append(f"serving answered with version {body.get('version')}, expected {version}")
    live = body.get("predictions") or []
    if len(live) != len(expected):
        problems.append(f"{len(live)} predictions for {len(expected)} records")
        return problems
    mismatches = [i for i, (a, b) in enumerate(zip(live, expected, strict=True)) if not _same(a, b, is_classifier)]
    if mismatches:
        i = mismatches[0]
        problems.append(
            f"{len(mismatches)} of {len(live)} live predictions differ from offline ones (row {i}: {live[i]!r} vs {expected[i]!r})"
        )
    return problems


def post_deploy_check(model: ModelConfig, version: str, sample_frame=None) -> ServingCheck:
    """Live answers for the input example (+ ``sample_frame``) must match offline ones."""
    import mlflow

    settings = _settings.load()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    model_uri = f"models:/{model.name}/{version}"
    inputs = _check_inputs(model, model_uri, sample_frame)
    expected = _offline_predictions(model_uri, inputs)
    try:
        response, latency_ms = timed_predict(model.name, _records(inputs))
    except requests.RequestException as exc:
        raise PostDeployCheckFailed(f"serving did not answer the smoke test of {model_uri}: {exc}") from exc
    problems = answer_problems(response, version, expected, model.is_classifier)
    if latency_ms > LATENCY_BUDGET_MS:
        problems.append(
            f"latency {latency_ms:.0f} ms for {len(inputs)} records is over the budget of {LATENCY_BUDGET_MS:.0f} ms"
        )
    if problems:
        raise PostDeployCheckFailed(
            f"smoke test of {model_uri} against {settings.serving_url} failed: " + "; ".join(problems)
        )
    return ServingCheck(
        model_uri=model_uri, records=len(inputs), latency_ms=round(latency_ms, 1), passed=True, problems=[],
        answered_by=response.headers.get(WORKER_HEADER),
    )  # fmt: skip


def recent_rows_of_version(model: ModelConfig, version: str, store: Store | None = None) -> Any:
    """The newest rows of the snapshot a version was trained on (its ``manifest_uri`` tag)."""
    from modelops.data.snapshot import load_snapshot_frame

    store = store or Store()
    mv = registry.client().get_model_version(model.name, str(version))
    manifest_uri = (mv.tags or {}).get("manifest_uri")
    if not manifest_uri:
        return None
    manifest = store.get_json(store.key_of(manifest_uri))
    newest = sorted(manifest["objects"], key=lambda o: o["key"])[-1:]
    frame = load_snapshot_frame(model, manifest | {"objects": newest}, store)
    return frame.sample(n=min(CHECK_ROWS, len(frame)), random_state=0)
