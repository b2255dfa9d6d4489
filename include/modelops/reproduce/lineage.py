"""What a registered version says it was made from, read from the registry, its training run and
its snapshot manifest: nothing from the current working tree except where the version lacks it.

A version's tags name its Airflow run, the chosen candidate and the snapshot manifest (object
keys, ETags, SHA-256, rows) and carry the code version, declaration and suite hashes and library
versions it was trained with (:mod:`modelops.versioning`). Its MLflow run holds the candidate's
result (the chosen parameters, the rows the fit used) and, since reproduction exists, the
declaration itself (``declaration.json``), whose settings (seed, split, row caps) the rebuild needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from modelops import versioning
from modelops.config import SUBMITTED_CANDIDATE, ConfigError, ModelConfig, get_model
from modelops.store import Store

log = logging.getLogger(__name__)

CANDIDATE_RESULT_ARTIFACT = "candidate_result.json"


class NotReproducible(RuntimeError):
    """The version cannot be rebuilt from its lineage; the message says why and what is known."""


@dataclass(frozen=True)
class Lineage:
    model: str
    version: str
    model_uri: str
    mlflow_run_id: str
    airflow_run_id: str
    candidate: str
    params: dict[str, Any]
    training_rows: dict[str, Any]
    #: The declaration the version was trained with, and where it came from.
    config: ModelConfig
    declaration_source: str
    manifest: dict[str, Any]
    #: The :data:`~modelops.versioning.VERSION_TAGS` the version carries.
    versions: dict[str, str]
    #: The OpenMP threads the fit ran with (None: not recorded, the version predates the tag).
    openmp_threads: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "model_uri": self.model_uri,
            "mlflow_run_id": self.mlflow_run_id,
            "airflow_run_id": self.airflow_run_id,
            "candidate": self.candidate,
            "params": self.params,
            "random_seed": self.config.training.random_seed,
            "training_rows": self.training_rows,
            "openmp_threads": self.openmp_threads,
            "declaration_source": self.declaration_source,
            "manifest_uri": self.manifest.get("uri"),
            "dataset_hash": self.manifest.get("dataset_hash"),
            "versions": self.versions,
        }


def _load_dict(mlflow, run_id: str, name: str) -> dict | None:
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{name}")
    except Exception as exc:  # noqa: BLE001 - stores report a missing artifact with different types
        log.info("run %s has no %s: %s", run_id, name, exc)
        return None


def _threads(mlflow_client, run_id: str) -> int | None:
    value = mlflow_client.get_run(run_id).data.tags.get(versioning.OPENMP_THREADS_TAG, "")
    return int(value) if value.isdigit() else None


def _current_config(model: str) -> ModelConfig | None:
    try:
        return get_model(model)
    except ConfigError as exc:
        log.info("model '%s' has no loadable declaration now: %s", model, exc)
        return None


def declaration_then(model: str, version: str, recorded: dict | None, tags: dict[str, str]) -> tuple[ModelConfig, str]:
    """The declaration the version was trained with: the recorded one, else today's file if its
    hash is the version's (unchanged since); else :class:`NotReproducible` naming both hashes."""
    then = tags.get(versioning.DECLARATION_TAG)
    if recorded is not None:
        try:
            config = ModelConfig.model_validate(recorded)
        except ValueError as exc:
            raise NotReproducible(
                f"model '{model}' version {version}: its recorded declaration no longer parses with this platform "
                f"release: {exc}"
            ) from exc
        if then and versioning.canonical_sha256(recorded) != then:
            log.warning("%s version %s: recorded declaration does not hash to its tag %s", model, version, then)
        return config, f"recorded with the training run ({versioning.DECLARATION_ARTIFACT})"
    current = _current_config(model)
    if current is not None and then and versioning.declaration_hash(current) == then:
        return current, "today's declaration (unchanged since: same SHA-256)"
    now = versioning.declaration_hash(current) if current is not None else "no declaration"
    raise NotReproducible(
        f"model '{model}' version {version} was trained before declarations were recorded, and its declaration "
        f"has changed since (SHA-256 then {then or 'unknown'}, now {now}): its settings (seed, split, row caps) "
        "are unknown. Restore that declaration to rebuild it"
    )


def _refuse_submission(model: str, version: str, tags: dict[str, str]) -> None:
    if tags.get("candidate") != SUBMITTED_CANDIDATE and not tags.get("submitted_model_uri"):
        return
    raise NotReproducible(
        f"model '{model}' version {version} was trained outside the platform and submitted "
        f"(by {tags.get('submitted_by') or 'unknown'}, model {tags.get('submitted_model_uri') or 'unknown'}, "
        f"from run {tags.get('submitted_from_run') or 'unknown'}): there is no training run to rebuild. "
        f"The platform only checked and scored it (training data: {tags.get('training_data') or 'unknown'})"
    )


def read_lineage(model: str, version: str, *, mlflow_client=None, store: Store | None = None) -> Lineage:
    """Everything the rebuild needs about ``model`` version ``version`` (a number or an alias)."""
    from modelops import registry
    from modelops.training.tracking import configured_mlflow

    mlflow_client = mlflow_client or registry.client()
    store = store or Store()
    try:
        number = registry.resolve_version(model, version, mlflow_client)
        registered = mlflow_client.get_model_version(model, number)
    except Exception as exc:  # noqa: BLE001 - MlflowException or RegistryError: both name the problem
        raise NotReproducible(f"model '{model}' has no registered version '{version}': {exc}") from exc
    tags = dict(registered.tags or {})
    _refuse_submission(model, number, tags)
    mlflow = configured_mlflow()
    result = _load_dict(mlflow, registered.run_id, CANDIDATE_RESULT_ARTIFACT)
    if result is None or not tags.get("manifest_uri"):
        raise NotReproducible(
            f"model '{model}' version {number} has no training lineage (candidate result of run {registered.run_id}: "
            f"{'present' if result else 'missing'}; manifest_uri tag: {tags.get('manifest_uri') or 'missing'})"
        )
    config, source = declaration_then(
        model, number, _load_dict(mlflow, registered.run_id, versioning.DECLARATION_ARTIFACT), tags
    )
    try:
        manifest = store.get_json(store.key_of(tags["manifest_uri"])) | {"uri": tags["manifest_uri"]}
    except Exception as exc:  # noqa: BLE001 - a missing or foreign manifest: name it
        raise NotReproducible(f"model '{model}' version {number}: cannot read its snapshot manifest "
                              f"{tags['manifest_uri']}: {exc}") from exc  # fmt: skip
    return Lineage(
        model=model,
        version=str(number),
        model_uri=f"models:/{model}/{number}",
        mlflow_run_id=registered.run_id,
        airflow_run_id=tags.get("airflow_run_id", ""),
        candidate=result["candidate"],
        params=dict(result.get("params") or {}),
        training_rows=dict(result.get("training_rows") or {}),
        config=config,
        declaration_source=source,
        manifest=manifest,
        versions=versioning.recorded_version_tags(tags),
        openmp_threads=_threads(mlflow_client, registered.run_id),
        tags=tags,
    )
