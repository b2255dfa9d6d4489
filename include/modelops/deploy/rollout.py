"""Deployment: ask the serving service to load a version, prove it answers like the registry's
copy, and roll back when it does not.

The smoke test sends the model's stored input example and a sample of the run's training rows
through the live endpoint and compares the answers with offline predictions of the same
registry version, within a latency budget. A failed smoke test moves ``champion`` back to
``previous-champion``, reloads serving, and records both in the decision and alias history.
"""

from __future__ import annotations

import logging
import math
import time

import requests

from modelops import registry
from modelops import settings as _settings
from modelops.config import ModelConfig
from modelops.layout import decision_record_key
from modelops.store import Store

log = logging.getLogger(__name__)

SMOKE_ROWS = 50
#: Generous for a 50-row batch on a 2-core machine; the point is "answers", not a benchmark.
SMOKE_LATENCY_BUDGET_MS = 2000.0


class DeployError(RuntimeError):
    pass


class SmokeTestFailed(DeployError):
    pass


def _headers(settings) -> dict:
    if not settings.serving_token:
        raise DeployError("MODELOPS_SERVING_TOKEN is not set: cannot ask the serving service to reload")
    return {"Authorization": f"Bearer {settings.serving_token}"}


def reload_serving(model: str, version: str | None = None, timeout: float = 300.0) -> dict:
    """Hot-swap the served version (the champion when ``version`` is None)."""
    settings = _settings.load()
    body = {"version": str(version)} if version is not None else {}
    try:
        response = requests.post(
            f"{settings.serving_url}/models/{model}/reload", json=body, headers=_headers(settings), timeout=timeout
        )
    except requests.RequestException as exc:
        raise DeployError(f"serving at {settings.serving_url} did not answer the reload of '{model}': {exc}") from exc
    if response.status_code != 200:
        raise DeployError(
            f"serving refused to load '{model}' version {version or 'champion'}: {response.status_code} {response.text[:1000]}"
        )
    result = response.json()
    log.info("serving now runs %s version %s (was %s)", model, result.get("new_version"), result.get("old_version"))
    return result


def served_version(model: str) -> str | None:
    settings = _settings.load()
    response = requests.get(f"{settings.serving_url}/models", timeout=30)
    response.raise_for_status()
    for item in response.json()["models"]:
        if item["name"] == model:
            return item.get("version")
    return None


def _records(frame) -> list[dict]:
    rows = []
    for row in frame.to_dict(orient="records"):
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return rows


def _same(live, offline, is_classifier: bool) -> bool:
    if is_classifier:
        return str(live) == str(offline)
    return live is not None and math.isclose(float(live), float(offline), rel_tol=1e-6, abs_tol=1e-6)


def smoke_test(model: ModelConfig, version: str, sample_frame=None) -> dict:
    """Live answers for the input example (+ ``sample_frame``) must match offline ones."""
    import mlflow
    import pandas as pd

    settings = _settings.load()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    model_uri = f"models:/{model.name}/{version}"
    offline_model = mlflow.sklearn.load_model(model_uri)
    example = mlflow.models.Model.load(model_uri).load_input_example(mlflow.artifacts.download_artifacts(model_uri))
    frames = [pd.DataFrame(example)[model.feature_names]] if example is not None else []
    if sample_frame is not None and len(sample_frame):
        frames.append(sample_frame[model.feature_names].head(SMOKE_ROWS))
    if not frames:
        raise SmokeTestFailed(f"{model_uri} has no input example and no sample rows to test with")
    inputs = pd.concat(frames, ignore_index=True)
    try:
        expected = offline_model.predict(inputs)
    except Exception as exc:  # noqa: BLE001 - any failure of the registry's copy fails the test
        raise SmokeTestFailed(
            f"{model_uri} cannot predict its own smoke-test rows offline: {type(exc).__name__}: {exc}"
        ) from exc
    started = time.perf_counter()
    try:
        response = requests.post(
            f"{settings.serving_url}/models/{model.name}/predict", json={"records": _records(inputs)}, timeout=60
        )
    except requests.RequestException as exc:
        raise SmokeTestFailed(f"serving did not answer the smoke test of {model_uri}: {exc}") from exc
    latency_ms = (time.perf_counter() - started) * 1000
    problems = []
    if response.status_code != 200:
        problems.append(f"predict answered {response.status_code}: {response.text[:500]}")
    else:
        body = response.json()
        if str(body.get("version")) != str(version):
            problems.append(f"serving answered with version {body.get('version')}, expected {version}")
        live = body.get("predictions") or []
        if len(live) != len(expected):
            problems.append(f"{len(live)} predictions for {len(expected)} records")
        else:
            mismatches = [
                i for i, (a, b) in enumerate(zip(live, expected, strict=True)) if not _same(a, b, model.is_classifier)
            ]
            if mismatches:
                i = mismatches[0]
                problems.append(
                    f"{len(mismatches)} of {len(live)} live predictions differ from offline ones (row {i}: {live[i]!r} vs {expected[i]!r})"
                )
    if latency_ms > SMOKE_LATENCY_BUDGET_MS:
        problems.append(
            f"latency {latency_ms:.0f} ms for {len(inputs)} records is over the budget of {SMOKE_LATENCY_BUDGET_MS:.0f} ms"
        )
    result = {
        "model_uri": model_uri,
        "records": len(inputs),
        "latency_ms": round(latency_ms, 1),
        "passed": not problems,
        "problems": problems,
    }
    if problems:
        raise SmokeTestFailed(
            f"smoke test of {model_uri} against {settings.serving_url} failed: " + "; ".join(problems)
        )
    return result


