"""The local stack end to end: services answer, resources exist, Airflow runs a DAG that reads S3
and logs to MLflow with its artifact in the bucket, and `up` is idempotent."""

from __future__ import annotations

import datetime as dt
import json

from tests.support.polling import wait_until

from modelops.config import MODELS_DIR, load_all_models
from modelops.local import bootstrap


def test_services_answer(stack, airflow):
    status = stack.status()
    for name in ("aws", "mlflow", "airflow-api-server"):
        assert status[name]["answers"], f"{name} does not answer: {status[name]}"
    for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert status[name]["pid"], f"{name} is not running"
    assert airflow.import_errors() == []


def test_generated_dags_are_served(airflow):
    for name in load_all_models():
        dag = airflow.wait_for_dag(f"smoke_{name}")
        assert name in [tag["name"] for tag in dag["tags"]]


def test_history_loaded_for_every_model(store, today):
    # The shipped models: `up` loads their history. A model declared later (test_new_model) brings its own data.
    for model in load_all_models(MODELS_DIR).values():
        keys = {item.key for item in store.list(model.raw_prefix)}
        expected = {bootstrap.batch_key(model, day) for day in bootstrap.history_days(model, today)}
        assert expected <= keys, sorted(expected - keys)[:5]


def test_queues_and_notifications_exist(stack):
    import boto3

    sqs = boto3.client("sqs")
    s3 = boto3.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=stack.config.bucket)["QueueConfigurations"]
    for name, model in load_all_models().items():
        url = sqs.get_queue_url(QueueName=bootstrap.queue_name(name))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) >= 5
        assert redrive["deadLetterTargetArn"].endswith(bootstrap.dead_letter_queue_name(name))
        assert int(attributes["VisibilityTimeout"]) >= 60
        rules = [n["Filter"]["Key"]["FilterRules"] for n in notifications if n["QueueArn"] == attributes["QueueArn"]]
        assert rules and rules[0][0]["Value"] == model.raw_prefix


def test_up_again_is_idempotent(stack, store, today):
    pids = stack.running()
    raw_before = sorted((o.key, o.etag) for o in store.list("raw/"))
    stack.up(load_history=False)
    assert bootstrap.load_history(stack.config, today=today) == 0
    assert stack.running() == pids
    assert sorted((o.key, o.etag) for o in store.list("raw/")) == raw_before


def test_smoke_dag_reads_s3_and_logs_mlflow_run_with_artifact_in_bucket(airflow, store, mlflow_client):
    from modelops.batches import BatchReadError, read_batch
    from modelops.layout import partition_date

    model = load_all_models()["churn"]
    run = airflow.run_and_wait("smoke_churn", timeout=300)
    assert run["state"] == "success", airflow.failure_logs("smoke_churn", run["dag_run_id"])

    summary = airflow.xcom("smoke_churn", run["dag_run_id"], "read_raw_history")
    as_of = dt.date.fromisoformat(summary["as_of"])
    visible = [o.key for o in store.list(model.raw_prefix) if partition_date(o.key) <= as_of]
    assert len(visible) >= model.data.history_days
    assert summary["batches"] == len(visible)
    readable_rows, unreadable = 0, []
    for key in visible:
        try:
            readable_rows += len(read_batch(store.get_bytes(key), "csv", key))
        except BatchReadError:
            unreadable.append(key)
    assert summary["rows"] == readable_rows and summary["unreadable"] == unreadable

    logged = airflow.xcom("smoke_churn", run["dag_run_id"], "log_mlflow_run")
    mlflow_run = mlflow_client.get_run(logged["mlflow_run_id"])
    assert mlflow_run.data.tags["airflow_run_id"] == run["dag_run_id"]
    assert mlflow_run.data.metrics["rows"] == summary["rows"]
    artifact_keys = [o.key for o in store.list("mlflow/") if o.key.endswith("history_summary.json")]
    matching = [k for k in artifact_keys if logged["mlflow_run_id"] in k]
    assert matching, f"no artifact of run {logged['mlflow_run_id']} in the bucket: {artifact_keys}"
    assert json.loads(store.get_bytes(matching[0]))["rows"] == summary["rows"]


def test_rerunning_the_smoke_run_reuses_its_mlflow_run(airflow, mlflow_client):
    run = airflow.runs("smoke_churn")[0]
    first = airflow.xcom("smoke_churn", run["dag_run_id"], "log_mlflow_run")
    airflow.clear_run("smoke_churn", run["dag_run_id"])
    again = airflow.wait_for_run("smoke_churn", run["dag_run_id"], timeout=300)
    assert again["state"] == "success"
    second = airflow.xcom("smoke_churn", run["dag_run_id"], "log_mlflow_run")
    assert second["mlflow_run_id"] == first["mlflow_run_id"]
    runs = mlflow_client.search_runs([first["experiment_id"]], f"tags.airflow_run_id = '{run['dag_run_id']}'")
    assert len(runs) == 1


def test_a_killed_scheduler_leaves_nothing_running_once_up_restarts_it(stack):
    """kill -9 of the scheduler orphans its serve-logs (and workers); `up` stops them and the new
    scheduler's log server gets the port back. Last in this file: it replaces the scheduler."""
    import os
    import signal

    import psutil

    from modelops.local import processes

    port = stack.config.log_server_port

    def log_server_of(pid: int) -> list[int]:
        return [p.pid for p in processes.tree(pid)[1:] if port in processes.listening_ports(p)]

    def poll(condition, what: str, timeout: float = 120):
        return wait_until(condition, what, timeout)

    old = stack.running()["airflow-scheduler"]
    poll(lambda: log_server_of(old), f"the scheduler's serve-logs to listen on port {port}")
    children = processes.tree(old)[1:]
    os.kill(old, signal.SIGKILL)
    poll(lambda: stack.running()["airflow-scheduler"] is None, "the killed scheduler to be seen as stopped")

    def running(process) -> bool:
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    survivors = [p for p in children if running(p)]
    assert survivors, "nothing survived the scheduler: the test would not show anything"
    assert {p.pid for p in survivors} <= set(stack.status()["airflow-scheduler"]["orphans"])

    stack.up(load_history=False)

    left = [p.pid for p in survivors if running(p)]
    assert not left, f"the dead scheduler's children still run after `up`: {left}"
    new = stack.running()["airflow-scheduler"]
    assert new and new != old
    poll(lambda: log_server_of(new), f"the new scheduler's serve-logs to get port {port}")
    assert stack.status()["airflow-scheduler"]["orphans"] == []


def test_the_mlflow_server_runs_without_a_job_runner(stack):
    """MLflow's GenAI job runner is off (stack_config.MLFLOW_SERVER): no huey consumer under the
    tracking server, whose workers still answer."""
    import psutil

    server = psutil.Process(stack._pid("mlflow"))
    commands = [" ".join(child.cmdline()) for child in server.children(recursive=True)]
    assert commands, "the MLflow server has no worker processes"
    assert not [c for c in commands if "huey" in c or "_job_runner" in c], commands
