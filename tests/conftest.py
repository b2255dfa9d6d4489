"""Test-wide settings: Airflow must not touch a developer's real AIRFLOW_HOME or database."""

from __future__ import annotations

import os
import tempfile

_home = tempfile.mkdtemp(prefix="modelops-test-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _home)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
