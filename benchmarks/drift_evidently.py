"""Evidently, the drift benchmark's peer: its own venv (it breaks on pandas 3) and the child that
runs its ``DataDriftPreset`` on the benchmark's Parquet files. Used by :mod:`benchmarks.drift`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EVIDENTLY_VERSION = "0.7.23"
EVIDENTLY_VENV = REPO / ".local" / "bench-venvs" / "evidently"
#: What goes into that venv: Evidently breaks on pandas 3; pyarrow reads the shared Parquet files.
EVIDENTLY_REQUIREMENTS = [f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"]
EVIDENTLY_TIMEOUT_S = 300

EVIDENTLY_CHILD = r"""
import json, resource, sys, time

def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

def cpu_s():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

reference_path, current_path, out_path, numeric, categorical = sys.argv[1:6]
numeric, categorical = json.loads(numeric), json.loads(categorical)
import gc
import warnings
import numpy, pandas as pd, pyarrow.parquet, scipy.stats
import evidently
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
warnings.simplefilter("ignore")
gc.collect()
rss_before = maxrss_mb()
cpu_before = cpu_s()
started = time.perf_counter()
reference = pd.read_parquet(reference_path)
current = pd.read_parquet(current_path)
loaded = time.perf_counter()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
current_ds = Dataset.from_pandas(current, data_definition=definition)
reference_ds = Dataset.from_pandas(reference, data_definition=definition)
snapshot = Report([DataDriftPreset()], include_tests=True).run(current_ds, reference_ds)
ran = time.perf_counter()
cpu = cpu_s() - cpu_before
rss_after = maxrss_mb()
result = snapshot.dict()
values = {m["id"]: m for m in result["metrics"]}
features, dataset = {}, None
for test in result["tests"]:
    params = test["metric_config"]["params"]
    if params.get("type") == "evidently:metric_v2:ValueDrift":
        metric = values[test["metric_config"]["metric_id"]]
        features[params["column"]] = {
            "method": params["method"],
            "statistic": metric["value"],
            "threshold": params["threshold"],
            "drifted": test["status"] == "FAIL",
            "test_status": test["status"],
        }
for metric in result["metrics"]:
    if metric["config"].get("type") == "evidently:metric_v2:DriftedColumnsCount":
        dataset = metric["value"]
json.dump({
    "evidently_version": evidently.__version__,
    "pandas_version": pd.__version__,
    "rows": len(current),
    "reference_rows": len(reference),
    "seconds_end_to_end": ran - started,
    "seconds_read_parquet": loaded - started,
    "seconds_compute": ran - loaded,
    "cpu_seconds": cpu,
    "peak_rss_mb": rss_after,
    "rss_before_data_mb": rss_before,
    "peak_rss_delta_mb": rss_after - rss_before,
    "dataset_drift": dataset,
    "features": features,
}, open(out_path, "w"))
"""


def run_evidently(
    python: Path, reference: Path, current: Path, out: Path, timeout: float = EVIDENTLY_TIMEOUT_S
) -> dict:
    """Evidently's DataDriftPreset on the same files, in its own venv (a child of its own)."""
    from benchmarks.drift import CATEGORICAL, NUMERIC, _run_child

    argv = [
        str(python),
        "-c",
        EVIDENTLY_CHILD,
        str(reference),
        str(current),
        str(out),
        json.dumps(list(NUMERIC)),
        json.dumps(list(CATEGORICAL)),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["DO_NOT_TRACK"] = "1"  # Evidently's telemetry opt-out
    return _run_child(argv, out, timeout, env)


# ------------------------------------------------------------------------------------------------
# Evidently's venv
# ------------------------------------------------------------------------------------------------


def _venv_versions(python: Path) -> dict | None:
    code = (
        "import json, evidently, pandas, numpy, scipy, pyarrow;"
        "print(json.dumps({'evidently': evidently.__version__, 'pandas': pandas.__version__,"
        "'numpy': numpy.__version__, 'scipy': scipy.__version__, 'pyarrow': pyarrow.__version__}))"
    )
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_evidently() -> dict:
    """Create the Evidently venv if missing; returns {"python", "versions", "installed_now"} or {"error"}."""
    python = EVIDENTLY_VENV / "bin" / "python"
    versions = _venv_versions(python) if python.exists() else None
    if versions and versions["evidently"] == EVIDENTLY_VERSION and int(versions["pandas"].split(".")[0]) < 3:
        return {"python": python, "versions": versions, "installed_now": False}
    EVIDENTLY_VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        ["python3.11", "-m", "venv", "--clear", str(EVIDENTLY_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"{' '.join(step[:4])}: {exc}"}
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).splitlines() if "is ignored" not in line]
            return {"error": f"{' '.join(step[:5])} failed (exit {done.returncode})", "output_tail": lines[-15:]}
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    versions = _venv_versions(python)
    if versions is None:
        return {"error": "installed, but `import evidently` fails in its venv"}
    return {
        "python": python,
        "versions": versions,
        "installed_now": True,
        "pip_check": (check.stdout or check.stderr).strip(),
    }
