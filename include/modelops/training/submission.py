"""A model trained elsewhere, submitted to the gate (``python -m modelops.submit``, or the retrain
trigger form's ``submitted_model_uri``).

The submitted model takes the place of the trained candidates: it is loaded safely (scikit-learn
flavor, skops format, every type it needs trusted by the platform or by name in the declaration;
the MLmodel's own allow-list and code are not used), checked against the declaration (it predicts
on exactly the declared features and answers in the declared form: known classes, probabilities
when the metrics need them, finite numbers for a regression), scored on the platform's split of a
fresh snapshot, and logged again by the platform as the run's ``submitted`` candidate (with the
model's declared code and trusted types). From there it goes through the same evaluation beside
the champion, the same gate, the same decision record and the same register/promote/deploy.
Nothing the submitter logged about their own metrics is read.

``snapshots/<model>/<run_id>/submission.json`` records who submitted what from which run, what was
checked, and what is known of its training data (unknown, unless the source run names a snapshot
of this platform that exists).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelops.config import SUBMITTED_CANDIDATE, ModelConfig
from modelops.layout import submission_key
from modelops.store import Store

log = logging.getLogger(__name__)

#: Tags of the source run that may name the platform snapshot it was trained on.
TRAINING_MANIFEST_TAGS = ("modelops.training_manifest", "manifest_uri")
UNKNOWN_TRAINING_DATA = "unknown to the platform"
#: Metrics that need class probabilities (``predict_proba``).
PROBABILITY_METRICS = {"roc_auc", "log_loss", "average_precision", "brier_score"}


class SubmissionRefused(ValueError):
    """The submitted model does not fit the declaration; the message names what does not fit."""


@dataclass(frozen=True)
class Submission:
    model_uri: str
    submitted_by: str

    def to_json(self) -> dict[str, str]:
        return {"model_uri": self.model_uri, "submitted_by": self.submitted_by}


def submission_of(params: Mapping[str, Any], triggering_user: str | None = None) -> Submission | None:
    """The run's submission from its trigger params, or None for a normal retrain. The submitter is
    the ``submitted_by`` param, else the user who triggered the run, else "unknown"."""
    uri = (params.get("submitted_model_uri") or "").strip()
    if not uri:
        return None
    if not uri.startswith(("runs:/", "models:/")):
        raise SubmissionRefused(
            f"submitted_model_uri '{uri}': expected an MLflow 'runs:/<run id>/<path>' or 'models:/...' URI"
        )
    return Submission(uri, (params.get("submitted_by") or triggering_user or "unknown").strip())


def source_of(client: Any, uri: str) -> tuple[str | None, dict[str, str]]:
    """The MLflow run the submitted model was logged from, and that run's tags."""
    from mlflow.exceptions import MlflowException

    run_id = None
    try:
        rest = uri.split(":/", 1)[1].strip("/")
        if uri.startswith("runs:/"):
            run_id = rest.split("/")[0]
        elif rest.startswith("m-"):
            run_id = client.get_logged_model(rest.split("/")[0]).source_run_id
        elif "/" in rest:
            name, version = rest.split("/", 1)
            if version.startswith("@"):
                run_id = client.get_model_version_by_alias(name, version[1:]).run_id
            else:
                run_id = client.get_model_version(name, version).run_id
        tags = dict(client.get_run(run_id).data.tags) if run_id else {}
    except MlflowException as exc:
        raise SubmissionRefused(f"{uri}: not found on the tracking server: {exc.message}") from None
    return run_id, tags


