"""The serving service's HTTP API, as deployment uses it: load a version, ask what serves, predict.

Kept apart from the deploy decisions so the rollout and the post-deploy check read as what they
decide, and so a test can stand a fake endpoint in for the real one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from modelops import settings as _settings

log = logging.getLogger(__name__)


class DeployError(RuntimeError):
    """Serving could not be asked, refused, or a deployed version misbehaved; the message says which."""


def _headers(settings) -> dict:
    if not settings.serving_token:
        raise DeployError("MODELOPS_SERVING_TOKEN is not set: cannot ask the serving service to reload")
    return {"Authorization": f"Bearer {settings.serving_token}"}


def reload_serving(model: str, version: str | None = None, timeout: float = 300.0) -> dict:
    """Hot-swap the served version (the champion when ``version`` is None)."""
    settings = _settings.load()
    body = {"version": str(version)} if version is not None else {}
    try:
        response = requests.post(
            f"{settings.serving_url}/models/{model}/reload", json=body, headers=_headers(settings), timeout=timeout
        )
    except requests.RequestException as exc:
        raise DeployError(f"serving at {settings.serving_url} did not answer the reload of '{model}': {exc}") from exc
    if response.status_code != 200:
        raise DeployError(
            f"serving refused to load '{model}' version {version or 'champion'}: {response.status_code} {response.text[:1000]}"
        )
    result = response.json()
    log.info("serving now runs %s version %s (was %s)", model, result.get("new_version"), result.get("old_version"))
    return result


def reload_shadow(model: str, timeout: float = 300.0) -> dict:
    """Ask serving to follow the ``shadow`` alias now (load it, swap it, or drop it when unset)."""
    settings = _settings.load()
    try:
        response = requests.post(
            f"{settings.serving_url}/models/{model}/shadow/reload", headers=_headers(settings), timeout=timeout
        )
    except requests.RequestException as exc:
        raise DeployError(
            f"serving at {settings.serving_url} did not answer the shadow reload of '{model}': {exc}"
        ) from exc
    if response.status_code != 200:
        raise DeployError(f"serving refused the shadow of '{model}': {response.status_code} {response.text[:1000]}")
    return response.json()


def served_version(model: str) -> str | None:
    """The version serving runs for ``model`` now, or None when it serves none."""
    settings = _settings.load()
    response = requests.get(f"{settings.serving_url}/models", timeout=30)
    response.raise_for_status()
    for item in response.json()["models"]:
        if item["name"] == model:
            return item.get("version")
    return None


def timed_predict(model: str, records: list[dict[str, Any]], timeout: float = 60.0) -> tuple[requests.Response, float]:
    """POST ``records`` to the model's predict route; the response and its latency in milliseconds.
    A network failure raises ``requests.RequestException`` for the caller to judge."""
    settings = _settings.load()
    started = time.perf_counter()
    response = requests.post(
        f"{settings.serving_url}/models/{model}/predict", json={"records": records}, timeout=timeout
    )
    return response, (time.perf_counter() - started) * 1000
