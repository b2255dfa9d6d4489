"""Airflow plugin: the API server refuses triggers dated in the future (see modelops_airflow.trigger_guard)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from modelops_airflow.trigger_guard import RefuseFutureTriggers


class ModelopsGuards(AirflowPlugin):
    name = "modelops_guards"
    fastapi_root_middlewares = [{"middleware": RefuseFutureTriggers, "name": "refuse future-dated triggers"}]
