"""The retraining chain, one function per task: snapshot, validate, profile, train, select,
evaluate, gate, register, promote.

Each step reads what earlier steps wrote to S3 or MLflow (keys derived from the model and the
Airflow run id), writes its own result under the same keys, and returns a small JSON-safe
dict: a cleared and re-run step overwrites rather than adds (except the decision record, which
keeps what was decided: see :func:`gate`), and DataFrames and models never travel through XCom. :func:`run_chain` runs the same steps in one process (benchmark, tests).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from modelops import registry
from modelops import settings as _settings
from modelops.config import ModelConfig
from modelops.layout import decision_record_key as decision_key
from modelops.layout import safe_run_id
from modelops.store import Store

log = logging.getLogger(__name__)

PARENT_ROLE = "retrain"
CANDIDATE_ROLE = "candidate"


class TrainingDataInvalid(RuntimeError):
    """The training snapshot failed its expectation suite; nothing downstream may run."""


def run_prefix(model: str, run_id: str) -> str:
    return f"snapshots/{model}/{safe_run_id(run_id)}/"


def experiment_name(model: str) -> str:
    return f"modelops/{model}"


# 1. Snapshot -------------------------------------------------------------------------------------
def snapshot_training_data(
    model: ModelConfig, as_of: dt.datetime, window_days: int, run_id: str, store: Store | None = None
) -> dict:
    from modelops.data.snapshot import take_snapshot

    manifest = take_snapshot(model, as_of, window_days, run_id, store)
    if manifest.get("nothing_to_train"):
        return manifest
    return {
        "manifest_uri": manifest["uri"],
        "dataset_hash": manifest["dataset_hash"],
        "rows": manifest["rows"],
        "objects": len(manifest["objects"]),
        "unreadable": len(manifest["unreadable"]),
        "excluded": [
            {k: e[k] for k in ("key", "etag", "reason", "failed_expectations", "verdict_source")}
            for e in manifest.get("excluded", [])
        ],
        "window": manifest["window"],
    }


# 2. Validate -------------------------------------------------------------------------------------
def validate_training_data(model: ModelConfig, run_id: str, store: Store | None = None) -> dict:
    """Run the model's suite on the snapshot; write JSON + Data Docs HTML; raise on failure.

    The snapshot holds only files that passed the batch suite one by one; the excluded ones
    (unreadable included) are listed in the result, they no longer fail the run."""
    from modelops.data.snapshot import load_manifest, load_snapshot_frame
    from modelops.data.validation import render_data_docs_html, summarize_failures, validate_dataframe

    store = store or Store()
    manifest = load_manifest(model.name, run_id, store)
    prefix = run_prefix(model.name, run_id)
    frame = load_snapshot_frame(model, manifest, store)
    outcome = validate_dataframe(frame, model.suite_path, data_name=f"{model.name} training snapshot {manifest['uri']}")
    result = {
        "success": outcome.success,
        "suite": outcome.suite_name,
        "statistics": outcome.statistics,
        "unreadable": manifest["unreadable"],
        "excluded": manifest.get("excluded", []),
        "failures": outcome.failures,
    }
    store.put_json(prefix + "validation.json", {**result, "gx_result": outcome.result_json})
    store.put_text(prefix + "validation.html", render_data_docs_html(outcome), "text/html; charset=utf-8")
    summary = {
        "success": result["success"],
        "result_uri": store.uri(prefix + "validation.json"),
        "data_docs_uri": store.uri(prefix + "validation.html"),
        "evaluated": outcome.statistics.get("evaluated_expectations"),
        "failed": len(outcome.failures),
        "excluded": len(result["excluded"]),
    }
    if not result["success"]:
        lines = [summarize_failures(outcome)]
        raise TrainingDataInvalid(
            f"training data for '{model.name}' failed validation; the champion is untouched.\n"
            + "\n".join(lines)
            + f"\nFull result: {summary['result_uri']}  Data Docs: {summary['data_docs_uri']}"
        )
    return summary


# 3. Baseline -------------------------------------------------------------------------------------
def profile_training_baseline(model: ModelConfig, run_id: str, store: Store | None = None) -> dict:
    from modelops.data.baseline import profile_baseline
    from modelops.data.snapshot import load_manifest, load_snapshot_frame

    store = store or Store()
    manifest = load_manifest(model.name, run_id, store)
    frame = load_snapshot_frame(model, manifest, store)
    profile = profile_baseline(frame, model)
    profile["dataset_hash"] = manifest["dataset_hash"]
    profile["manifest_uri"] = manifest["uri"]
    key = run_prefix(model.name, run_id) + "baseline.json"
    store.put_json(key, profile)
    return {
        "baseline_uri": store.uri(key),
        "features": len(model.features),
        "rows": int(profile.get("row_count", len(frame))),
    }


# Shared: the train/test split of a run --------------------------------------------------------------
def training_split(model: ModelConfig, run_id: str, store: Store | None = None):
    from modelops.data.snapshot import load_manifest, load_snapshot_frame
    from modelops.training.time_split import time_split

    store = store or Store()
    frame = load_snapshot_frame(model, load_manifest(model.name, run_id, store), store)
    frame = frame[frame[model.target].notna()]
    if len(frame) > model.training.max_rows:
        frame = frame.sample(n=model.training.max_rows, random_state=model.training.random_seed).sort_index()
    return time_split(frame, model)


def _mlflow():
    import mlflow

    mlflow.set_tracking_uri(_settings.load().mlflow_tracking_uri)
    return mlflow


def _find_run(mlflow, experiment_id: str, **tags) -> object | None:
    clauses = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
    runs = mlflow.search_runs(experiment_ids=[experiment_id], filter_string=clauses, output_format="list")
    return runs[0] if runs else None


# 4. Train ------------------------------------------------------------------------------------------
def start_parent_run(model: ModelConfig, run_id: str, dag_id: str, snapshot: dict) -> dict:
    """One MLflow parent run per Airflow run (found again on re-run), candidates nest under it."""
    mlflow = _mlflow()
    experiment = mlflow.set_experiment(experiment_name(model.name))
    existing = _find_run(mlflow, experiment.experiment_id, airflow_run_id=run_id, modelops_role=PARENT_ROLE)
    kwargs = {"run_id": existing.info.run_id} if existing else {"run_name": f"retrain {safe_run_id(run_id)}"}
    with mlflow.start_run(**kwargs) as run:
        mlflow.set_tags(
            {
                "airflow_dag_id": dag_id,
                "airflow_run_id": run_id,
                "modelops_role": PARENT_ROLE,
                "model": model.name,
                "dataset_hash": snapshot["dataset_hash"],
                "manifest_uri": snapshot["manifest_uri"],
            }
        )
        mlflow.log_params(
            {"window_days": snapshot["window"]["days"], "window_last_day": snapshot["window"]["last_day"]}
        )
        mlflow.log_metric("snapshot_rows", snapshot["rows"])
    return {"parent_run_id": run.info.run_id, "experiment_id": experiment.experiment_id}


def train_candidate(model: ModelConfig, run_id: str, candidate: str, parent: dict, store: Store | None = None) -> dict:
    """Train one candidate as a child MLflow run; a re-run returns the run's recorded result."""
    from mlflow.models import infer_signature

    from modelops.training.candidate import train_candidate as fit
    from modelops.training.search_spaces import skops_trusted_types

    mlflow = _mlflow()
    existing = _find_run(
        mlflow, parent["experiment_id"], airflow_run_id=run_id, modelops_role=CANDIDATE_ROLE, candidate=candidate
    )
    if existing is not None and existing.info.status == "FINISHED" and existing.data.tags.get("model_uri"):
        log.info("%s already trained in MLflow run %s; reusing its result", candidate, existing.info.run_id)
        return mlflow.artifacts.load_dict(f"runs:/{existing.info.run_id}/candidate_result.json")

    train, _ = training_split(model, run_id, store)
    X, y = train[model.feature_names], train[model.target]
    result = fit(model, candidate, X, y)
    kwargs = {"run_id": existing.info.run_id} if existing else {"run_name": candidate}
    with mlflow.start_run(
        **kwargs, experiment_id=parent["experiment_id"], parent_run_id=parent["parent_run_id"], nested=True
    ) as run:
        mlflow.set_tags(
            {"airflow_run_id": run_id, "modelops_role": CANDIDATE_ROLE, "candidate": candidate, "model": model.name}
        )
        mlflow.log_params({f"param_{k}": v for k, v in result.params.items()} | {"candidate": candidate})
        for metric, values in result.cv_metrics.items():
            if values["mean"] is not None:
                mlflow.log_metric(f"cv_{metric}", values["mean"])
                mlflow.log_metric(f"cv_{metric}_std", values["std"] or 0.0)
        for metric, value in result.train_metrics.items():
            if value is not None:
                mlflow.log_metric(f"train_{metric}", value)
        mlflow.log_metrics({"fit_seconds": result.fit_seconds, "search_seconds": result.search_seconds})
        example = X.head(5)
        info = mlflow.sklearn.log_model(
            result.model,
            name="model",
            signature=infer_signature(example, result.model.predict(example)),
            input_example=example,
            skops_trusted_types=skops_trusted_types(candidate, model.problem_type),
        )
        record = result.to_dict() | {
            "mlflow_run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "parent_run_id": parent["parent_run_id"],
        }
        mlflow.log_dict(record, "candidate_result.json")
        mlflow.set_tag("model_uri", info.model_uri)
        mlflow.set_tag("rules", "passed" if result.passed else "failed: " + "; ".join(result.failure_reasons)[:4000])
    return record


