"""
### deploy_&lt;model&gt; and rollback_&lt;model&gt;: what serves, on request

**deploy_&lt;model&gt;** loads a registry version (default: the current `champion`) into the serving
service without a restart and smoke-tests it live; if the smoke test fails, `champion` goes
back to `previous-champion`, serving reloads it, and the run fails. Use it after moving the
alias by hand in the MLflow UI. With `mode` **shadow** it puts a version the gate passed in
shadow instead (scored on every request beside the champion, never answering, captured under
`shadow/<model>/`); **end_shadow** ends the shadow without promotion, on record.

**rollback_&lt;model&gt;** moves `champion` to a version you name (default: `previous-champion`),
reloads serving, verifies it answers, and records who asked and why in
`registry/<model>/alias-history.json`.

Both are trigger-only (no schedule).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task

from modelops.dagkit import dag_header, declared_models, fail_without_retry, guard_run_params
from modelops.run_params import DEPLOY_MODES, VERSION_PATTERN


def build_deploy_dag(model):
    @dag(
        **dag_header(
            model, "deploy", doc_md=__doc__,
            description=f"Load a '{model.name}' version into serving and smoke-test it",
            schedule=None, timeout=dt.timedelta(minutes=30),
            params={
                "version": Param(
                    "champion", type="string", pattern=VERSION_PATTERN, title="Version to deploy",
                    description="A version number, or an alias: champion, previous-champion, challenger.",
                ),
                "mode": Param(
                    "champion", type="string", enum=list(DEPLOY_MODES), title="Mode",
                    description="champion: serve it; shadow: score it beside the champion without answering "
                    "(a version the gate passed); end_shadow: stop the shadow (recorded; version ignored).",
                ),
            },
        )
    )  # fmt: skip
    def deploy():
        @task
        def deploy_version() -> dict:
            """Load a registry version into serving and check it live; roll back if it fails."""
            from modelops.deploy import steps

            context = get_current_context()
            params = context["params"]
            with fail_without_retry(steps.PostDeployCheckFailed, steps.ShadowRefused):
                return steps.deploy_version(
                    model, params["version"], actor=steps.actor(context), run_id=context["run_id"], mode=params["mode"]
                )

        deploy_version()
        guard_run_params()

    return deploy()


def build_rollback_dag(model):
    @dag(
        **dag_header(
            model, "rollback", doc_md=__doc__,
            description=f"Move '{model.name}' champion back to a known-good version",
            schedule=None, timeout=dt.timedelta(minutes=30),
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
        )
    )  # fmt: skip
    def rollback():
        @task
        def restore_version() -> dict:
            """Move champion back to a known-good version, reload serving and check it answers."""
            from modelops.deploy import steps

            context = get_current_context()
            params = context["params"]
            return steps.restore_version(
                model, params["version"], reason=params["reason"], actor=steps.actor(context), run_id=context["run_id"]
            )

        restore_version()
        guard_run_params()

    return rollback()


for _model in declared_models():
    globals()[f"deploy_{_model.name}"] = build_deploy_dag(_model)
    globals()[f"rollback_{_model.name}"] = build_rollback_dag(_model)
