"""Every S3 key the platform reads or writes, built in one place (docs/ARCHITECTURE.md, "S3 layout").

Keys are derived from the model, the partition date and the run id only, so a cleared and re-run
task overwrites the same objects instead of adding new ones.
"""

from __future__ import annotations

import datetime as dt
import re

_PARTITION = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/")


def partition(prefix: str, model: str, day: dt.date) -> str:
    """``<prefix>/<model>/dt=YYYY-MM-DD/`` for raw, validated, quarantine, capture, feedback, monitoring."""
    return f"{prefix}/{model}/dt={day.isoformat()}/"


def partition_date(key: str) -> dt.date | None:
    match = _PARTITION.search(key)
    return dt.date.fromisoformat(match.group(1)) if match else None


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ':' and '+'; keep keys portable and readable."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", run_id)


def snapshot_key(model: str, run_id: str) -> str:
    return f"snapshots/{model}/{safe_run_id(run_id)}/manifest.json"


def decision_record_key(model: str, run_id: str) -> str:
    """The retrain run's decision record (what the gate decided, on what evidence, what followed)."""
    return f"decisions/{model}/{safe_run_id(run_id)}.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# --- data: validated zone, GX results, baselines ------------------------------------------


def validated_prefix(model: str) -> str:
    """Where ingestion copies the batches that passed the model's suite (``validated/<model>/``)."""
    return f"validated/{model}/"


# --- training: snapshots, evaluations, MLflow experiments -----------------------------------


# --- registry and deploy: alias history -------------------------------------------------------


def alias_history_key(model: str) -> str:
    """Every move of the model's registry aliases, appended: "what served at time T" is one read."""
    return f"registry/{model}/alias-history.json"


# --- ingest: per-file results, errors, in-flight markers, reports, quarantine ------------------


# --- serving: captured traffic and feedback ---------------------------------------------------


# --- monitoring: daily reports ------------------------------------------------------------------


MONITORING = "monitoring"


def monitoring_prefix(model: str) -> str:
    """Every monitored day of ``model`` (``monitoring/<model>/``): reports and retrain decisions."""
    return f"{MONITORING}/{model}/"


def monitoring_report_keys(model: str, day: dt.date) -> dict[str, str]:
    """The day's monitoring report, ``report_json`` and ``report_html`` (``monitoring/<model>/dt=<day>/``).

    Not the ingest stage's per-file validation reports: these are one model's daily traffic report.
    """
    prefix = partition(MONITORING, model, day)
    return {"report_json": prefix + "report.json", "report_html": prefix + "report.html"}


def retrain_decision_key(model: str, day: dt.date) -> str:
    """The day's monitoring decision (retrain or not): one object per model and day, so re-deciding
    a day overwrites its own key, never another's. Not the retrain run's decision record."""
    return partition(MONITORING, model, day) + "decision.json"
