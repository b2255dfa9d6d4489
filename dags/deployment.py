"""
### deploy_&lt;model&gt; and rollback_&lt;model&gt;: what serves, on request

**deploy_&lt;model&gt;** loads a registry version (default: the current `champion`) into the serving
service without a restart and smoke-tests it live; if the smoke test fails, `champion` goes
back to `previous-champion`, serving reloads it, and the run fails. Use it after moving the
alias by hand in the MLflow UI.

**rollback_&lt;model&gt;** moves `champion` to a version you name (default: `previous-champion`),
reloads serving, verifies it answers, and records who asked and why in
`registry/<model>/alias-history.json`.

Both are trigger-only (no schedule).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from modelops.dagkit import START_DATE, declared_models, default_args, guard_run_params

VERSION_PATTERN = r"^([0-9]+|champion|previous-champion|challenger)$"


def _actor(context) -> str:
    user = getattr(context["dag_run"], "triggering_user_name", None)
    return f"{user} via {context['dag'].dag_id}" if user else context["dag"].dag_id


def build_deploy_dag(model):
    @dag(
        dag_id=f"deploy_{model.name}",
        doc_md=__doc__,
        description=f"Load a '{model.name}' version into serving and smoke-test it",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["modelops", "deploy", model.name],
        default_args=default_args(model),
        dagrun_timeout=dt.timedelta(minutes=30),
        params={
            "version": Param(
                "champion", type="string", pattern=VERSION_PATTERN, title="Version to deploy",
                description="A version number, or an alias: champion, previous-champion, challenger.",
            ),
        },
    )  # fmt: skip
    def deploy():
        @task
        def deploy_version() -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from modelops.deploy.rollout import SmokeTestFailed, deploy_and_verify
            from modelops.registry import resolve_version

            context = get_current_context()
            version = resolve_version(model.name, context["params"]["version"])
            try:
                return deploy_and_verify(model, version, actor=_actor(context), run_id=context["run_id"])
            except SmokeTestFailed as exc:
                raise AirflowFailException(str(exc)) from None

        deploy_version()
        guard_run_params()

    return deploy()


def build_rollback_dag(model):
    @dag(
        dag_id=f"rollback_{model.name}",
        doc_md=__doc__,
        description=f"Move '{model.name}' champion back to a known-good version",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["modelops", "rollback", model.name],
        default_args=default_args(model),
        dagrun_timeout=dt.timedelta(minutes=30),
        params={
            "version": Param(
                "previous-champion", type="string", pattern=VERSION_PATTERN, title="Version to restore",
                description="A version number or an alias (default: previous-champion).",
            ),
            "reason": Param(
                "", type="string", minLength=3, maxLength=1000, title="Why",
                description="Recorded in the alias history with your user name.",
            ),
        },
    )  # fmt: skip
    def rollback():
        @task
        def restore_version() -> dict:
            from modelops.deploy.rollout import recent_rows_of_version, served_version, smoke_test
            from modelops.deploy.rollout import rollback as move_back
            from modelops.registry import resolve_version

            context = get_current_context()
            params = context["params"]
            version = resolve_version(model.name, params["version"])
            result = move_back(
                model.name, reason=params["reason"], actor=_actor(context), run_id=context["run_id"], to_version=version
            )
            smoke = smoke_test(model, version, recent_rows_of_version(model, version))
            return {k: v for k, v in result.items() if k != "event"} | {
                "served": served_version(model.name),
                "smoke_test": smoke,
            }

        restore_version()
        guard_run_params()

    return rollback()


for _model in declared_models():
    globals()[f"deploy_{_model.name}"] = build_deploy_dag(_model)
    globals()[f"rollback_{_model.name}"] = build_rollback_dag(_model)
