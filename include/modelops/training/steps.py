"""The retrain DAG's training tasks, one function per task id: start_tracking, train_candidates,
select_best, evaluate, gate, register, promote, deploy, and the small decisions the tasks take
on the way (which candidates, whether promotion is allowed, whether a human approves it).

Each step reads what earlier steps wrote to S3 or MLflow (keys derived from the model and the
Airflow run id, see :mod:`modelops.layout`), writes its own result under the same keys, and
returns the JSON form of a record (:mod:`modelops.training.results`): a cleared and re-run step
overwrites rather than adds (except the decision record, which keeps what was decided: see
:func:`gate`), and DataFrames and models never travel through XCom. The data tasks that come
first are in :mod:`modelops.data.steps`; :mod:`modelops.training.chain` runs them all in one process.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from modelops import registry, versioning
from modelops.config import SUBMITTED_CANDIDATE, ModelConfig
from modelops.deploy.rollout import PostDeployCheckFailed as PostDeployCheckFailed  # what deploy raises
from modelops.deploy.shadow import ShadowRefused as ShadowRefused  # what start_shadow refuses with
from modelops.layout import decision_record_key, evaluation_key
from modelops.store import Store
from modelops.training.results import BEST_FIELDS, BestCandidate, Evaluated, GateDecision, ParentRun, Registered
from modelops.training.submission import Submission
from modelops.training.time_split import training_split
from modelops.training.tracking import configured_mlflow
from modelops.usercode.models import load_model

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def start_tracking(model: ModelConfig, run_id: str, dag_id: str, snapshot: dict) -> dict:
    """Open (or find again) the MLflow parent run the candidates nest under."""
    from modelops.training.tracking import start_parent_run

    parent = ParentRun.from_json(start_parent_run(model, run_id, dag_id, snapshot))
    _tag_run(configured_mlflow(), parent.parent_run_id, versioning.version_tags(model))
    return parent.to_json()


def candidates_to_try(params: Mapping[str, Any]) -> list[str]:
    """The candidates chosen in the trigger form (one mapped training task each); a submission
    (``submitted_model_uri``) replaces them with the one ``submitted`` candidate."""
    if (params.get("submitted_model_uri") or "").strip():
        return [SUBMITTED_CANDIDATE]
    return list(params["candidates"])


def training_plan(parent: dict, candidates: list[str]) -> list[dict]:
    """The keyword arguments of each mapped ``train_candidates`` task, in the order chosen: one
    per candidate, each with the parent run it nests under (what ``start_tracking`` returns)."""
    ParentRun.from_json(parent)  # a malformed parent fails here, naming the missing field
    return [{"candidate": candidate, "parent": parent} for candidate in candidates]


def train_candidates(
    model: ModelConfig, run_id: str, candidate: str, parent: dict, store: Store | None = None,
    submission: Submission | None = None,
) -> dict:  # fmt: skip
    """Train one candidate as a child MLflow run; a re-run returns the run's recorded result.

    The ``submitted`` candidate (a model trained elsewhere, see :mod:`modelops.training.submission`)
    is checked and scored instead of trained; a refusal raises ``SubmissionRefused``."""
    from modelops.training.candidate import train_candidate as fit
    from modelops.training.tracking import log_candidate, log_failed_candidate, recorded_candidate
    from modelops.training.trust import UntrustedTypes
    from modelops.usercode.loader import UserCodeError

    mlflow = configured_mlflow()
    existing, recorded = recorded_candidate(mlflow, run_id, candidate, parent)
    if recorded is not None:
        return recorded
    versions = versioning.version_tags(model)  # what this process trains with, taken before it does
    train, test = training_split(model, run_id, store)
    X, y = train[model.feature_names], train[model.target]
    if candidate == SUBMITTED_CANDIDATE:
        return _take_submission(model, run_id, parent, existing, submission, train, test, store or Store(), mlflow)
    try:
        result = fit(model, candidate, X, y)
        record = log_candidate(mlflow, model, run_id, candidate, parent, existing, result, X)
    except (UserCodeError, UntrustedTypes) as exc:  # theirs to fix: the other candidates go on
        log.error("%s: candidate %s failed in the model's own code:\n%s", model.name, candidate, exc)
        if isinstance(exc, UserCodeError) and exc.trace:
            log.error("%s", exc.trace)
        return log_failed_candidate(mlflow, model, run_id, candidate, parent, existing, exc)
    _tag_run(mlflow, record["mlflow_run_id"], versions)
    # What a rebuild (modelops.reproduce) needs beyond the hashes: the declaration's settings, the threads.
    client = mlflow.MlflowClient()
    client.log_dict(record["mlflow_run_id"], versioning.declaration_record(model), versioning.DECLARATION_ARTIFACT)
    client.set_tag(record["mlflow_run_id"], versioning.OPENMP_THREADS_TAG, versioning.openmp_threads())
    return record


def _take_submission(model, run_id, parent, existing, submission, train, test, store, mlflow) -> dict:
    """Check a submitted model and log it again as this run's ``submitted`` candidate."""
    from modelops.training import submission as submissions
    from modelops.training.tracking import log_candidate

    if submission is None:
        raise submissions.SubmissionRefused(
            f"{model.name}: candidate '{SUBMITTED_CANDIDATE}' needs submitted_model_uri"
        )
    X, y = train[model.feature_names], train[model.target]
    fitted, checked = submissions.check_submission(
        model, run_id, submission, X, y, test[model.feature_names], test[model.target], store, mlflow
    )
    result = submissions.as_candidate(model, fitted, X, y)
    record = log_candidate(mlflow, model, run_id, SUBMITTED_CANDIDATE, parent, existing, result, X)
    _tag_run(mlflow, record["mlflow_run_id"], submissions.lineage_tags(checked))
    return record


