"""What the Models pages show, as JSON-ready dicts (shapes in :mod:`modelops.ui`).

Everything is read through the modules the DAGs write with (``layout`` keys, ``registry``,
``decision_record``, ``monitoring.storage``, ``ingest.dead_letters``), one LIST per prefix; a
listed object is condensed once per ETag (:mod:`.cache`). A failed retrain run leaves no decision
record, so its outcome comes from Airflow's runs of ``retrain_<model>`` (``runs``, see
:func:`airflow_runs`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelops import config as model_config
from modelops import decision_record, registry
from modelops.dagkit import dag_id
from modelops.ingest.dead_letters import list_dead_letters
from modelops.layout import (
    alias_history_key,
    decision_record_key,
    evaluation_key,
    experiment_name,
    ingest_destination_key,
    monitoring_prefix,
    partition_date,
    safe_run_id,
    training_data_docs_key,
    training_run_prefix,
    validation_report_keys,
)
from modelops.monitoring import storage
from modelops.monitoring.dates import as_date, utc
from modelops.store import Store
from modelops.ui.cache import (
    CachedReads,
    LruCache,
    alias_events,
    dead_letter_fields,
    decision_fields,
    report_fields,
    validation_failures,
)

log = logging.getLogger(__name__)

#: ``runs(dag_id)``: Airflow's runs of a DAG, ``[{"run_id", "state", "start_date", "end_date", "logical_date"}]``.
Runs = Callable[[str], list[Mapping[str, Any]]]
RUNNING_STATES = frozenset({"queued", "running", "restarting", "scheduled", "up_for_retry", "up_for_reschedule"})
QUARANTINE_DAYS = 7
HTML, JSON = "text/html; charset=utf-8", "application/json"
#: ``artifact(kind=...)``: the URL segment of the link, the key it serves, its content type.
ARTIFACTS = {"data-docs": (training_data_docs_key, HTML), "evaluation": (evaluation_key, JSON)}


def _iso(value: Any) -> str | None:
    return utc(value).isoformat() if value else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _folder(key: str) -> str:
    """``a/b/`` of ``a/b/<name>``: the prefix every such key of the model shares."""
    return key.rpartition("/")[0] + "/"


def _check_name(model: str) -> None:
    if not model_config.NAME_PATTERN.match(model or ""):
        raise ValueError(f"model: '{model}' is not a model name (lower-case letters, digits, underscores)")


def _missing_as_key_error(store: Store, key: str, what: str) -> bytes:
    from botocore.exceptions import ClientError

    try:
        return store.get_bytes(key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            raise KeyError(f"no {what} at {store.uri(key)}") from None
        raise


# --- Airflow ---------------------------------------------------------------------------------


def airflow_runs(dag_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` runs of ``dag_id`` from Airflow's metadata DB (inside the API server)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(limit)
    with create_session() as session:
        return [
            {
                "run_id": run.run_id,
                "state": _text(getattr(run.state, "value", run.state)),
                "start_date": _iso(run.start_date),
                "end_date": _iso(run.end_date),
                "logical_date": _iso(run.logical_date),
            }
            for run in session.scalars(query)
        ]


def retrain_outcome(record: Mapping[str, Any] | None, state: str | None) -> tuple[str, list[str]]:
    """A retrain run's outcome and reasons, from its condensed decision record and Airflow state."""
    if record is None:
        if state in RUNNING_STATES:
            return "running", [f"the run is {state}; the gate has not decided yet"]
        if state == "success":
            return "kept_champion", ["the run ended without a decision: no training data in its window"]
        return "failed", [f"the Airflow run {state or 'ended'} before the gate decided (no decision record)"]
    reasons = list(record["reasons"])
    if record["dry_run"]:
        return "dry_run", reasons
    if not record["promote"]:
        return "kept_champion", reasons
    if record["rollback"]:
        return "failed", [record["rollback"], *reasons]
    if record["promoted"]:
        return "promoted", reasons
    if state in RUNNING_STATES:
        return "running", reasons
    if state == "failed":
        return "failed", ["the Airflow run failed after the gate passed, before promotion", *reasons]
    return "kept_champion", ["passed the gate but was not promoted (approval refused or not given)", *reasons]


# --- decision records, timeline, versions ----------------------------------------------------


