"""The Models pages inside Airflow (issue 14): what the plugin in ``plugins/modelops_ui.py`` serves.

Three layers, each its own module:

- ``reads``: what the pages show, read through the same modules the DAGs use (``registry``,
  ``layout``, ``decision_record``, ``monitoring.storage``, ``ingest.dead_letters``) and Airflow's
  run history. Plain JSON-ready dicts, no HTML. What is immutable (a finished run's decision
  record, a day's report, by ETag) is cached in process (``cache``).
- ``app``: the FastAPI app mounted under ``/modelops`` by the plugin. Every route checks the
  caller with Airflow's own auth (``auth``); actions trigger the model's DAGs as that user.
- ``pages`` / ``charts``: server-rendered HTML and inline SVG. Nothing is loaded from outside
  the plugin (no CDN, no external fonts).

The shapes ``reads`` returns (keys the pages rely on; every value JSON-safe):

``overview(...) -> {"models": [ModelRow], "invalid": [{"file", "error"}]}`` where ModelRow is
    {"model", "problem_type", "primary_metric",
     "champion": {"version", "since", "metric"} | None,
     "last_retrain": {"run_id", "at", "outcome", "reason"} | None,
         outcome: "promoted" | "kept_champion" | "failed" | "running" | "dry_run"
     "monitoring": {"day", "status"} | None,
         status: "ok" | "drift" | "quality" | "performance" | "no_data"
     "dead_letters": int,          # waiting (status "dead")
     "quarantined_7d": int}        # quarantined files in the last 7 days

``model_page(name, ...) -> dict`` with
    "model", "problem_type", "primary_metric", "champion" (as above),
    "timeline": [{"run_id", "at", "outcome", "reasons": [str], "candidate": {"name", "metric",
                  "version"}, "champion": {"version", "metric"}, "links": {"airflow_run",
                  "mlflow_run", "mlflow_version", "data_docs", "evaluation"}}]   newest first
    "aliases": [{"at", "alias", "from_version", "to_version", "actor", "reason", "run_id",
                 "rollback": bool}]                                            newest first
    "metric_by_version": [{"version", "value", "at"}]                          oldest first
    "days": [{"day", "status", "prediction_drift", "performance", "rows"}]     oldest first
    "heatmap": {"features": [str], "days": [str], "cells": [[float | None]]}
         cells[i][j]: feature i on day j, effect size / its threshold (>= 1: drifted)
    "dead_letters": [{"message_id", "at", "reason", "key"}]
    "quarantined": [{"key", "day", "reason", "report"}]
"""
