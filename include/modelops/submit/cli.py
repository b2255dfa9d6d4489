"""Submit a model you trained on your own machine to the platform's gate.

    python -m modelops.submit churn --model-uri runs:/<run id>/model [--by alice]

Log the model to the platform's tracking server first (``mlflow.set_tracking_uri(...)``;
``mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
skops_trusted_types=[...])``). This triggers ``retrain_<model>`` through Airflow's REST API with
the trigger params ``submitted_model_uri`` / ``submitted_by`` (what the trigger form takes too),
waits for the run and prints what happened: refused (and why), kept the champion (and why), or
promoted and deployed as version N. Nothing the run logged about its own metrics is trusted: the
platform evaluates it on its own held-out split beside the champion.

Exit status: 0 when the run finished (promoted, or the gate said no), 1 when the submission was
refused or the run failed, 2 for bad arguments. Talks to ``MODELOPS_AIRFLOW_URL`` (user and
password from ``MODELOPS_AIRFLOW_USER`` / ``MODELOPS_AIRFLOW_PASSWORD``) and the configured
tracking server and bucket (``MODELOPS_MLFLOW_TRACKING_URI``, ``MODELOPS_BUCKET``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import sys

from modelops.airflow_api import AirflowClient, AirflowError
from modelops.config import ConfigError, get_model
from modelops.training.results import REGISTERED

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelops.submit", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a declared model (include/models/<model>.yaml)")
    parser.add_argument(
        "--model-uri", required=True, help="runs:/<run id>/<path>, models:/m-<id> or models:/<name>/<v>"
    )
    parser.add_argument("--by", default=None, help="who submits it (default: your login name)")
    parser.add_argument("--dry-run", action="store_true", help="stop after the gate: record the decision only")
    parser.add_argument(
        "--force-promote", action="store_true",
        help="skip only the comparison with the champion (recorded); every other check of the gate applies",
    )  # fmt: skip
    parser.add_argument("--require-approval", action="store_true", help="hold promotion for a human approval")
    parser.add_argument("--unpause", action="store_true", help="unpause retrain_<model> if it is paused")
    parser.add_argument("--no-wait", action="store_true", help="print the run id and return at once")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the run (default 1800)")
    return parser


def _precheck(model, uri: str) -> str | None:
    """The source run on the tracking server, or a refusal before anything is triggered."""
    from modelops.training import submission
    from modelops.training.tracking import configured_mlflow

    try:
        submission.submission_of({"submitted_model_uri": uri})
        source_run, _ = submission.source_of(configured_mlflow().MlflowClient(), uri)
    except submission.SubmissionRefused as exc:
        raise SystemExit(f"refused: {exc}") from None
    return source_run


def _outcome(airflow: AirflowClient, model: str, dag_id: str, run: dict) -> tuple[int, str]:
    """What the run did, in words, and the exit status."""
    from modelops.store import Store
    from modelops.training import submission

    run_id = run["dag_run_id"]
    if run["state"] != "success":
        record = submission.recorded(Store(), model, run_id)
        if record is not None and not record.get("accepted"):
            return 1, f"refused: {record['refusal']}"
        return 1, f"{dag_id} run {run_id} {run['state']}:\n{airflow.failure_logs(dag_id, run_id)[-3000:]}"
    gate = airflow.xcom(dag_id, run_id, "gate")
    lines = [f"gate: {'PROMOTE' if gate['promote'] else 'KEEP CHAMPION'}", *gate["reasons"]]
    states = airflow.task_states(dag_id, run_id)
    if states.get("deploy") == "success":
        version = airflow.xcom(dag_id, run_id, "register", key=REGISTERED)["version"]
        lines.insert(0, f"promoted and deployed: {model} version {version}")
    lines.append(f"decision record: {gate['decision_uri']}")
    return 0, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        model = get_model(args.model)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return 2
    try:
        source_run = _precheck(model, args.model_uri)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    dag_id = f"retrain_{model.name}"
    conf = {
        "submitted_model_uri": args.model_uri,
        "submitted_by": args.by or getpass.getuser(),
        "dry_run": args.dry_run,
        "force_promote": args.force_promote,
        "require_approval": args.require_approval,
    }
    airflow = AirflowClient.from_env()
    try:
        if airflow.wait_for_dag(dag_id)["is_paused"]:
            if not args.unpause:
                print(f"error: {dag_id} is paused; unpause it in the UI or pass --unpause", file=sys.stderr)
                return 2
            airflow.unpause(dag_id)
        run = airflow.trigger(dag_id, conf=conf, logical_date=dt.datetime.now(dt.UTC).isoformat())
        print(f"submitted {args.model_uri} (from run {source_run}) as {dag_id} run {run['dag_run_id']}")
        if args.no_wait:
            return 0
        finished = airflow.wait_for_run(dag_id, run["dag_run_id"], timeout=args.timeout, interval=3.0)
        status, text = _outcome(airflow, model.name, dag_id, finished)
    except AirflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(text)
    return status
