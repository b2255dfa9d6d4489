"""Airflow plugin: the Models pages (modelops.ui.app) under /modelops, a "Models" entry in the
navigation bar and a "Model" tab on every DAG's page.

Hrefs and the icon are relative: Airflow's UI resolves them against its base URL (``<base href>``),
so they work behind ``[api] base_url`` too. The app reads its data on the first request; importing
this file loads neither pandas, scikit-learn nor MLflow.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from modelops.ui.app import app

ICON = "modelops/static/models.svg"


class ModelopsUi(AirflowPlugin):
    name = "modelops_ui"
    fastapi_apps = [{"app": app, "url_prefix": "/modelops", "name": "modelops models"}]
    external_views = [
        {
            "name": "Models",
            "href": "modelops/models",
            "destination": "nav",
            "url_route": "models",
            "icon": ICON,
        },
        {
            "name": "Model",
            "href": "modelops/dags/{DAG_ID}",
            "destination": "dag",
            "url_route": "model",
            "icon": ICON,
        },
    ]
