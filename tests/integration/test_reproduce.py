"""``python -m modelops.reproduce`` on the running stack: the promoted churn version, trained by
Airflow, is rebuilt from its lineage in a fresh process and matches (predictions, probabilities,
model bytes); its exported script predicts the same; a snapshot object overwritten in S3 is named
and the version is reported as not reproduced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from modelops.config import get_model
from modelops.training.time_split import training_split
from modelops.usercode.models import load_model


def _reproduce(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelops.reproduce", *args],
        capture_output=True, text=True, timeout=1200, env=dict(os.environ), check=False,
    )  # fmt: skip


def _promoted(first_promotion, store) -> tuple[str, dict]:
    """The version the first run promoted, and its decision record."""
    from modelops.layout import decision_record_key

    record = store.get_json(decision_record_key("churn", first_promotion["dag_run_id"]))
    return str(record["registered_version"]), record


def test_a_promoted_version_is_reproduced_and_its_export_predicts_the_same(first_promotion, store, tmp_path):
    version, _ = _promoted(first_promotion, store)

    completed = _reproduce("churn", version, "--json")

    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["verdict"] == "match" and report["reproduced"]
    comparison = report["comparison"]
    assert comparison["predictions"]["identical"] and comparison["predictions"]["rows"] > 100
    assert comparison["deterministic"] and comparison["model_digest"]["identical"]
    assert report["lineage"]["declaration_source"].startswith("recorded")
    assert report["lineage"]["airflow_run_id"] == first_promotion["dag_run_id"]
    assert report["lineage"]["openmp_threads"] == 1  # the stack's OMP_NUM_THREADS, recorded by the fit
    assert not [c for c in report["inputs"] if c["blocks"]]

    exported = _reproduce("churn", version, "--export", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = subprocess.run([sys.executable, str(tmp_path / "export" / "train.py")], capture_output=True, text=True,
                            timeout=1200, env=env, check=False)  # fmt: skip
    assert script.returncode == 0, script.stderr[-3000:]
    got = pd.read_csv(tmp_path / "export" / "predictions.csv", index_col="row", float_precision="round_trip")
    churn = get_model("churn")
    _, test = training_split(churn, first_promotion["dag_run_id"], store)
    registered = load_model(f"models:/churn/{version}")
    assert np.array_equal(got["prediction"].to_numpy(), registered.predict(test[churn.feature_names]))


def test_an_overwritten_snapshot_object_is_named(first_promotion, store):
    version, record = _promoted(first_promotion, store)
    manifest = store.get_json(store.key_of(record["evidence"]["manifest_uri"]))
    key = manifest["objects"][len(manifest["objects"]) // 2]["key"]
    original = store.get_bytes(key)
    try:
        store.put_bytes(key, original.replace(b"\n", b"\r\n", 1), "text/csv")  # the same rows, other bytes

        completed = _reproduce("churn", version, "--json")

        assert completed.returncode == 1, completed.stdout[-4000:] + completed.stderr[-3000:]
        report = json.loads(completed.stdout)
        assert report["verdict"] == "mismatch"
        assert report["changed_inputs"][0] == f"snapshot object {store.uri(key)}"
        assert any(store.uri(key) in reason and "ETag" in reason for reason in report["reasons"]), report["reasons"]
        assert report["comparison"] is None
    finally:
        store.put_bytes(key, original, "text/csv")  # same bytes, same ETag: the version is whole again
    assert _reproduce("churn", version, "--json").returncode == 0