def load_submitted(model: ModelConfig, uri: str, mlflow: Any) -> Any:
    """Download and load the submitted model, trusting only what the platform or the declaration trusts."""
    import skops.io
    from mlflow.exceptions import MlflowException

    from modelops.training.trust import UntrustedTypes, refuse_untrusted
    from modelops.usercode.loader import ensure_importable
    from modelops.usercode.models import flavor_conf

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    except (MlflowException, OSError) as exc:
        raise SubmissionRefused(f"{uri}: cannot download the model: {exc}") from None
    conf = flavor_conf(local)
    if not conf:
        raise SubmissionRefused(
            f"{uri}: not a scikit-learn flavor model (no 'sklearn' flavor in its MLmodel); log it with "
            "mlflow.sklearn.log_model"
        )
    if conf.get("serialization_format") != "skops":
        raise SubmissionRefused(
            f"{uri}: serialized as '{conf.get('serialization_format', 'pickle')}'; the platform loads only "
            "skops (pickle runs arbitrary code): log it with mlflow.sklearn.log_model(..., "
            "serialization_format='skops', skops_trusted_types=[...])"
        )
    from mlflow.models import Model

    problem = _declared_inputs_problem(model, Model.load(local).signature)
    if problem:
        raise SubmissionRefused(f"{uri}: {problem} (declared: {model.feature_names})")
    path = os.path.join(local, conf["pickled_model"])
    try:
        needed = skops.io.get_untrusted_types(file=path)
        trusted = refuse_untrusted(model, needed, "the submitted model")
    except UntrustedTypes as exc:
        raise SubmissionRefused(str(exc)) from None
    ensure_importable()  # its own classes load from the model's declared code, not from the artifact
    try:
        return skops.io.load(path, trusted=trusted)
    except Exception as exc:  # noqa: BLE001 - whatever fails, the refusal says what and why
        raise SubmissionRefused(f"{uri}: cannot be loaded: {type(exc).__name__}: {exc}") from None


def _declared_inputs_problem(model: ModelConfig, local_signature: Any) -> str | None:
    if local_signature is None or local_signature.inputs is None:
        return None
    wanted = set(local_signature.inputs.input_names())
    extra = sorted(wanted - set(model.feature_names))
    return f"its signature expects column(s) {extra} that are not declared features" if extra else None


def check_contract(model: ModelConfig, fitted: Any, X: Any, y: Any) -> list[str]:
    """Raise :class:`SubmissionRefused` unless ``fitted`` predicts on the declared features and
    answers in the declared form; returns the checks that passed, in words."""
    import numpy as np

    checks = []
    try:
        predictions = np.asarray(fitted.predict(X[model.feature_names]))
    except Exception as exc:  # noqa: BLE001
        raise SubmissionRefused(
            f"it cannot predict on the declared features {model.feature_names}: {type(exc).__name__}: {exc}"
        ) from None
    if predictions.shape[0] != len(X):
        raise SubmissionRefused(f"it returned {predictions.shape[0]} predictions for {len(X)} rows")
    checks.append(f"predicts on the {len(model.feature_names)} declared features")
    if model.is_classifier:
        known = {str(v) for v in np.unique(np.asarray(y))}
        unknown = sorted({str(v) for v in np.unique(predictions)} - known)
        if unknown:
            raise SubmissionRefused(
                f"it answers class(es) {unknown[:10]} that target '{model.target}' does not have (known: {sorted(known)[:10]})"
            )
        checks.append(f"answers classes of '{model.target}'")
        needs_proba = PROBABILITY_METRICS & {model.metrics.primary, *model.metrics.secondary}
        if needs_proba:
            if not callable(getattr(fitted, "predict_proba", None)):
                raise SubmissionRefused(f"it has no predict_proba, which the metrics {sorted(needs_proba)} need")
            proba = np.asarray(fitted.predict_proba(X[model.feature_names].head(50)))
            if proba.ndim != 2 or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
                raise SubmissionRefused("its predict_proba does not return one probability row per record summing to 1")
            checks.append("gives class probabilities")
    else:
        if not np.issubdtype(predictions.dtype, np.number) or not np.isfinite(predictions.astype(float)).all():
            raise SubmissionRefused(
                "a regression must answer finite numbers; it answered non-numeric or infinite values"
            )
        checks.append("answers finite numbers")
    return checks