def rollback(
    model: str, *, reason: str, actor: str, run_id: str, to_version: str | None = None, store: Store | None = None
) -> dict:
    """Point ``champion`` at ``to_version`` (default: ``previous-champion``) and reload serving."""
    store = store or Store()
    if to_version is None:
        previous = registry.version_for_alias(model, registry.PREVIOUS)
        to_version = previous.version if previous else None
    target = to_version
    if target is None:
        raise DeployError(
            f"model '{model}' has no previous-champion to roll back to; the champion alias was left as it is"
        )
    current = registry.version_for_alias(model, registry.CHAMPION)
    # Recorded even when the champion already is the target: who asked for what, and why.
    event = registry.set_alias(
        model, registry.CHAMPION, str(target), reason=f"rollback: {reason}", actor=actor, store=store,
        extra={"airflow_run_id": run_id, "rolled_back_from": current.version if current else None},
    )  # fmt: skip
    reloaded = reload_serving(model, str(target))
    return {
        "champion": str(target),
        "rolled_back_from": current.version if current else None,
        "serving": reloaded.get("new_version"),
        "event": event,
    }


def recent_rows_of_version(model: ModelConfig, version: str, store: Store | None = None):
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
    return frame.sample(n=min(SMOKE_ROWS, len(frame)), random_state=0)


def deploy_and_verify(model: ModelConfig, version: str, *, actor: str, run_id: str, store: Store | None = None) -> dict:
    """Load ``version`` into serving and smoke-test it; on failure roll back and raise.

    What both ``retrain_<model>`` (after promotion) and ``deploy_<model>`` run. The outcome, and
    any rollback, is added to the run's decision record when it has one.
    """
    store = store or Store()
    try:
        reloaded = reload_serving(model.name, version)
        result = smoke_test(model, version, recent_rows_of_version(model, version, store))
    except DeployError as exc:  # a version that cannot load, or loads and misbehaves
        log.error("%s", exc)
        try:
            rolled = rollback(model.name, reason=str(exc)[:1500], actor=actor, run_id=run_id, store=store)
        except DeployError as rollback_error:
            store.update_json(
                decision_record_key(model.name, run_id),
                smoke_test={"passed": False, "error": str(exc)},
                rollback={"error": str(rollback_error)},
            )
            raise SmokeTestFailed(f"{exc}\nRollback impossible: {rollback_error}") from exc
        store.update_json(
            decision_record_key(model.name, run_id),
            smoke_test={"passed": False, "error": str(exc)},
            rollback={k: v for k, v in rolled.items() if k != "event"},
        )
        raise SmokeTestFailed(
            f"{exc}\nRolled back: champion is version {rolled['champion']} again (was {rolled['rolled_back_from']}); serving runs {rolled['serving']}."
        ) from exc
    store.update_json(
        decision_record_key(model.name, run_id),
        deployment={"version": str(version), "previous_served": reloaded.get("old_version")},
        smoke_test=result,
    )
    return {"version": str(version), "previous_served": reloaded.get("old_version"), "smoke_test": result}
