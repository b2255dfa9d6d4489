"""Shadow deployment on the running stack: ``deploy_churn`` with ``mode=shadow`` puts a gated
version beside the champion; every answer stays the champion's, both predictions are captured
apart (``capture/`` and ``shadow/``, joined by request id); ``mode=end_shadow`` ends it on record."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pandas as pd
import requests
from tests.support.polling import wait_until
from tests.support.shadow import gated_copy_of_the_champion

from modelops import registry
from modelops.config import get_model
from modelops.layout import decision_record_key
from modelops.local import datagen


def _records(n: int, seed: int) -> list[dict]:
    import datetime as dt

    model = get_model("churn")
    frame = datagen.generate_batch("churn", dt.date(2026, 11, 21), n, seed=seed)[model.feature_names]
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _described(stack) -> dict:
    models = requests.get(f"{stack.config.serving_url}/models", timeout=10).json()["models"]
    return next(m for m in models if m["name"] == "churn")


def _rows(store, prefix: str, ids: set[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(io.BytesIO(store.get_bytes(o.key))) for o in store.list(prefix)]
    rows = pd.concat(frames) if frames else pd.DataFrame(columns=["request_id", "record_index"])
    return rows[rows["request_id"].isin(ids)]


def test_a_shadow_scores_every_request_apart_and_ends_on_record(first_promotion, stack, airflow, store, mlflow_client):
    champion = registry.version_for_alias("churn", registry.CHAMPION, mlflow_client)
    shadow, shadow_run = gated_copy_of_the_champion("churn", mlflow_client, store)

    refused = airflow.run_and_wait("deploy_churn", {"version": "champion", "mode": "shadow"}, timeout=600)
    assert refused["state"] == "failed", "the champion itself must not be accepted as its own shadow"

    run = airflow.run_and_wait("deploy_churn", {"version": shadow, "mode": "shadow"}, timeout=600)
    assert run["state"] == "success", airflow.failure_logs("deploy_churn", run["dag_run_id"])
    assert str(registry.version_for_alias("churn", registry.SHADOW, mlflow_client).version) == shadow
    assert _described(stack)["shadow"] == shadow and _described(stack)["version"] == str(champion.version)

    sent: dict[str, int] = {}
    for seed, size in ((11, 1), (12, 5), (13, 20)):
        reply = requests.post(
            f"{stack.config.serving_url}/models/churn/predict", json={"records": _records(size, seed)}, timeout=30
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["version"] == str(champion.version)  # the answer is always the champion's
        sent[reply.json()["request_id"]] = size
    total = sum(sent.values())
    for prefix in ("capture/churn/", "shadow/churn/"):
        wait_until(lambda p=prefix: len(_rows(store, p, set(sent))) >= total, f"{total} rows in {prefix}", timeout=60)
    served, shadowed = _rows(store, "capture/churn/", set(sent)), _rows(store, "shadow/churn/", set(sent))
    assert set(served["model_version"]) == {str(champion.version)} and len(served) == total
    assert set(shadowed["model_version"]) == {shadow} and len(shadowed) == total
    assert not set(get_model("churn").feature_names) & set(shadowed.columns)  # keys and outputs only
    joined = served.merge(shadowed, on=["request_id", "record_index"], suffixes=("", "_shadow"))
    assert len(joined) == total
    assert (joined["prediction"] == joined["prediction_shadow"]).all()  # the same model, scored twice
    metrics = requests.get(f"{stack.config.serving_url}/metrics", timeout=10).text
    assert 'modelops_shadow_scored_records_total{model="churn"}' in metrics

    if len(os.sched_getaffinity(0)) >= 2:
        _a_worker_whose_shadow_has_cpus_of_its_own(stack, store, shadow)

    ended = airflow.run_and_wait("deploy_churn", {"mode": "end_shadow"}, timeout=600)
    assert ended["state"] == "success", airflow.failure_logs("deploy_churn", ended["dag_run_id"])
    assert registry.version_for_alias("churn", registry.SHADOW, mlflow_client) is None
    assert _described(stack)["shadow"] is None
    life = store.get_json(decision_record_key("churn", shadow_run))["shadow"]
    assert life["status"] == "ended" and life["champion_at_start"] == str(champion.version)
    history = [e for e in registry.alias_history("churn", store) if e["alias"] == registry.SHADOW]
    assert history[-1]["to_version"] is None and str(history[-1]["from_version"]) == shadow


def _a_worker_whose_shadow_has_cpus_of_its_own(stack, store, shadow: str) -> None:
    """A second serving process on the stack with ``MODELOPS_SERVING_SHADOW_CPUS``: its shadow
    process (every thread) runs on that CPU only, the worker on the others, and the shadow's rows
    still land in ``shadow/``."""
    from modelops.local.stack_config import free_port

    own = max(os.sched_getaffinity(0))
    port = free_port()
    env = stack.config.environment() | {"MODELOPS_SERVING_SHADOW_CPUS": str(own), "MODELOPS_SERVING_WORKERS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "modelops.serving", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def shadow_loaded() -> bool:
            try:
                health = requests.get(f"{base}/health", timeout=5).json()
            except requests.RequestException:
                return False
            return health["shadow"].get("process", {}).get("loaded", {}).get("churn") == shadow

        wait_until(shadow_loaded, "the second worker's shadow process", timeout=180, interval=0.2)
        reply = requests.post(f"{base}/models/churn/predict", json={"records": _records(3, 21)}, timeout=30)
        assert reply.status_code == 200, reply.text
        request_id = reply.json()["request_id"]
        child = requests.get(f"{base}/health", timeout=5).json()["shadow"]["process"]["pid"]

        def cpus_of(pid: int) -> set[frozenset[int]]:
            return {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{pid}/task")}

        assert cpus_of(child) == {frozenset({own})}
        assert cpus_of(worker.pid) == {frozenset(os.sched_getaffinity(0) - {own})}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)  # the child flushes its shadow rows as the worker stops
        worker.wait(60)
    wait_until(lambda: len(_rows(store, "shadow/churn/", {request_id})) == 3, "the pinned shadow's rows", timeout=60)
