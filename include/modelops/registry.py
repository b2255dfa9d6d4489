"""The MLflow model registry, by the platform's conventions: aliases, lineage tags, history.

Registered model ``<model>``; aliases ``champion`` (serving), ``challenger`` (passed the gate)
and ``previous-champion`` (rollback target). Every alias move is appended to
``registry/<model>/alias-history.json`` in S3, so "what served at time T" is one read.
"""

from __future__ import annotations

import datetime as dt
import logging

from modelops import settings as _settings
from modelops.layout import alias_history_key
from modelops.store import Store

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous-champion"
#: A version that passed the gate, scored on live traffic beside the champion; never answers.
SHADOW = "shadow"


class RegistryError(RuntimeError):
    pass


class ChampionChanged(RegistryError):
    """Another run moved the champion after this run compared against it."""


def client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=_settings.load().mlflow_tracking_uri)


def version_for_alias(model: str, alias: str, mlflow_client=None):
    """The ModelVersion behind an alias, or None (no registered model, or alias unset)."""
    from mlflow.exceptions import MlflowException

    mlflow_client = mlflow_client or client()
    try:
        return mlflow_client.get_model_version_by_alias(model, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


def champion_info(model: str, mlflow_client=None) -> dict | None:
    version = version_for_alias(model, CHAMPION, mlflow_client)
    return _info(model, version) if version is not None else None


def _info(model: str, version) -> dict:
    return {
        "version": str(version.version),
        "model_uri": f"models:/{model}/{version.version}",
        "run_id": version.run_id,
        "source": version.source,
        "tags": dict(version.tags or {}),
    }


def champion_to_compare(model: str, airflow_run_id: str, record: dict | None = None, mlflow_client=None) -> dict | None:
    """The champion a run's candidate is compared with: the current one, unless that is this
    run's own version (a re-run after promotion, never compared with itself); then the version
    the run's decision ``record`` compared against, else ``previous-champion``. None: no champion
    (or this run promoted the first model)."""
    mlflow_client = mlflow_client or client()
    current = champion_info(model, mlflow_client)
    if current is None or current["tags"].get("airflow_run_id") != airflow_run_id:
        return current
    if record is not None:
        recorded = record.get("champion_version_compared")
        return _info(model, mlflow_client.get_model_version(model, str(recorded))) if recorded else None
    previous = version_for_alias(model, PREVIOUS, mlflow_client)
    return _info(model, previous) if previous is not None else None


def find_version_for_run(model: str, airflow_run_id: str, mlflow_client=None):
    """The version a given Airflow run registered, so a re-run finds it instead of adding one."""
    mlflow_client = mlflow_client or client()
    escaped = airflow_run_id.replace("'", "\\'")
    try:
        versions = mlflow_client.search_model_versions(f"name = '{model}' and tags.airflow_run_id = '{escaped}'")
    except Exception:  # noqa: BLE001 - a missing registered model is reported differently by stores
        versions = []
    return max(versions, key=lambda v: int(v.version)) if versions else None


def register_version(
    model: str, model_uri: str, run_id: str, tags: dict[str, str], description: str = "", mlflow_client=None
):
    """Register ``model_uri`` once per Airflow run (``tags['airflow_run_id']``); idempotent."""
    from mlflow.exceptions import MlflowException

    mlflow_client = mlflow_client or client()
    existing = find_version_for_run(model, tags["airflow_run_id"], mlflow_client)
    if existing is not None:
        log.info("run %s already registered %s version %s", tags["airflow_run_id"], model, existing.version)
        return existing
    try:
        mlflow_client.create_registered_model(model, description=description or f"modelops model '{model}'")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # MLflow 3: a ``models:/m-<id>`` source must name its LoggedModel.
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = mlflow_client.create_model_version(
        model, source=model_uri, run_id=run_id, tags={k: str(v) for k, v in tags.items()}, model_id=model_id
    )
    log.info("registered %s version %s from %s", model, version.version, model_uri)
    return version


def set_alias(
    model: str,
    alias: str,
    version: str,
    *,
    reason: str,
    actor: str,
    store: Store | None = None,
    mlflow_client=None,
    extra: dict | None = None,
) -> dict:
    """Point ``alias`` at ``version`` and append the move to the alias history."""
    mlflow_client = mlflow_client or client()
    before = version_for_alias(model, alias, mlflow_client)
    mlflow_client.set_registered_model_alias(model, alias, str(version))
    event = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "alias": alias,
        "from_version": before.version if before else None,
        "to_version": str(version),
        "reason": reason,
        "actor": actor,
        **(extra or {}),
    }
    append_history(model, event, store)
    return event


