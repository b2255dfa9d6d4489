"""Finding and stopping every process of a local stack, orphans included.

Each component is started with two environment variables, inherited by everything it spawns
(Airflow's LocalExecutor workers, its ``serve-logs`` server, task processes): ``MODELOPS_STACK_HOME``
(the stack's state folder) and ``MODELOPS_COMPONENT`` (its name). A child whose parent died is
reparented to init and may have left its process group, but it keeps its environment, so the
stack finds it by reading ``/proc/<pid>/environ`` (kept readable despite ``setproctitle``, see
:func:`marker_env`). Only processes carrying *this* stack's home
are ever signalled: other stacks (other people's tests) on the same machine are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

HOME_VARIABLE = "MODELOPS_STACK_HOME"
COMPONENT_VARIABLE = "MODELOPS_COMPONENT"


def home_id(home: Path | str) -> str:
    return str(Path(home).resolve())


def marker_env(home: Path | str, component: str) -> dict[str, str]:
    """The variables that tag a component's processes as belonging to the stack at ``home``.

    ``SPT_NOENV``: Airflow's workers and ``serve-logs`` rename themselves with ``setproctitle``,
    which by default overwrites the memory ``/proc/<pid>/environ`` shows, erasing the marker.
    """
    return {HOME_VARIABLE: home_id(home), COMPONENT_VARIABLE: component, "SPT_NOENV": "1"}


def _marker(process: psutil.Process) -> tuple[str | None, str | None]:
    try:
        environ = process.environ()
    except (psutil.Error, OSError):  # gone, a zombie, or another user's process
        return None, None
    return environ.get(HOME_VARIABLE), environ.get(COMPONENT_VARIABLE)


def _ourselves() -> set[int]:
    """This process and its ancestors: a `down` run from inside a task must not kill itself."""
    me = psutil.Process()
    return {me.pid, *(parent.pid for parent in me.parents())}


def find(home: Path | str, component: str | None = None) -> list[psutil.Process]:
    """Every live process tagged with this stack's home (and ``component``, if given)."""
    wanted, spared = home_id(home), _ourselves()
    found = []
    for process in psutil.process_iter():
        if process.pid in spared:
            continue
        with contextlib.suppress(psutil.Error):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
        stack_home, name = _marker(process)
        if stack_home == wanted and (component is None or name == component):
            found.append(process)
    return found


def belongs(pid: int, home: Path | str) -> bool:
    """Whether ``pid`` may be signalled for this stack: tagged with its home, or untagged (legacy)."""
    try:
        stack_home, _ = _marker(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False
    return stack_home in (None, home_id(home))


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop(processes: list[psutil.Process], timeout: float = 20.0) -> list[int]:
    """SIGTERM ``processes``, SIGKILL those still alive after ``timeout`` s; the pids signalled."""
    unique = {process.pid: process for process in processes}
    for process in unique.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(list(unique.values()), timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    return sorted(unique)


def stop_component(home: Path | str, component: str, pid: int | None, timeout: float = 20.0) -> list[int]:
    """Stop a component: the recorded pid's group and tree, and every process tagged with it.

    The tagged ones are looked for again after the first round, since children may be born
    while their parent shuts down.
    """
    family = tree(pid) if pid and belongs(pid, home) else []
    if family:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    stopped = stop([*family, *find(home, component)], timeout)
    late = find(home, component)
    if late:
        stopped += stop(late, timeout=5)
    return sorted(set(stopped))


def listening_ports(process: psutil.Process) -> set[int]:
    """The TCP ports ``process`` listens on (none if it is gone)."""
    try:
        connections = process.net_connections("tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}


def orphans(home: Path | str, component: str, pid: int | None) -> list[psutil.Process]:
    """Processes tagged with ``component`` that are not in the recorded pid's tree."""
    family = {process.pid for process in tree(pid)} if pid else set()
    return [process for process in find(home, component) if process.pid not in family]
