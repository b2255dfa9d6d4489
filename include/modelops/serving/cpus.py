"""CPUs of their own for the shadow process (``MODELOPS_SERVING_SHADOW_CPUS``).

The shadow process runs in the idle scheduling class, so it never takes CPU time a worker wants;
but when it runs on the core a worker has just left, the next request finds that core's caches
full of the shadow's trees and rows. Measured in benchmarks/serving_shadow.py (docs/BENCHMARKS.md,
2026-12-08): with the shadow free to run anywhere the worker's own CPU per 100-record request grew
~0.5 ms (+10%) and its p99 +25-32% at a quarter of saturation; with the shadow process on one CPU
and the worker on the other, neither grew. So an operator can give the shadow processes CPUs of
their own: each worker then runs on the CPUs it was allowed minus those (its threads too), and its
shadow process only on those.

Linux only (``sched_setaffinity``); the CPU list has Linux's ``cpuset`` form: ``1``, ``2-3``, ``0,2-3``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from modelops.settings import SettingError

log = logging.getLogger(__name__)

VARIABLE = "MODELOPS_SERVING_SHADOW_CPUS"
#: The highest CPU number taken (Linux's own limit, NR_CPUS, is at most 8192).
MAX_CPU = 8191
#: The shadow process's niceness where the idle scheduling class is not available.
NICENESS = 10


def allowed() -> frozenset[int]:
    """The CPUs this thread may run on (a container's cpuset, a ``taskset``), or none where unknown."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return frozenset()


def parse(text: str) -> frozenset[int]:
    """``"0,2-3"`` -> {0, 2, 3}; a malformed list raises :class:`SettingError` naming the variable."""
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high if high else low)
        except ValueError:
            raise SettingError(f"{VARIABLE} must be a CPU list like '1', '2-3' or '0,2-3', got {text!r}") from None
        if first < 0 or last < first or last > MAX_CPU:
            raise SettingError(f"{VARIABLE}: {part!r} is not a CPU range (first <= last, both 0-{MAX_CPU})")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def shadow_cpus(value: str | None) -> frozenset[int]:
    """The shadow processes' CPUs from the variable's value (empty: not set), checked against what
    this process may use: each CPU allowed, and at least one left for the worker."""
    if not value or not value.strip():
        return frozenset()
    cpus = parse(value)
    usable = allowed()
    if not usable:
        raise SettingError(f"{VARIABLE} is set, but this system cannot pin processes to CPUs (Linux only)")
    if not cpus <= usable:
        raise SettingError(
            f"{VARIABLE}: CPU(s) {text(cpus - usable)} are not among those this worker may use ({text(usable)})"
        )
    if not usable - cpus:
        raise SettingError(
            f"{VARIABLE} takes every CPU this worker may use ({text(usable)}): leave at least one for the answers"
        )
    return cpus


def pin_worker(shadows: frozenset[int]) -> frozenset[int]:
    """Put every thread of this worker on the CPUs it may use minus ``shadows`` (its shadow
    process's own); the CPUs it had, to put it back at shutdown (empty: nothing was pinned)."""
    if not shadows:
        return frozenset()
    before = allowed()
    pin_threads(before - shadows)
    log.info("shadow process on CPU(s) %s, this worker on %s", text(shadows), text(before - shadows))
    return before


def run_in_the_background(cpus: frozenset[int]) -> None:
    """The shadow process's scheduling: Linux's idle class, so it takes only CPU time no serving
    worker (or anything else) wants and a worker that wakes preempts it at once (niced where the
    class is not available); given ``cpus``, on those only (called before its threads start)."""
    if cpus:
        pin_threads(cpus)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(NICENESS)


def pin_threads(cpus: Iterable[int], pid: int | str = "self") -> None:
    """Every thread of process ``pid`` (this one by default; and those it starts later) runs on ``cpus`` only."""
    cpus = set(cpus)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


def text(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