def _records(reads: CachedReads, model: str) -> dict[str, dict[str, Any]]:
    """Condensed decision records by safe run id."""
    view, out = reads.condensing(decision_fields), {}
    for info in view.list(_folder(decision_record_key(model, "_"))):
        stem = info.key.rpartition("/")[2].removesuffix(".json")
        if decision_record_key(model, stem) != info.key:
            continue
        record = decision_record.load(view, model, stem)
        if record:
            out[safe_run_id(record["run_id"] or stem)] = record
    return out


def _links(model: str, run_id: str, record: dict | None, listed: set[str], mlflow: tuple[str, str | None]):
    base, experiment_id = mlflow
    quoted = quote(run_id, safe="")
    candidate_run = record["candidate"]["mlflow_run_id"] if record else None
    version = record["registered_version"] if record else None
    here = f"models/{model}/runs/{quoted}"
    return {
        "airflow_run": f"/dags/{_retrain_dag(model)}/runs/{quoted}",
        "mlflow_run": f"{base}/#/experiments/{experiment_id}/runs/{candidate_run}"
        if base and experiment_id and candidate_run
        else None,
        "mlflow_version": f"{base}/#/models/{model}/versions/{version}" if base and version else None,
        "data_docs": f"{here}/data-docs" if training_data_docs_key(model, run_id) in listed else None,
        "evaluation": f"{here}/evaluation" if evaluation_key(model, run_id) in listed else None,
    }


def _timeline(model: str, records: dict, runs: list[Mapping[str, Any]], links=None) -> list[dict[str, Any]]:
    """One entry per retrain run (decision record, Airflow run or both), newest first."""
    by_run = {safe_run_id(run["run_id"]): run for run in runs if run.get("run_id")}
    entries = []
    for safe in set(records) | set(by_run):
        record, run = records.get(safe), by_run.get(safe) or {}
        outcome, reasons = retrain_outcome(record, run.get("state"))
        run_id = run.get("run_id") or (record or {}).get("run_id") or safe
        at = _iso((record or {}).get("decided_at") or run.get("end_date") or run.get("start_date"))
        entry = {"run_id": run_id, "at": at or _iso(run.get("logical_date")), "outcome": outcome, "reasons": reasons}
        if links is not None:
            empty = {"name": None, "metric": None, "version": None}
            candidate = {**record["candidate"], "version": record["registered_version"]} if record else empty
            candidate.pop("mlflow_run_id", None)
            entry |= {
                "candidate": candidate,
                "champion": record["champion"] if record else {"version": None, "metric": None},
                "links": links(run_id, record),
            }
        entries.append(entry)
    return sorted(entries, key=lambda e: (e["at"] or "", e["run_id"]), reverse=True)


def _retrain_dag(model: str) -> str:
    return dag_id("retrain", model)


def _runs_of(runs: Runs | None, model: str) -> list[Mapping[str, Any]]:
    return list(runs(_retrain_dag(model))) if runs is not None else []


def _experiment_id(mlflow_client, model: str) -> str | None:
    try:
        experiment = mlflow_client.get_experiment_by_name(experiment_name(model))
    except Exception as exc:  # noqa: BLE001 - a missing link, not a broken page
        log.warning("%s: no MLflow experiment id for links: %s", model, exc)
        return None
    return experiment.experiment_id if experiment is not None else None


def _metric_by_version(model: str, mlflow_client, records: dict) -> list[dict[str, Any]]:
    """Every registry version's test primary metric (from its run's decision record), oldest first."""
    out = []
    for version in sorted(mlflow_client.search_model_versions(f"name='{model}'"), key=lambda v: int(v.version)):
        run_id = dict(version.tags or {}).get("airflow_run_id")
        record = records.get(safe_run_id(run_id)) if run_id else None
        created = version.creation_timestamp
        out.append(
            {
                "version": str(version.version),
                "value": record["candidate"]["metric"] if record else None,
                "at": dt.datetime.fromtimestamp(created / 1000, dt.UTC).isoformat() if created else None,
            }
        )
    return out


# --- registry aliases and champion -----------------------------------------------------------


def _aliases(reads: CachedReads, model: str) -> list[dict[str, Any]]:
    """Alias moves, newest first (one LIST of the history's key, one GET per ETag)."""
    view = reads.condensing(alias_events)
    if not view.listed(alias_history_key(model)):
        return []
    return list(reversed(registry.alias_history(model, view)))


