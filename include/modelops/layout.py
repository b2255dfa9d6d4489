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


# --- data: the raw landing zone, validated zone, GX results, baselines ----------------------


def raw_prefix(model: str) -> str:
    """The landing zone of a model's raw batches (a declaration may name another: ``data.raw_prefix``)."""
    return f"raw/{model}/"


def raw_batch_key(model: str, day: dt.date, filename: str) -> str:
    """A raw batch file in the default landing zone's partition of ``day``."""
    return f"{partition('raw', model, day)}{filename}"


def validated_prefix(model: str) -> str:
    """Where ingestion copies the batches that passed the model's suite (``validated/<model>/``)."""
    return f"validated/{model}/"


# --- training: snapshots, evaluations, MLflow experiments -----------------------------------


def training_run_prefix(model: str, run_id: str) -> str:
    """``snapshots/<model>/<run_id>/``: the retrain run's folder (manifest, validation, baseline, evaluation)."""
    return f"snapshots/{model}/{safe_run_id(run_id)}/"


def training_validation_key(model: str, run_id: str) -> str:
    """The snapshot's Great Expectations result (JSON), next to its manifest."""
    return training_run_prefix(model, run_id) + "validation.json"


def training_data_docs_key(model: str, run_id: str) -> str:
    """The snapshot's Data Docs page (HTML), next to its JSON result."""
    return training_run_prefix(model, run_id) + "validation.html"


def training_baseline_key(model: str, run_id: str) -> str:
    """The per-feature baseline profiled on the snapshot (monitoring compares live data with it)."""
    return training_run_prefix(model, run_id) + "baseline.json"


def evaluation_key(model: str, run_id: str) -> str:
    """Candidate and champion measured on the run's held-out split: the gate's evidence."""
    return training_run_prefix(model, run_id) + "evaluation.json"


def submission_key(model: str, run_id: str) -> str:
    """What a submission (a model trained elsewhere) was checked for, and who sent it from which run."""
    return training_run_prefix(model, run_id) + "submission.json"


def experiment_name(model: str) -> str:
    """The MLflow experiment of the model's retrain runs (not an S3 key, but named here with them)."""
    return f"modelops/{model}"


# --- registry and deploy: alias history -------------------------------------------------------


def alias_history_key(model: str) -> str:
    """Every move of the model's registry aliases, appended: "what served at time T" is one read."""
    return f"registry/{model}/alias-history.json"


# --- ingest: per-file results, errors, in-flight markers, reports, quarantine ------------------


def ingest_object_id(key: str, etag: str) -> str:
    """One raw file version: the idempotency key of ingestion."""
    import hashlib

    return hashlib.sha256(f"{key}\n{etag}".encode()).hexdigest()


def ingest_results_prefix(model: str) -> str:
    return f"ingest/{model}/results/"


def ingest_result_key(model: str, key: str, etag: str) -> str:
    """The result marker of one raw file version: its presence means "ingested, do not redo"."""
    return f"{ingest_results_prefix(model)}{ingest_object_id(key, etag)}.json"


def ingest_error_key(model: str, message_id: str) -> str:
    """The error record of one message (its failed attempts), read by the dead-letter handler."""
    return f"ingest/{model}/errors/{message_id}.json"


def ingest_inflight_prefix(model: str) -> str:
    return f"ingest/{model}/inflight/"


def ingest_inflight_key(model: str, worker: str) -> str:
    """What one consumer process holds right now (removed when it stops)."""
    return f"{ingest_inflight_prefix(model)}{worker}.json"


def ingest_destination_key(model: str, rest: str, verdict: str) -> str:
    """``validated/<model>/<rest>`` or ``quarantine/<model>/<rest>`` for the raw file ``<raw prefix><rest>``."""
    return f"{'validated' if verdict == 'validated' else 'quarantine'}/{model}/{rest}"


def validation_report_keys(model: str, rest: str, verdict: str) -> tuple[str, str]:
    """The JSON and HTML validation report of the raw file ``<raw prefix><rest>``. Quarantined files
    get their report beside them, where operators look; validated files get it under
    ``ingest/<model>/reports/``, so ``validated/`` holds only data training can read."""
    base = f"quarantine/{model}/{rest}" if verdict == "quarantined" else f"ingest/{model}/reports/{rest}"
    return f"{base}.validation.json", f"{base}.validation.html"


def dead_letters_prefix(model: str) -> str:
    return f"dead-letters/{model}/"


def dead_letter_key(model: str, message_id: str) -> str:
    """The record of one message that reached the dead-letter queue (status ``dead`` or ``redriven``)."""
    return f"{dead_letters_prefix(model)}{message_id}.json"


# --- serving: captured traffic and feedback ---------------------------------------------------

#: The two streams serving writes (and monitoring reads), each partitioned like ``partition``.
CAPTURE = "capture"
FEEDBACK = "feedback"
#: The shadow version's predictions on the same requests (``shadow/<model>/dt=YYYY-MM-DD/``): a
#: stream of its own, so monitoring never mistakes them for served ones (joined by request id).
SHADOW = "shadow"


def capture_file_key(stream: str, model: str, day: dt.date, file_id: str) -> str:
    """``<stream>/<model>/dt=YYYY-MM-DD/<file_id>.parquet``: one capture file (``stream`` is ``capture``, ``feedback`` or ``shadow``)."""
    return f"{partition(stream, model, day)}{file_id}.parquet"


# --- serving: worker heartbeats ----------------------------------------------------------------

#: Where every serving worker (a uvicorn process, or a replica) records what it serves.
SERVING_WORKERS_PREFIX = "serving/workers/"


def serving_worker_key(worker_id: str) -> str:
    """``serving/workers/<worker id>.json``: one serving worker's heartbeat (what it serves, when it last
    said so); overwritten every poll interval, deleted when the worker stops cleanly."""
    return f"{SERVING_WORKERS_PREFIX}{safe_run_id(worker_id)}.json"


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


def shadow_evidence_key(model: str, day: dt.date) -> str:
    """The day's champion-vs-shadow comparison (``monitoring/<model>/dt=<day>/shadow.json``): one
    object per model and day, so re-running a day overwrites it; the gate reads N of them."""
    return partition(MONITORING, model, day) + "shadow.json"
