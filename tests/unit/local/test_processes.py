"""A crashed component's children are found by their environment marker and stopped, ports freed.

Real processes: a "component" that starts a child in its own session (as Airflow's scheduler starts
its LocalExecutor workers and ``serve-logs``); the component is killed with SIGKILL, its child is
reparented and keeps running, and the stack must still find and stop it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from modelops.local import processes
from modelops.local.probes import port_busy
from modelops.local.stack import Stack
from modelops.local.stack_config import StackConfig, free_port

CHILD = textwrap.dedent(
    """
    import os, socket, sys, time
    import setproctitle
    setproctitle.setproctitle("airflow serve-logs")  # as Airflow's children do: it hides the environment
    server = socket.socket()
    server.bind(("127.0.0.1", int(sys.argv[2])))
    server.listen()
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        time.sleep(60)
    """
)
# The component: starts the child in a new session (so it leaves the component's process group),
# then waits forever.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]], start_new_session=True)
    while True:
        time.sleep(60)
    """
)


def _poll(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _child_pid(path: Path) -> int:
    return _poll(lambda: path.exists() and int(path.read_text()), f"the child to write {path}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def stack(tmp_path):
    port = free_port()
    running = Stack(StackConfig(home=tmp_path / "stack", log_server_port=port))
    yield running
    processes.stop(processes.find(running.home), timeout=5)  # whatever a failing test left


def _start_crashing_scheduler(stack: Stack, tmp_path: Path) -> int:
    """Start a scheduler-like component with a surviving child, SIGKILL it; the child's pid."""
    pidfile = tmp_path / "child.pid"
    port = str(stack.config.log_server_port)
    stack._start("airflow-scheduler", [sys.executable, "-c", PARENT, CHILD, str(pidfile), port])
    child = _child_pid(pidfile)
    os.kill(stack._pid("airflow-scheduler"), signal.SIGKILL)
    _poll(lambda: stack._pid("airflow-scheduler") is None, "the scheduler to die")
    assert not _gone(child) and port_busy("127.0.0.1", stack.config.log_server_port)
    return child


def test_down_stops_the_orphans_of_a_crashed_component(stack, tmp_path):
    child = _start_crashing_scheduler(stack, tmp_path)
    assert stack.status()["airflow-scheduler"]["orphans"] == [child]

    stack.down(save=False)

    assert _gone(child), "the orphan of the killed scheduler is still running"
    assert not port_busy("127.0.0.1", stack.config.log_server_port)


def test_up_first_clears_a_crashed_components_leftovers_and_frees_its_port(stack, tmp_path):
    child = _start_crashing_scheduler(stack, tmp_path)

    stack._clear_leftovers()  # the first step of `up`

    assert _gone(child)
    assert not port_busy("127.0.0.1", stack.config.log_server_port)


def test_processes_of_another_stack_are_never_signalled(stack, tmp_path):
    other_home = tmp_path / "other-stack"
    env = {**os.environ, **processes.marker_env(other_home, "airflow-scheduler")}
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    try:
        _poll(lambda: processes.find(other_home), "the other stack's process to be visible")
        child = _start_crashing_scheduler(stack, tmp_path)

        stack.down(save=False)

        assert _gone(child)
        assert other.poll() is None, "down stopped a process of another stack"
        assert [p.pid for p in processes.find(other_home)] == [other.pid]
    finally:
        other.kill()
        other.wait()


def test_a_recorded_pid_reused_by_another_stacks_process_is_not_ours(stack, tmp_path):
    env = {**os.environ, **processes.marker_env(tmp_path / "other-stack", "mlflow")}
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    try:
        _poll(lambda: processes.find(tmp_path / "other-stack"), "the other stack's process to be visible")
        stack.pids.mkdir(parents=True, exist_ok=True)
        (stack.pids / "mlflow.pid").write_text(str(other.pid))

        assert stack._pid("mlflow") is None
        stack.down(save=False)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