def training_data_of(tags: Mapping[str, str], store: Store) -> str:
    """The snapshot the source run names, if it is one of this platform's; else "unknown"."""
    for tag in TRAINING_MANIFEST_TAGS:
        uri = tags.get(tag)
        if uri:
            try:
                if store.exists(store.key_of(uri)):
                    return uri
            except ValueError:
                pass
            return f"{UNKNOWN_TRAINING_DATA} (the run names {uri}, which is not a snapshot here)"
    return UNKNOWN_TRAINING_DATA


def recorded(store: Store, model: str, run_id: str) -> dict | None:
    key = submission_key(model, run_id)
    return store.get_json(key) if store.exists(key) else None


def lineage_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """What a registry version of a submitted model says about where it came from."""
    return {
        "submitted_by": record["submitted_by"],
        "submitted_model_uri": record["model_uri"],
        "submitted_from_run": record.get("source_run_id") or "",
        "training_data": record["training_data"],
    }


def _write(store: Store, model: ModelConfig, run_id: str, record: dict) -> dict:
    store.put_json(submission_key(model.name, run_id), record)
    return record


def check_submission(model: ModelConfig, run_id: str, submission: Submission, X_train, y_train, X_test, y_test,
                     store: Store, mlflow: Any) -> tuple[Any, dict]:  # fmt: skip
    """Load and check the submission; the record is written whether it is accepted or refused."""
    source_run, tags = (None, {})
    record = submission.to_json() | {
        "model": model.name, "airflow_run_id": run_id, "at": dt.datetime.now(dt.UTC).isoformat(),
    }  # fmt: skip
    try:
        source_run, tags = source_of(mlflow.MlflowClient(), submission.model_uri)
        fitted = load_submitted(model, submission.model_uri, mlflow)
        checks = check_contract(model, fitted, X_train, y_train)
        check_contract(model, fitted, X_test, y_test)  # the split the gate evaluates it on
    except SubmissionRefused as exc:
        _write(store, model, run_id, record | {"accepted": False, "refusal": str(exc), "source_run_id": source_run})
        raise SubmissionRefused(f"{model.name}: submission {submission.model_uri} refused: {exc}") from None
    record |= {
        "accepted": True, "checks": checks, "source_run_id": source_run,
        "training_data": training_data_of(tags, store), "claimed_metrics_ignored": True,
    }  # fmt: skip
    return fitted, _write(store, model, run_id, record)


def as_candidate(model: ModelConfig, fitted: Any, X: Any, y: Any) -> Any:
    """The submitted model as a :class:`~modelops.training.candidate.CandidateResult`, scored on the
    platform's training split (it is not refit, so there is no cross-validation: the gate's
    held-out evaluation beside the champion is what decides)."""
    from modelops.training.candidate import CandidateResult
    from modelops.training.rules import TrainingRules, check_degenerate_predictions
    from modelops.training.scoring import build_scorers, score

    classes = sorted(y.unique().tolist()) if model.is_classifier else None
    scorers = build_scorers(model, classes)
    train_metrics = {m: score(s, m, fitted, X, y) for m, s in scorers.items()}
    degenerate = check_degenerate_predictions(model.is_classifier, fitted.predict(X), y, TrainingRules())
    primary = model.metrics.primary
    reasons = [] if degenerate.passed else [degenerate.message]
    if train_metrics[primary] is None:
        reasons.append(f"{primary} is undefined on the platform's training split.")
    return CandidateResult(
        candidate=SUBMITTED_CANDIDATE, problem_type=model.problem_type, primary_metric=primary, params={},
        cv_metrics={m: {"mean": v, "std": None, "folds": []} for m, v in train_metrics.items()},
        train_metrics=train_metrics, search=[], n_train_rows=len(X), cv_folds=0, search_seconds=0.0,
        fit_seconds=0.0, relative_cost=1.0, convergence_warnings=[], rules=[degenerate],
        passed=not reasons, failure_reasons=reasons, model=fitted,
    )  # fmt: skip
