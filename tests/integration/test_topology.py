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


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:  # gone, or a zombie task process not yet reaped
        return []


def _has_sklearn_loaded(process) -> bool:
    """scikit-learn's compiled modules are mapped into the process: it imported scikit-learn."""
    try:
        with open(f"/proc/{process.pid}/maps") as maps:
            return any("/sklearn/" in line for line in maps)
    except OSError:  # gone, or not ours to read
        return False


def test_task_processes_are_forked_from_a_parent_that_imported_the_libraries(first_promotion, stack):
    """LocalExecutor: its workers come from a forkserver that preloaded pandas, scikit-learn, MLflow
    and GX; Celery: each worker imported them (Celery's ``imports``) before forking its pool. Either
    way a task process starts with them (modelops.preload)."""
    import psutil

    if stack.config.celery:
        # The worker's main process itself, before any task ran in it.
        parents = [psutil.Process(stack._pid(name)) for name in ("airflow-worker", "airflow-worker-training")]
    else:
        scheduler = psutil.Process(stack._pid("airflow-scheduler"))
        parents = [p for p in scheduler.children(recursive=True) if "forkserver" in " ".join(_cmdline(p))]
    assert parents, "no Celery worker or LocalExecutor forkserver found"
    for parent in parents:
        assert _has_sklearn_loaded(parent), (
            f"{parent.pid} ({' '.join(_cmdline(parent))[:120]}) has no scikit-learn imported"
        )
