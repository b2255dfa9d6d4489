"""
### retrain_&lt;model&gt;: validate, train, gate, register, promote

Runs on the model's schedule, on a retrain request (an Asset event from monitoring), from the
trigger form, and as a backfill. Each run:

1. **snapshot_training_data**: the complete daily batches in the training window that ends at
   the run's as-of instant → `snapshots/<model>/<run_id>/manifest.json` (keys, ETags, rows, hash).
   Each file is judged on its own by the batch suite (ingestion's verdict reused); failing files are
   left out and listed as `excluded`. An empty window ends the run early as "nothing to train": the
   next tasks skip, and the run succeeds.
2. **validate_training_data**: the model's Great Expectations suite (`expectations/<model>.json`);
   JSON result + Data Docs HTML next to the manifest. A failure stops the run; the champion is untouched.
   Beside it, **start_tracking** opens the MLflow parent run and lists the candidates to train,
   once the pool `training_<model>` has the declared slots (`training.parallel_candidates`).
3. **train_candidates**: one mapped task per candidate, each a child MLflow run under the parent,
   on the Celery queue `training` (`MODELOPS_TRAINING_QUEUE`) within the pool; beside training,
   **profile_baseline**: per-feature statistics and constraints that monitoring compares with.
4. **select_best** on the primary CV metric; **evaluate** best vs champion on the same test split.
5. **gate**: `decide_promotion` → `decisions/<model>/<run_id>.json`, pass or fail.
6. **register** (lineage tags, alias `challenger`; skipped with what follows when the gate says no
   or on a dry run) → optional human **approve_promotion** → **promote** (`champion` moves, the old
   one becomes `previous-champion`, history appended).
7. **deploy**: serving hot-swaps to the new champion and gets its post-deploy check live (stored input example and
   recent training rows must match offline predictions, within a latency budget); a failure rolls the
   champion back to `previous-champion`, reloads serving and fails the run.

`dry_run` stops after the gate; `force_promote` skips only the champion comparison (recorded).
`submitted_model_uri` (or `python -m modelops.submit`) replaces the candidates with a model trained
elsewhere: checked against the declaration, then evaluated, gated and promoted like any candidate.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, get_current_context, task

from modelops import pools
from modelops.dagkit import (
    as_of,
    dag_header,
    declared_models,
    fail_without_retry,
    guard_run_params,
    retrain_schedule,
)
from modelops.training.results import DECIDED, REGISTERED


def skip_without_training_data(snapshot: dict) -> None:
    """An empty window is not an error: the task skips, and every task after it with it."""
    from airflow.sdk.exceptions import AirflowSkipException

    from modelops.data import steps

    if not steps.has_training_data(snapshot):
        raise AirflowSkipException(snapshot["message"])


def _params(model) -> dict:
    gate = model.gate
    higher = model.primary_higher_is_better
    return {
        "training_window_days": Param(
            model.training.window_days, type="integer", minimum=1, maximum=3650,
            title="Training window (days)",
            description="Complete days of data before the run's as-of date that training reads.",
        ),
        "candidates": Param(
            list(model.training.candidates), type="array", minItems=1, uniqueItems=True,
            items={"type": "string", "enum": sorted(model.candidate_names)},
            title="Candidates to try",
            description="Estimators searched (each with a small grid and cross-validation): the built-in "
            "families and the model's own (code.candidates in its declaration).",
        ),
        "submitted_model_uri": Param(
            None, type=["null", "string"], maxLength=500,
            title="Submit a model you trained (MLflow model URI)",
            description="runs:/<run id>/model or models:/m-<id> of a scikit-learn model logged with skops to this "
            "tracking server. It replaces the candidates: checked against the declared features and answer form, "
            "evaluated beside the champion on a fresh snapshot's held-out split, and gated like any candidate. "
            "Empty: train the candidates.",
        ),
        "submitted_by": Param(
            None, type=["null", "string"], maxLength=200,
            title="Submitted by",
            description="Who submits the model (recorded with it); empty: the user who triggers the run.",
        ),
        "min_primary": Param(
            gate.min_primary, type=["null", "number"],
            title=f"{'Minimum' if higher else 'Maximum'} {model.metrics.primary} on the test split",
            description="Absolute bound the candidate must meet; empty keeps the model config's value.",
        ),
        "tolerance": Param(
            gate.tolerance, type="number", minimum=0,
            title="Tolerance vs champion",
            description=f"How much worse than the champion on {model.metrics.primary} the candidate may be.",
        ),
        "force_promote": Param(
            False, type="boolean", title="Force promotion",
            description="Skip only the comparison with the champion (recorded in the decision). Other checks still apply.",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run",
            description="Run everything up to and including the gate; do not register or promote.",
        ),
        "require_approval": Param(
            False, type="boolean", title="Require human approval",
            description="Hold promotion until someone approves it in the Airflow UI (Required actions).",
        ),
        "shadow": Param(
            model.serving.shadow or gate.require_shadow_days > 0, type="boolean", title="Shadow first",
            description="Put the version that passed the gate in shadow (scored beside the champion on live "
            "traffic, never answering) instead of promoting it; gate.require_shadow_days makes this the rule.",
        ),
    }  # fmt: skip


def build_retrain_dag(model):
    @dag(
        **dag_header(
            model,
            "retrain",
            doc_md=__doc__,
            description=f"Retrain, gate and promote model '{model.name}'",
            schedule=retrain_schedule(model),
            timeout=dt.timedelta(hours=2),
            params=_params(model),
            render_template_as_native_obj=False,
        )
    )
    def retrain():
        @task
        def snapshot_training_data() -> dict:
            """Snapshot the complete daily batches of the training window; failing files are excluded."""
            from modelops.data import steps

            context = get_current_context()
            window = context["params"]["training_window_days"]
            return steps.snapshot_training_data(model, as_of(context), window, context["run_id"])

        @task
        def validate_training_data(snapshot: dict) -> dict:
            """Run the model's expectation suite on the snapshot; bad data fails the run without retries.
            An empty window skips it and, through it, the rest of the run (which ends as success)."""
            from modelops.data import steps

            skip_without_training_data(snapshot)
            with fail_without_retry(steps.TrainingDataInvalid):
                return steps.validate_training_data(model, get_current_context()["run_id"])

        @task
        def profile_baseline(validation: dict) -> dict:
            """Profile per-feature statistics of the snapshot: what monitoring compares live data with."""
            from modelops.data import steps

            return steps.profile_baseline(model, get_current_context()["run_id"])

        @task
        def start_tracking(snapshot: dict) -> list[dict]:
            """Open (or find again) the MLflow parent run, beside validation, and list the candidates
            chosen in the trigger form (one mapped training task each) once the model's training
            pool is known to exist with the declared slots."""
            from modelops.training import steps

            skip_without_training_data(snapshot)
            context = get_current_context()
            pools.ensure_training_pool(model)
            parent = steps.start_tracking(model, context["run_id"], context["dag"].dag_id, snapshot)
            return steps.training_plan(parent, steps.candidates_to_try(context["params"]))

        @task(
            queue=pools.training_queue(),
            pool=pools.training_pool(model.name),
            execution_timeout=dt.timedelta(minutes=45),
        )
        def train_candidates(candidate: str, parent: dict) -> dict:
            """Train one candidate as a child MLflow run (on the training queue, within the model's
            pool); a re-run returns the run's recorded result."""
            from modelops.training import steps, submission

            context = get_current_context()
            with fail_without_retry(submission.SubmissionRefused):
                submitted = submission.submission_of(context["params"], context["dag_run"].triggering_user_name)
                return steps.train_candidates(model, context["run_id"], candidate, parent, submission=submitted)

        @task
        def select_best(results) -> dict:
            """Pick the best passing candidate; if none passed, the best failing one goes to the gate."""
            from modelops.training import steps

            return steps.select_best(model, list(results))

        @task
        def evaluate(best: dict) -> dict:
            """Measure candidate and champion on the same held-out split."""
            from modelops.training import steps

            return steps.evaluate(model, get_current_context()["run_id"], best)

        @task
        def gate(best: dict, evaluated: dict, snapshot: dict, validation: dict, baseline: dict) -> dict:
            """Decide promotion on the evaluation; every decision, pass or fail, is written to S3."""
            from modelops.training import steps

            context = get_current_context()
            params = context["params"]
            return steps.gate(
                model,
                run_id=context["run_id"],
                dag_id=context["dag"].dag_id,
                best=best,
                evaluated=evaluated,
                snapshot=snapshot,
                validation=validation,
                baseline=baseline,
                overrides={name: params[name] for name in ("min_primary", "tolerance", "force_promote")},
                dry_run=params["dry_run"],
            )

        @task.branch
        def register(best: dict, snapshot: dict, validation: dict, baseline: dict, decided: dict) -> str:
            """Register a registry version with lineage tags and the baseline attached; alias challenger.
            Skipped (and promotion with it) when the gate said no or on a dry run; then goes on to
            approve_promotion if the trigger form asked for a human, else straight to promote."""
            from airflow.sdk.exceptions import AirflowSkipException

            from modelops.training import steps

            context = get_current_context()
            if not steps.promotion_allowed(decided):
                raise AirflowSkipException("the gate kept the champion, or this is a dry run: nothing to register")
            registered = steps.register(
                model,
                run_id=context["run_id"],
                dag_id=context["dag"].dag_id,
                best=best,
                snapshot=snapshot,
                validation=validation,
                baseline=baseline,
                decided=decided,
            )
            context["ti"].xcom_push(key=REGISTERED, value=registered)
            context["ti"].xcom_push(key=DECIDED, value=decided)
            return steps.approval_needed(context["params"], model)

        approve_promotion = ApprovalOperator(
            task_id="approve_promotion",
            subject=f"Promote a new '{model.name}' champion?",
            body=(
                f"Version {{{{ ti.xcom_pull(task_ids='register', key='{REGISTERED}')['version'] }}}} passed the gate.\n\n"
                "Decision record: {{ ti.xcom_pull(task_ids='gate')['decision_uri'] }}\n\n"
                "{{ ti.xcom_pull(task_ids='gate')['reasons'] | join('\n') }}"
            ),
            response_timeout=dt.timedelta(days=3),
            doc_md="Wait (up to three days) for a person to approve the promotion of the registered version.",
        )

        @task(trigger_rule="none_failed_min_one_success")
        def promote(registered: dict, decided: dict) -> dict:
            """Move the registry alias champion to the registered version."""
            from modelops.training import steps

            context = get_current_context()
            return steps.promote(model, context["run_id"], context["dag"].dag_id, registered, decided)

        @task
        def deploy(promoted: dict) -> dict:
            """Hot-swap serving to the champion, check it live; roll back and fail if it misbehaves."""
            from modelops.training import steps

            context = get_current_context()
            with fail_without_retry(steps.PostDeployCheckFailed):
                return steps.deploy(model, promoted, actor=context["dag"].dag_id, run_id=context["run_id"])

        @task
        def start_shadow(registered: dict) -> dict:
            """Put the registered version in shadow beside the champion; promotion waits for live evidence."""
            from modelops.training import steps

            context = get_current_context()
            with fail_without_retry(steps.ShadowRefused):
                return steps.start_shadow(model, registered, actor=context["dag"].dag_id, run_id=context["run_id"])

        snapshot = snapshot_training_data()
        validation = validate_training_data(snapshot)
        baseline = profile_baseline(validation)
        plan = start_tracking(snapshot)  # beside validation: training waits for both
        # A mapped task does not take its docstring as doc_md by itself: hand it over.
        training = train_candidates.override(doc_md=train_candidates.function.__doc__)
        results = training.expand_kwargs(plan)
        validation >> results
        best = select_best(results)
        evaluated = evaluate(best)
        decided = gate(best, evaluated, snapshot, validation, baseline)
        registering = register(best, snapshot, validation, baseline, decided)
        promoted = promote(registering[REGISTERED], registering[DECIDED])
        registering >> [approve_promotion, promoted]
        start_shadow(registering[REGISTERED])
        approve_promotion >> promoted
        deploy(promoted)
        guard_run_params()

    return retrain()


for _model in declared_models():
    globals()[f"retrain_{_model.name}"] = build_retrain_dag(_model)
