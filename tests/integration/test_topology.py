"""Where tasks run: candidate training on the ``training`` queue within the model's pool, every
other task on the default queue; on the Celery topology, on the worker that serves that queue."""

from __future__ import annotations

import pytest

CHURN = "retrain_churn"


def _instances(airflow, run_id):
    return airflow.task_instances(CHURN, run_id)


def test_training_tasks_use_the_training_queue_and_pool(first_promotion, airflow):
    instances = _instances(airflow, first_promotion["dag_run_id"])
    training = [ti for ti in instances if ti["task_id"] == "train_candidates"]
    assert len(training) == 3
    assert {(ti["queue"], ti["pool"]) for ti in training} == {("training", "training_churn")}
    others = [ti for ti in instances if ti["task_id"] != "train_candidates" and ti["state"] == "success"]
    assert others and {ti["queue"] for ti in others} == {"default"}
    pool = airflow.request("GET", "/pools/training_churn")
    assert pool["slots"] == 2  # churn declares no parallel_candidates: the default


def test_training_ran_on_the_training_worker(first_promotion, stack):
    """The Celery workers log every workload they execute: the training worker took the three
    candidates of the run, the default worker took the run's other tasks and no training."""
    if not stack.config.celery:
        pytest.skip("LocalExecutor stack: no Celery workers (MODELOPS_TEST_EXECUTOR=celery runs this)")
    run_id = first_promotion["dag_run_id"]

    def workloads(component):
        lines = (stack.logs / f"{component}.log").read_text(errors="replace").splitlines()
        return [line for line in lines if "Executing workload in Celery" in line and run_id in line]

    trained = workloads("airflow-worker-training")
    assert len([line for line in trained if "train_candidates" in line]) >= 3, trained  # retries add lines
    assert all("train_candidates" in line for line in trained), trained
    light = workloads("airflow-worker")
    assert light and not [line for line in light if "train_candidates" in line], light