def _champion(model: str, mlflow_client, records: dict, aliases: list[dict]) -> dict[str, Any] | None:
    info = registry.champion_info(model, mlflow_client)
    if info is None:
        return None
    run_id = info["tags"].get("airflow_run_id")
    record = records.get(safe_run_id(run_id)) if run_id else None
    since = next(
        (e["at"] for e in aliases if e["alias"] == registry.CHAMPION and e["to_version"] == info["version"]), None
    )
    return {"version": info["version"], "since": since, "metric": record["candidate"]["metric"] if record else None}


# --- monitoring days -------------------------------------------------------------------------


def _report_days(reads: CachedReads, model: str) -> list[dt.date]:
    """Days with a stored report, oldest first (one LIST of the model's monitoring prefix)."""
    days = []
    for info in reads.list(monitoring_prefix(model)):
        day = partition_date(info.key)
        if day is not None and info.key == storage.report_keys(model, day)["report_json"]:
            days.append(day)
    return sorted(days)


def _days(reads: CachedReads, config: model_config.ModelConfig, max_days: int) -> tuple[list[dict], dict]:
    view = reads.condensing(report_fields)
    reports = [storage.read_report(view, config.name, day) for day in _report_days(reads, config.name)[-max_days:]]
    days = [{k: r[k] for k in ("day", "status", "prediction_drift", "performance", "rows")} for r in reports]
    features = config.feature_names
    heatmap = {
        "features": features,
        "days": [r["day"] for r in reports],
        "cells": [[r["features"].get(feature) for r in reports] for feature in features],
    }
    return days, heatmap


def _last_monitoring(reads: CachedReads, model: str) -> dict[str, Any] | None:
    days = _report_days(reads, model)
    if not days:
        return None
    report = storage.read_report(reads.condensing(report_fields), model, days[-1])
    return {"day": days[-1].isoformat(), "status": report["status"]}


# --- dead letters and quarantine -------------------------------------------------------------


def _dead_letters(reads: CachedReads, config: model_config.ModelConfig) -> list[dict[str, Any]]:
    """Waiting dead letters (status ``dead``), oldest first, with the raw file each was about."""
    view = reads.condensing(dead_letter_fields(reads.bucket, config))
    return [
        {"message_id": r["message_id"], "at": r["dead_lettered_at"], "reason": r["last_error"], "key": r["key"]}
        for r in list_dead_letters(config.name, status="dead", store=view)
    ]


def _quarantined(reads: CachedReads, model: str, today: dt.date) -> list[dict[str, Any]]:
    """Quarantined data files of the last :data:`QUARANTINE_DAYS` days, newest first."""
    prefix = ingest_destination_key(model, "", "quarantined")
    suffixes = tuple(k.rpartition("/")[2] for k in validation_report_keys(model, "", "quarantined"))
    listed = {info.key for info in reads.list(prefix)}
    view, since, out = reads.condensing(validation_failures), today - dt.timedelta(days=QUARANTINE_DAYS - 1), []
    for key in listed:
        day = partition_date(key)
        if key.endswith(suffixes) or day is None or not since <= day <= today:
            continue
        json_key, html_key = validation_report_keys(model, key[len(prefix) :], "quarantined")
        out.append(
            {
                "key": key,
                "day": day.isoformat(),
                "reason": view.get_json(json_key) if json_key in listed else None,
                "report": html_key if html_key in listed else None,
            }
        )
    return sorted(out, key=lambda q: (q["day"], q["key"]), reverse=True)


# --- the pages -------------------------------------------------------------------------------


def _context(store, mlflow_client, today, cache):
    reads = CachedReads(store if store is not None else Store(), cache)
    return reads, mlflow_client or registry.client(), today or dt.datetime.now(dt.UTC).date()


def _heading(config: model_config.ModelConfig) -> dict[str, Any]:
    return {"model": config.name, "problem_type": config.problem_type, "primary_metric": config.metrics.primary}