def remove_alias(
    model: str,
    alias: str,
    *,
    reason: str,
    actor: str,
    store: Store | None = None,
    mlflow_client=None,
    extra: dict | None = None,
) -> dict | None:
    """Unset ``alias`` and append the move (``to_version`` None) to the alias history; None when it was unset."""
    mlflow_client = mlflow_client or client()
    before = version_for_alias(model, alias, mlflow_client)
    if before is None:
        return None
    mlflow_client.delete_registered_model_alias(model, alias)
    event = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "alias": alias,
        "from_version": str(before.version),
        "to_version": None,
        "reason": reason,
        "actor": actor,
        **(extra or {}),
    }
    append_history(model, event, store)
    return event


def append_history(model: str, event: dict, store: Store | None = None) -> None:
    store = store or Store()
    key = alias_history_key(model)
    history = store.get_json(key) if store.exists(key) else []
    history.append(event)
    store.put_json(key, history)


def alias_history(model: str, store: Store | None = None) -> list[dict]:
    store = store or Store()
    key = alias_history_key(model)
    return store.get_json(key) if store.exists(key) else []


def promote(
    model: str,
    version: str,
    *,
    expected_champion: str | None,
    reason: str,
    actor: str,
    run_id: str,
    store: Store | None = None,
    mlflow_client=None,
) -> dict:
    """Move ``champion`` to ``version``; the old champion becomes ``previous-champion``.

    ``expected_champion`` is the version the gate compared against (None: there was none). If
    the champion moved since, refuse: two runs must not both promote on stale comparisons.
    A re-run after success finds the champion already on ``version`` and does nothing.
    """
    mlflow_client = mlflow_client or client()
    earlier = [
        e for e in alias_history(model, store)
        if e.get("alias") == CHAMPION and e.get("airflow_run_id") == run_id and e.get("to_version") == str(version)
    ]  # fmt: skip
    if earlier:
        # A cleared and re-run promotion: this run already moved the alias; moving it again
        # (perhaps over a newer champion) is not what a re-run means.
        log.info("run %s already promoted %s version %s at %s", run_id, model, version, earlier[-1]["at"])
        return {
            "promoted": False,
            "already_promoted_at": earlier[-1]["at"],
            "champion": _alias_version(model, CHAMPION, mlflow_client),
            "previous_champion": _alias_version(model, PREVIOUS, mlflow_client),
        }
    current = version_for_alias(model, CHAMPION, mlflow_client)
    current_version = str(current.version) if current else None  # str: stores differ
    if current_version == str(version):
        log.info("%s version %s is already champion", model, version)
        return {
            "promoted": False,
            "already_champion": True,
            "champion": str(version),
            "previous_champion": _alias_version(model, PREVIOUS, mlflow_client),
        }
    if current_version != (str(expected_champion) if expected_champion is not None else None):
        raise ChampionChanged(
            f"model '{model}': the champion is now version {current_version}, but this run compared its candidate "
            f"against version {expected_champion}; promotion refused. Re-run the retraining to compare against the new champion."
        )
    extra = {"airflow_run_id": run_id}
    if current_version is not None:
        set_alias(
            model,
            PREVIOUS,
            current_version,
            reason=f"replaced by version {version}",
            actor=actor,
            store=store,
            mlflow_client=mlflow_client,
            extra=extra,
        )
    event = set_alias(
        model, CHAMPION, str(version), reason=reason, actor=actor, store=store, mlflow_client=mlflow_client, extra=extra
    )
    return {
        "promoted": True,
        "already_champion": False,
        "champion": str(version),
        "previous_champion": current_version,
        "event": event,
    }


def _alias_version(model: str, alias: str, mlflow_client) -> str | None:
    version = version_for_alias(model, alias, mlflow_client)
    return str(version.version) if version else None


def resolve_version(model: str, version_or_alias: str, mlflow_client=None) -> str:
    """A version number from a number or an alias; an unknown one is an error naming it."""
    mlflow_client = mlflow_client or client()
    text = str(version_or_alias).strip()
    if text.isdigit():
        mlflow_client.get_model_version(model, text)  # raises if it does not exist
        return text
    version = version_for_alias(model, text, mlflow_client)
    if version is None:
        raise RegistryError(f"model '{model}' has no version with alias '{text}'")
    return version.version