def _tag_run(mlflow, mlflow_run_id: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on a run in one call, whatever its status (no run is reopened)."""
    from mlflow.entities import RunTag

    mlflow.MlflowClient().log_batch(mlflow_run_id, tags=[RunTag(key, value) for key, value in tags.items()])


def select_best(model: ModelConfig, results: list[dict]) -> dict:
    """Pick the best passing candidate; if none passed, the best failing one goes to the gate to be recorded."""
    from modelops.training.selection import NoViableCandidate
    from modelops.training.selection import select_best as choose

    results = list(results)
    try:
        best = choose(results, model)
    except NoViableCandidate as exc:
        scored = [r for r in results if r.get("cv_primary") is not None]
        if not scored:
            raise
        best = choose([r | {"passed": True} for r in scored], model)
        original = next(r for r in results if r["candidate"] == best["candidate"])
        best |= {"passed": False, "failure_reasons": original["failure_reasons"]}
        best["selection"]["reason"] = (
            f"No candidate passed the training rules; {best['candidate']} goes to the gate to be recorded. {exc}"
        )
        log.warning("%s", exc)
    return BestCandidate.from_json({key: best[key] for key in BEST_FIELDS}).to_json()


def evaluate(model: ModelConfig, run_id: str, best: dict, store: Store | None = None) -> dict:
    """Measure candidate and champion on the same held-out split; written next to the snapshot.

    A re-run of a run that already decided on this candidate returns the recorded evaluation
    unchanged (it is the decision's evidence); the champion is never this run's own version."""
    from modelops import decision_record
    from modelops.training.evaluation import evaluate_model

    store = store or Store()
    key = evaluation_key(model.name, run_id)
    chosen = BestCandidate.from_json(best)
    record = decision_record.load(store, model.name, run_id)
    if record is not None and decision_record.same_candidate(record, best) and store.exists(key):
        log.info("run %s already decided on %s; keeping its evaluation %s", run_id, chosen.candidate, key)
        return _evaluation_summary(store, key, store.get_json(key), record.get("champion_version_compared"))
    mlflow = configured_mlflow()
    _, test = training_split(model, run_id, store)
    X, y = test[model.feature_names], test[model.target]
    candidate_eval = evaluate_model(load_model(chosen.model_uri, mlflow), X, y, model)
    champion = registry.champion_to_compare(model.name, run_id, record)
    champion_eval = None
    if champion is not None:
        champion_model = load_model(champion["model_uri"], mlflow)
        champion_eval = evaluate_model(champion_model, X, y, model) | {
            "version": champion["version"],
            "model_uri": champion["model_uri"],
        }
    evaluation = {
        "test_rows": len(test),
        "candidate": candidate_eval
        | {"candidate": chosen.candidate, "model_uri": chosen.model_uri, "mlflow_run_id": chosen.mlflow_run_id},
        "champion": champion_eval,
    }
    store.put_json(key, evaluation)
    with mlflow.start_run(run_id=chosen.mlflow_run_id):
        mlflow.log_metrics({f"test_{k}": v for k, v in candidate_eval["metrics"].items() if v is not None})
        mlflow.log_metric("latency_ms_per_1k", candidate_eval["latency_ms_per_1k"])
    return _evaluation_summary(store, key, evaluation, champion["version"] if champion else None)


def _evaluation_summary(store: Store, key: str, evaluation: dict, champion_version: str | None) -> dict:
    champion_eval = evaluation.get("champion")
    return Evaluated(
        evaluation_uri=store.uri(key),
        candidate_primary=evaluation["candidate"]["primary"],
        champion_primary=champion_eval["primary"] if champion_eval else None,
        champion_version=champion_version,
    ).to_json()


def gate(
    model: ModelConfig,
    *,
    run_id: str,
    dag_id: str,
    best: dict,
    evaluated: dict,
    snapshot: dict,
    validation: dict,
    baseline: dict,
    overrides: dict,
    dry_run: bool,
    store: Store | None = None,
) -> dict:
    """Decide promotion on the evaluation; every decision, pass or fail, is written to S3.

    Write-once: a re-run finds the run's decision, appends an entry to its ``attempts`` and
    returns the original decision (see :mod:`modelops.decision_record`). The decision itself is
    the pure :func:`modelops.training.gate.decide_promotion`; this step gathers its inputs and
    writes the record (:mod:`modelops.training.decision`)."""
    from modelops import decision_record
    from modelops.training.decision import GateEvidence, decision_record_of
    from modelops.training.gate import CandidateEvidence, ChampionEvidence, decide_promotion, policy_from_config

    store = store or Store()
    chosen, measured = BestCandidate.from_json(best), Evaluated.from_json(evaluated)
    key = decision_record_key(model.name, run_id)
    earlier = decision_record.load(store, model.name, run_id)
    if decision_record.keeps_original(earlier, best):
        decision_record.append_attempt(
            store, model.name, run_id, "gate", decision_record.KEPT, decided_at=earlier.get("decided_at")
        )
        return GateDecision.from_json(decision_record.summary(earlier, store, model.name, run_id)).to_json()
    evaluation = store.get_json(store.key_of(measured.evaluation_uri))
    decision = decide_promotion(
        CandidateEvidence.of(evaluation["candidate"], chosen.passed, chosen.failure_reasons),
        ChampionEvidence.of(evaluation["champion"]),
        policy_from_config(model, overrides),
    )
    evidence = GateEvidence.of(snapshot, validation, baseline, measured, chosen)
    record = decision_record_of(decision, model.name, dag_id, run_id, _now(), dry_run, chosen, evidence, measured)
    if chosen.candidate == SUBMITTED_CANDIDATE:  # who sent it, from which run, what was checked
        from modelops.training import submission as submissions

        record["submission"] = submissions.recorded(store, model.name, run_id)
    if earlier is not None:  # the candidate changed before anything was registered: keep both
        record["earlier_decisions"] = [*earlier.get("earlier_decisions", []), decision_record.earlier_decision(earlier)]
        record["attempts"] = earlier.get("attempts", [])
    store.put_json(key, record)
    if earlier is not None:
        decision_record.append_attempt(store, model.name, run_id, "gate", decision_record.DECIDED_AGAIN)
    verdict = "PROMOTE" if decision.promote else "KEEP CHAMPION"
    log.info("gate for %s: %s%s\n%s", model.name, verdict, " (dry run)" if dry_run else "", "\n".join(decision.reasons))
    return GateDecision(
        promote=decision.promote,
        dry_run=dry_run,
        reasons=decision.reasons,
        failed_checks=decision.failed_checks,
        decision_uri=store.uri(key),
        champion_version_compared=measured.champion_version,
    ).to_json()


def promotion_allowed(decided: dict) -> bool:
    """False when the gate said no, or on a dry run: registration and promotion are skipped."""
    return GateDecision.from_json(decided).allows_promotion


def _baseline_with_predictions(model: ModelConfig, run_id: str, best: dict, store: Store) -> dict:
    """The run's baseline plus the registered model's prediction distribution on the same rows,
    so monitoring can judge prediction drift, and its probability calibration on the held-out rows,
    so monitoring can estimate performance without labels. Deterministic: a re-run writes the same profile."""
    from modelops.data.baseline import profile_baseline
    from modelops.data.snapshot import load_manifest, load_snapshot_frame

    manifest = load_manifest(model.name, run_id, store)
    frame = load_snapshot_frame(model, manifest, store)
    from modelops.training.scoring import predict_in_chunks

    fitted = load_model(best["model_uri"], configured_mlflow())
    predictions = predict_in_chunks(fitted, frame[model.feature_names])
    if model.is_classifier:
        predictions = [str(p) for p in predictions]
    profile = profile_baseline(frame, model, predictions=predictions)
    return profile | {
        "dataset_hash": manifest["dataset_hash"],
        "manifest_uri": manifest["uri"],
        "calibration": _held_out_calibration(model, run_id, fitted, store),
    }


def _held_out_calibration(model: ModelConfig, run_id: str, fitted, store: Store) -> dict:
    """The registered model's probabilities calibrated on the run's held-out rows, for label-free
    performance estimation (modelops.monitoring.estimation). Seeded: a re-run writes the same map."""
    from modelops.training.calibration import calibration_for

    if not model.is_classifier:
        return calibration_for(model, fitted, None)
    _, held_out = training_split(model, run_id, store)
    return calibration_for(model, fitted, held_out)


def trained_versions(model: ModelConfig, mlflow_run_id: str, mlflow_client) -> dict[str, str]:
    """The version tags of the candidate's run: the code, declaration, suite and libraries it was
    *trained* with. Any the run lacks (trained before the tags existed) are computed now, and
    ``modelops.versions_from`` says which happened."""
    recorded = versioning.recorded_version_tags(mlflow_client.get_run(mlflow_run_id).data.tags)
    if len(recorded) == len(versioning.VERSION_TAGS):
        return recorded | {versioning.VERSIONS_FROM_TAG: versioning.FROM_TRAINING_RUN}
    log.warning(
        "candidate run %s lacks version tag(s) %s; taking them from the register step",
        mlflow_run_id,
        sorted(set(versioning.VERSION_TAGS) - set(recorded)),
    )
    source = versioning.FROM_BOTH if recorded else versioning.FROM_REGISTER
    return versioning.version_tags(model) | recorded | {versioning.VERSIONS_FROM_TAG: source}


def _lineage_tags(run_id: str, dag_id: str, chosen: BestCandidate, snapshot, validation, baseline, decided) -> dict:
    return {
        "dataset_hash": snapshot["dataset_hash"],
        "manifest_uri": snapshot["manifest_uri"],
        "gx_result_uri": validation["result_uri"],
        "baseline_uri": baseline["baseline_uri"],
        "decision_uri": decided["decision_uri"],
        "airflow_dag_id": dag_id,
        "airflow_run_id": run_id,
        "candidate": chosen.candidate,
        "cv_primary": f"{chosen.cv_primary:.6f}" if chosen.cv_primary is not None else "",
        "training_data": snapshot["manifest_uri"],
    }


def register(
    model: ModelConfig,
    *,
    run_id: str,
    dag_id: str,
    best: dict,
    snapshot: dict,
    validation: dict,
    baseline: dict,
    decided: dict,
    store: Store | None = None,
) -> dict:
    """Register a registry version with lineage and version tags and the baseline attached; alias ``challenger``."""
    store = store or Store()
    chosen = BestCandidate.from_json(best)
    mlflow_client = registry.client()
    baseline_profile = _baseline_with_predictions(model, run_id, best, store)
    store.put_json(store.key_of(baseline["baseline_uri"]), baseline_profile)
    mlflow_client.log_dict(chosen.mlflow_run_id, baseline_profile, "baseline/baseline.json")
    tags = _lineage_tags(run_id, dag_id, chosen, snapshot, validation, baseline, decided)
    tags |= trained_versions(model, chosen.mlflow_run_id, mlflow_client)
    if chosen.candidate == SUBMITTED_CANDIDATE:  # trained elsewhere: the snapshot is only what it was judged on
        from modelops.training import submission as submissions

        tags |= submissions.lineage_tags(submissions.recorded(store, model.name, run_id))
    existing = registry.find_version_for_run(model.name, run_id, mlflow_client)
    version = existing or registry.register_version(
        model.name, chosen.model_uri, chosen.mlflow_run_id, tags, model.description, mlflow_client
    )
    if existing is None:  # a re-run leaves the aliases where later runs put them
        registry.set_alias(
            model.name, registry.CHALLENGER, version.version, reason="passed the gate", actor=dag_id, store=store,
            mlflow_client=mlflow_client, extra={"airflow_run_id": run_id},
        )  # fmt: skip
    key = decision_record_key(model.name, run_id)
    if existing is None or not store.exists(key) or store.get_json(key).get("registered_version") is None:
        store.update_json(key, registered_version=version.version, version_tags=_version_tags_of(version))
    return Registered(version=version.version, model_uri=f"models:/{model.name}/{version.version}").to_json()


def _version_tags_of(registered_version) -> dict[str, str]:
    """The ``modelops.*`` tags of a registry version (what the decision record repeats)."""
    tags = dict(registered_version.tags or {})
    return {key: tags[key] for key in sorted(tags) if key.startswith(versioning.TAG_PREFIX)}


def approval_needed(params: Mapping[str, Any], model: ModelConfig | None = None) -> str:
    """The next task: ``start_shadow`` when the version goes to shadow first (the ``shadow`` param,
    or ``gate.require_shadow_days``), else ``approve_promotion`` if the trigger form asked for a
    human, else ``promote``."""
    if model is not None and shadow_requested(params, model):
        return "start_shadow"
    return "approve_promotion" if params["require_approval"] else "promote"


def shadow_requested(params: Mapping[str, Any], model: ModelConfig) -> bool:
    """A gated version goes to shadow, not champion: asked for, declared, or required by the gate."""
    return bool(params.get("shadow")) or model.serving.shadow or model.gate.require_shadow_days > 0


def start_shadow(model: ModelConfig, registered: Mapping[str, Any], *, actor: str, run_id: str) -> dict:
    """Put the registered version in shadow beside the champion (promotion waits for live evidence)."""
    from modelops.deploy import shadow

    return shadow.start_shadow(model, str(registered["version"]), actor=actor, run_id=run_id)


def promote(
    model: ModelConfig,
    run_id: str,
    dag_id: str,
    registered: dict,
    decided: dict,
    actor: str | None = None,
    store: Store | None = None,
) -> dict:
    """Move the registry alias ``champion`` to the registered version (the old one becomes ``previous-champion``)."""
    from modelops import decision_record

    store = store or Store()
    version, decision = Registered.from_json(registered), GateDecision.from_json(decided)
    outcome = registry.promote(
        model.name,
        version.version,
        expected_champion=decision.champion_version_compared,
        reason="; ".join(decision.reasons)[:2000],
        actor=actor or dag_id,
        run_id=run_id,
        store=store,
    )
    result = {k: v for k, v in outcome.items() if k != "event"}
    key = decision_record_key(model.name, run_id)
    recorded = store.get_json(key).get("promotion") if store.exists(key) else None
    if recorded is None:
        store.update_json(key, promotion=result | {"at": _now()})
    else:  # a re-run: the first promotion's record stands
        decision_record.append_attempt(
            store, model.name, run_id, "promote", "kept original promotion", result=result
        )  # fmt: skip
    return result


def deploy(model: ModelConfig, promoted: dict, *, actor: str, run_id: str) -> dict:
    """Hot-swap serving to the champion, check it live; roll back and fail if it misbehaves."""
    from modelops.deploy.rollout import deploy_and_verify

    return deploy_and_verify(model, promoted["champion"], actor=actor, run_id=run_id)