def overview(
    *, store: Store | None = None, mlflow_client=None, runs: Runs | None = None, today: dt.date | None = None,
    models_dir: str | Path | None = None, cache: LruCache | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One row per valid declaration, and the invalid ones with their error."""
    reads, mlflow_client, today = _context(store, mlflow_client, today, cache)
    models, errors = model_config.load_models_and_errors(models_dir)
    rows = []
    for config in models:
        records = _records(reads, config.name)
        newest = next(iter(_timeline(config.name, records, _runs_of(runs, config.name))), None)
        last = (
            {k: newest[k] for k in ("run_id", "at", "outcome")} | {"reason": (newest["reasons"] or [None])[0]}
            if newest
            else None
        )
        rows.append(
            _heading(config)
            | {
                "champion": _champion(config.name, mlflow_client, records, _aliases(reads, config.name)),
                "last_retrain": last,
                "monitoring": _last_monitoring(reads, config.name),
                "dead_letters": len(_dead_letters(reads, config)),
                "quarantined_7d": len(_quarantined(reads, config.name, today)),
            }
        )
    invalid = [{"file": e.path.name if e.path else None, "error": str(e)} for e in errors]
    return {"models": rows, "invalid": invalid}


def _declared(name: str, models_dir: str | Path | None) -> model_config.ModelConfig:
    _check_name(name)
    return model_config.get_model(name, models_dir)  # ModelNotDeclared is a KeyError


def model_page(
    name: str, *, store: Store | None = None, mlflow_client=None, runs: Runs | None = None,
    today: dt.date | None = None, mlflow_ui: str | None = None, models_dir: str | Path | None = None,
    cache: LruCache | None = None, max_days: int = 365,
) -> dict[str, Any]:  # fmt: skip
    """The model's page; KeyError for an undeclared model, ConfigError for an invalid declaration."""
    config = _declared(name, models_dir)
    reads, mlflow_client, today = _context(store, mlflow_client, today, cache)
    records, aliases = _records(reads, name), _aliases(reads, name)
    listed = {info.key for info in reads.list(_folder(training_run_prefix(name, "_").rstrip("/")))}
    base = (mlflow_ui or "").rstrip("/")
    mlflow = (base, _experiment_id(mlflow_client, name) if base else None)
    days, heatmap = _days(reads, config, max_days)
    return _heading(config) | {
        "champion": _champion(name, mlflow_client, records, aliases),
        "timeline": _timeline(
            name, records, _runs_of(runs, name), lambda run_id, record: _links(name, run_id, record, listed, mlflow)
        ),
        "aliases": aliases,
        "metric_by_version": _metric_by_version(name, mlflow_client, records),
        "days": days,
        "heatmap": heatmap,
        "dead_letters": _dead_letters(reads, config),
        "quarantined": _quarantined(reads, name, today),
    }


# --- files the pages link to -----------------------------------------------------------------


def artifact(model: str, run_id: str, kind: str, *, store: Store | None = None) -> tuple[bytes, str]:
    """A retrain run's Data Docs page (``data-docs``) or evaluation (``evaluation``)."""
    _check_name(model)
    if kind not in ARTIFACTS:
        raise ValueError(f"kind: '{kind}' is not one of {sorted(ARTIFACTS)}")
    key_of, content_type = ARTIFACTS[kind]
    store = store if store is not None else Store()
    return _missing_as_key_error(store, key_of(model, run_id), f"{kind} of run {run_id}"), content_type


def report(model: str, day: str | dt.date, kind: str, *, store: Store | None = None) -> tuple[bytes, str]:
    """A day's monitoring report, ``html`` or ``json``."""
    _check_name(model)
    if kind not in ("html", "json"):
        raise ValueError(f"kind: '{kind}' is not 'html' or 'json'")
    try:
        keys = storage.report_keys(model, as_date(day))
    except ValueError:
        raise ValueError(f"day: '{day}' is not a date (YYYY-MM-DD)") from None
    store = store if store is not None else Store()
    key = keys[f"report_{kind}"]
    return _missing_as_key_error(store, key, f"{kind} report of {day}"), HTML if kind == "html" else JSON


def validation_report(model: str, key: str, *, store: Store | None = None) -> tuple[bytes, str]:
    """A file's validation report: only keys under ``quarantine/<model>/`` or ``ingest/<model>/reports/``."""
    _check_name(model)
    allowed, types = [], {}
    for verdict in ("quarantined", "validated"):
        for report_key, content_type in zip(validation_report_keys(model, "", verdict), (JSON, HTML), strict=True):
            folder, _, suffix = report_key.rpartition("/")
            allowed.append(folder + "/")
            types[suffix] = content_type
    suffix = next((s for s in types if key.endswith(s)), None)
    if not key.startswith(tuple(allowed)) or ".." in key.split("/"):
        raise ValueError(f"key: '{key}' is not under {' or '.join(dict.fromkeys(allowed))}")
    if suffix is None:
        raise ValueError(f"key: '{key}' is not a validation report (ends with {' or '.join(types)})")
    store = store if store is not None else Store()
    return _missing_as_key_error(store, key, "validation report"), types[suffix]
