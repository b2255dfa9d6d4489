"""The serving endpoint: every configured model's champion behind one HTTP service.

``python -m modelops.serving`` runs it; :func:`modelops.serving.app.create_app` builds the
FastAPI app (tests use it directly). Capture of traffic to S3 lives in
:mod:`modelops.serving.capture`. The app module imports FastAPI, pandas and MLflow, so it is
imported lazily here: importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from modelops.serving.app import create_app

        return create_app
    raise AttributeError(f"module 'modelops.serving' has no attribute {name!r}")
