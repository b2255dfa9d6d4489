"""The parity gate of a deploy: may serving score this version with its compiled form?

Before serving loads a version, the deploy lowers the version's pipeline
(:mod:`modelops.serving.compiled`) and scores the version's held-out split both ways: the same
test rows its evaluation used (the training run's split of its snapshot). Equal classes and
probabilities within 1e-6 (regression: 1e-6 relative) tag the version ``scoring_path=compiled``;
anything else (a step that cannot be lowered, a difference, no rows, a failure of the check
itself) tags it ``pipeline`` with the reason. Serving reads the tag when it loads the version.
The gate never fails a deploy: the pipeline is always a correct answer.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from modelops import registry
from modelops.config import ModelConfig
from modelops.serving.compiled import PIPELINE, ParityVerdict, check_parity
from modelops.store import Store

log = logging.getLogger(__name__)


def held_out_rows(model: ModelConfig, version: str, tags: dict[str, str], store: Store) -> tuple[Any, str]:
    """The rows to check parity on and where they come from: the version's test split when its
    training run is known (the rows its evaluation scored), else the newest snapshot rows."""
    run_id = tags.get("airflow_run_id")
    if run_id:
        # The split is the training stage's rule; asked of it rather than copied (lazy: heavy imports).
        from modelops.training.time_split import training_split

        try:
            _, test = training_split(model, run_id, store)
            return test, f"the held-out split of training run {run_id}"
        except Exception as exc:  # noqa: BLE001 - a version registered without its snapshot
            log.warning("%s version %s: no held-out split of run %s (%s); using recent rows", model.name, version, run_id, exc)  # fmt: skip
    from modelops.deploy.verification import recent_rows_of_version

    return recent_rows_of_version(model, version, store), "the newest rows of the version's snapshot"


def load_pipeline(model_uri: str) -> Any:
    from modelops.usercode.models import load_model

    return load_model(model_uri)


def parity_gate(
    model: ModelConfig, version: str, store: Store | None = None, mlflow_client: Any = None
) -> ParityVerdict:
    """Check parity on the version's held-out rows, record the verdict as version tags, return it."""
    store = store or Store()
    mlflow_client = mlflow_client or registry.client()
    model_version = mlflow_client.get_model_version(model.name, str(version))
    try:
        pipeline = load_pipeline(f"models:/{model.name}/{version}")
        frame, source = held_out_rows(model, str(version), dict(model_version.tags or {}), store)
        verdict = check_parity(pipeline, frame, model.feature_names, model.numeric_features, model.is_classifier)
        verdict = dataclasses.replace(verdict, reason=f"{verdict.reason} [rows: {source}]")
    except Exception as exc:  # noqa: BLE001 - the gate chooses the pipeline, it never fails the deploy
        log.exception("%s version %s: the parity check could not run", model.name, version)
        verdict = ParityVerdict(
            PIPELINE, f"the parity check could not run ({type(exc).__name__}: {exc}); the scikit-learn pipeline serves"
        )
    for key, value in verdict.tags().items():
        mlflow_client.set_model_version_tag(model.name, str(version), key, value)
    log.info("%s version %s: scoring path %s: %s", model.name, version, verdict.path, verdict.reason)
    return verdict