# 5. Select -----------------------------------------------------------------------------------------
def select_best(model: ModelConfig, results: list[dict]) -> dict:
    """The best passing candidate. If none passed, the best failing one goes on to the gate,
    which rejects it on the training-rules check, so the decision is recorded with its reasons."""
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
    return {
        key: best[key]
        for key in (
            "candidate",
            "cv_primary",
            "mlflow_run_id",
            "model_uri",
            "parent_run_id",
            "passed",
            "failure_reasons",
            "selection",
            "params",
        )
    }


# 6. Evaluate ---------------------------------------------------------------------------------------
def evaluate(model: ModelConfig, run_id: str, best: dict, store: Store | None = None) -> dict:
    """Candidate and current champion on the same held-out split; written next to the snapshot.

    A re-run of a run that already decided on this candidate returns the recorded evaluation
    unchanged (it is the decision's evidence); the champion is never this run's own version."""
    from modelops import decision_record
    from modelops.training.evaluation import evaluate_model

    store = store or Store()
    key = run_prefix(model.name, run_id) + "evaluation.json"
    record = decision_record.load(store, model.name, run_id)
    if record is not None and decision_record.same_candidate(record, best) and store.exists(key):
        log.info("run %s already decided on %s; keeping its evaluation %s", run_id, best["candidate"], key)
        return _evaluation_summary(store, key, store.get_json(key), record.get("champion_version_compared"))
    mlflow = _mlflow()
    _, test = training_split(model, run_id, store)
    X, y = test[model.feature_names], test[model.target]
    candidate_model = mlflow.sklearn.load_model(best["model_uri"])
    candidate_eval = evaluate_model(candidate_model, X, y, model)
    champion = registry.champion_to_compare(model.name, run_id, record)
    champion_eval = None
    if champion is not None:
        champion_model = mlflow.sklearn.load_model(champion["model_uri"])
        champion_eval = evaluate_model(champion_model, X, y, model) | {
            "version": champion["version"],
            "model_uri": champion["model_uri"],
        }
    evaluation = {
        "test_rows": len(test),
        "candidate": candidate_eval
        | {"candidate": best["candidate"], "model_uri": best["model_uri"], "mlflow_run_id": best["mlflow_run_id"]},
        "champion": champion_eval,
    }
    store.put_json(key, evaluation)
    with mlflow.start_run(run_id=best["mlflow_run_id"]):
        mlflow.log_metrics({f"test_{k}": v for k, v in candidate_eval["metrics"].items() if v is not None})
        mlflow.log_metric("latency_ms_per_1k", candidate_eval["latency_ms_per_1k"])
    return _evaluation_summary(store, key, evaluation, champion["version"] if champion else None)


def _evaluation_summary(store: Store, key: str, evaluation: dict, champion_version: str | None) -> dict:
    champion_eval = evaluation.get("champion")
    return {
        "evaluation_uri": store.uri(key),
        "candidate_primary": evaluation["candidate"]["primary"],
        "champion_primary": champion_eval["primary"] if champion_eval else None,
        "champion_version": champion_version,
    }


# 7. Gate -------------------------------------------------------------------------------------------
def gate(
    model: ModelConfig,
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
    """``decide_promotion`` on the evaluation; every decision, pass or fail, is written to S3.

    Write-once: a re-run finds the run's decision, appends an entry to its ``attempts`` and
    returns the original decision (see :mod:`modelops.decision_record`)."""
    from modelops import decision_record
    from modelops.training.gate import decide_promotion, policy_from_config

    store = store or Store()
    key = decision_key(model.name, run_id)
    earlier = decision_record.load(store, model.name, run_id)
    if decision_record.keeps_original(earlier, best):
        decision_record.append_attempt(
            store, model.name, run_id, "gate", decision_record.KEPT, decided_at=earlier.get("decided_at")
        )
        return decision_record.summary(earlier, store, model.name, run_id)
    evaluation = store.get_json(store.key_of(evaluated["evaluation_uri"]))
    candidate = evaluation["candidate"] | {
        "training_passed": best["passed"],
        "failure_reasons": best["failure_reasons"],
    }
    decision = decide_promotion(candidate, evaluation["champion"], policy_from_config(model, overrides))
    record = decision.to_dict() | {
        "model": model.name,
        "airflow_dag_id": dag_id,
        "airflow_run_id": run_id,
        "decided_at": _now(),
        "dry_run": dry_run,
        "selection": best["selection"],
        "evidence": {
            "manifest_uri": snapshot["manifest_uri"],
            "dataset_hash": snapshot["dataset_hash"],
            "validation_uri": validation["result_uri"],
            "data_docs_uri": validation["data_docs_uri"],
            "baseline_uri": baseline["baseline_uri"],
            "evaluation_uri": evaluated["evaluation_uri"],
            "candidate_run_id": best["mlflow_run_id"],
            "parent_run_id": best["parent_run_id"],
            "model_uri": best["model_uri"],
            "excluded_batches": snapshot.get("excluded", []),
        },
        "champion_version_compared": evaluated["champion_version"],
    }
    if earlier is not None:  # the candidate changed before anything was registered: keep both
        record["earlier_decisions"] = [*earlier.get("earlier_decisions", []), decision_record.earlier_decision(earlier)]
        record["attempts"] = earlier.get("attempts", [])
    store.put_json(key, record)
    if earlier is not None:
        decision_record.append_attempt(store, model.name, run_id, "gate", decision_record.DECIDED_AGAIN)
    verdict = "PROMOTE" if decision.promote else "KEEP CHAMPION"
    log.info("gate for %s: %s%s\n%s", model.name, verdict, " (dry run)" if dry_run else "", "\n".join(decision.reasons))
    return {
        "promote": decision.promote,
        "dry_run": dry_run,
        "reasons": decision.reasons,
        "failed_checks": decision.failed_checks,
        "decision_uri": store.uri(key),
        "champion_version_compared": evaluated["champion_version"],
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _baseline_with_predictions(model: ModelConfig, run_id: str, best: dict, store: Store) -> dict:
    """The run's baseline plus the registered model's prediction distribution on the same rows,
    so monitoring can judge prediction drift. Deterministic: a re-run writes the same profile."""
    from modelops.data.baseline import profile_baseline
    from modelops.data.snapshot import load_manifest, load_snapshot_frame

    manifest = load_manifest(model.name, run_id, store)
    frame = load_snapshot_frame(model, manifest, store)
    predictions = _mlflow().sklearn.load_model(best["model_uri"]).predict(frame[model.feature_names])
    if model.is_classifier:
        predictions = [str(p) for p in predictions]
    profile = profile_baseline(frame, model, predictions=predictions)
    return profile | {"dataset_hash": manifest["dataset_hash"], "manifest_uri": manifest["uri"]}


# 8. Register ---------------------------------------------------------------------------------------
def register(
    model: ModelConfig,
    run_id: str,
    dag_id: str,
    best: dict,
    snapshot: dict,
    validation: dict,
    baseline: dict,
    decided: dict,
    store: Store | None = None,
) -> dict:
    """A registry version with lineage tags and the baseline attached; alias ``challenger``."""
    store = store or Store()
    mlflow_client = registry.client()
    baseline_profile = _baseline_with_predictions(model, run_id, best, store)
    store.put_json(store.key_of(baseline["baseline_uri"]), baseline_profile)
    mlflow_client.log_dict(best["mlflow_run_id"], baseline_profile, "baseline/baseline.json")
    tags = {
        "dataset_hash": snapshot["dataset_hash"],
        "manifest_uri": snapshot["manifest_uri"],
        "gx_result_uri": validation["result_uri"],
        "baseline_uri": baseline["baseline_uri"],
        "decision_uri": decided["decision_uri"],
        "airflow_dag_id": dag_id,
        "airflow_run_id": run_id,
        "candidate": best["candidate"],
        "cv_primary": f"{best['cv_primary']:.6f}" if best["cv_primary"] is not None else "",
    }
    existing = registry.find_version_for_run(model.name, run_id, mlflow_client)
    version = existing or registry.register_version(
        model.name, best["model_uri"], best["mlflow_run_id"], tags, model.description, mlflow_client
    )
    if existing is None:  # a re-run leaves the aliases where later runs put them
        registry.set_alias(
            model.name, registry.CHALLENGER, version.version, reason="passed the gate", actor=dag_id, store=store,
            mlflow_client=mlflow_client, extra={"airflow_run_id": run_id},
        )  # fmt: skip
    key = decision_key(model.name, run_id)
    if existing is None or not store.exists(key) or store.get_json(key).get("registered_version") is None:
        store.update_json(key, registered_version=version.version)
    return {"version": version.version, "model_uri": f"models:/{model.name}/{version.version}"}


# 9. Promote ----------------------------------------------------------------------------------------
def promote(
    model: ModelConfig,
    run_id: str,
    dag_id: str,
    registered: dict,
    decided: dict,
    actor: str | None = None,
    store: Store | None = None,
) -> dict:
    store = store or Store()
    outcome = registry.promote(
        model.name,
        registered["version"],
        expected_champion=decided["champion_version_compared"],
        reason="; ".join(decided["reasons"])[:2000],
        actor=actor or dag_id,
        run_id=run_id,
        store=store,
    )
    from modelops import decision_record

    result = {k: v for k, v in outcome.items() if k != "event"}
    key = decision_key(model.name, run_id)
    recorded = store.get_json(key).get("promotion") if store.exists(key) else None
    if recorded is None:
        store.update_json(key, promotion=result | {"at": _now()})
    else:  # a re-run: the first promotion's record stands
        decision_record.append_attempt(
            store, model.name, run_id, "promote", "kept original promotion", result=result
        )  # fmt: skip
    return result


# The same chain in one process ---------------------------------------------------------------------
def run_chain(
    model: ModelConfig, as_of: dt.datetime, run_id: str, *, dag_id: str = "plain_python", params: dict | None = None
) -> dict:
    """Every step in sequence without Airflow: the benchmark's reference and a debugging aid."""
    params = params or {}
    timings: dict[str, float] = {}

    def timed(name, fn, *args, **kwargs):
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - started
        return value

    snapshot = timed(
        "snapshot_training_data",
        snapshot_training_data,
        model,
        as_of,
        params.get("training_window_days", model.training.window_days),
        run_id,
    )
    if snapshot.get("nothing_to_train"):
        return {"nothing_to_train": snapshot["message"], "timings": timings}
    validation = timed("validate_training_data", validate_training_data, model, run_id)
    baseline = timed("profile_baseline", profile_training_baseline, model, run_id)
    parent = timed("start_tracking", start_parent_run, model, run_id, dag_id, snapshot)
    results = []
    for candidate in params.get("candidates") or model.training.candidates:
        results.append(timed(f"train_candidates[{candidate}]", train_candidate, model, run_id, candidate, parent))
    best = timed("select_best", select_best, model, results)
    evaluated = timed("evaluate", evaluate, model, run_id, best)
    overrides = {k: params[k] for k in ("min_primary", "tolerance", "force_promote") if k in params}
    decided = timed(
        "gate",
        gate,
        model,
        run_id,
        dag_id,
        best,
        evaluated,
        snapshot,
        validation,
        baseline,
        overrides,
        bool(params.get("dry_run")),
    )
    outcome = {"decision": decided, "timings": timings}
    if decided["promote"] and not decided["dry_run"]:
        registered = timed("register", register, model, run_id, dag_id, best, snapshot, validation, baseline, decided)
        outcome["promotion"] = timed("promote", promote, model, run_id, dag_id, registered, decided)
    return outcome
