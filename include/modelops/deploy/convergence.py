"""Every serving worker on the deployed version: the wait between a reload and the smoke test.

A reload request reaches one serving worker (uvicorn process or replica); the others follow the
``champion`` alias on their own within their poll interval. Each worker's heartbeat
(:mod:`modelops.serving.heartbeat`) says which version it serves, so after a reload the deploy
stage polls them until every live worker reports the deployed version, for at most
:func:`timeout_for` (``STALE_AFTER_POLLS`` × the workers' poll interval + ``MARGIN_SECONDS``,
or ``MODELOPS_DEPLOY_CONVERGENCE_TIMEOUT_SECONDS``). No live heartbeat at all (serving older than
heartbeats, or ``MODELOPS_SERVING_ALIAS_POLL_SECONDS=0``) keeps the old behaviour, one worker
checked, and the record says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from modelops.deploy.verification import PostDeployCheckFailed
from modelops.records import Record
from modelops.serving import heartbeat
from modelops.settings import env_float

log = logging.getLogger(__name__)

#: Added to the workers' own bound (a few polls): the time a worker takes to load the version.
MARGIN_SECONDS = 60.0
#: How often the heartbeats are read while waiting.
CHECK_EVERY_SECONDS = 1.0
TIMEOUT_VARIABLE = "MODELOPS_DEPLOY_CONVERGENCE_TIMEOUT_SECONDS"


@dataclasses.dataclass(frozen=True)
class WorkerConvergence(Record):
    """Which serving workers confirmed ``version`` of a model, and which did not in time."""

    version: str
    converged: bool
    #: Worker ids whose heartbeat reports ``version``.
    confirmed: list[str]
    #: Worker id -> the version it serves (None: none) for the live workers that did not confirm.
    lagging: dict[str, str | None]
    #: False when no live heartbeat was found: only the worker that took the reload is known.
    heartbeats: bool
    waited_seconds: float
    note: str

    def failure(self, model: str) -> str:
        if not self.lagging and not self.converged:
            return f"'{model}' version {self.version}: {self.note}"
        lagging = ", ".join(f"{w} (serves {v or 'nothing'})" for w, v in sorted(self.lagging.items()))
        confirmed = ", ".join(self.confirmed) or "none"
        return (
            f"not every serving worker loaded '{model}' version {self.version} within {self.waited_seconds:.0f} s: "
            f"lagging {lagging}; confirmed: {confirmed}"
        )


class WorkersDidNotConverge(PostDeployCheckFailed):
    """A live serving worker did not report the deployed version in time; the message names it."""

    def __init__(self, message: str, convergence: WorkerConvergence):
        super().__init__(message)
        self.convergence = convergence


def timeout_for(records: list[dict[str, Any]], environ=None) -> float:
    """``MODELOPS_DEPLOY_CONVERGENCE_TIMEOUT_SECONDS``, else a few of the slowest worker's polls + a margin."""
    polls = [float(r.get("poll_seconds") or 0) for r in records]
    default = heartbeat.STALE_AFTER_POLLS * max(polls, default=0.0) + MARGIN_SECONDS
    return env_float(TIMEOUT_VARIABLE, default, minimum=0, environ=environ)


def _split(
    records: list[dict[str, Any]], model: str, version: str, field: str = "version", path: str | None = None
) -> tuple[list[str], dict[str, str | None]]:
    confirmed, lagging = [], {}
    for record in records:
        served = heartbeat.served_version(record, model, field)
        # A heartbeat older than the tag field says nothing of it, and is taken at its version.
        tagged = heartbeat.served_version(record, model, "tagged_path")
        if served == (None if version is None else str(version)) and (path is None or tagged in (None, path)):
            confirmed.append(str(record["worker_id"]))
        else:
            lagging[str(record["worker_id"])] = (
                served if served != version else f"{served}, loaded before its {path} verdict"
            )
    return confirmed, lagging


def wait_for_workers(
    model: str,
    version: str,
    store: Any,
    *,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    field: str = "version",
    path: str | None = None,
) -> WorkerConvergence:
    """Poll the live workers' heartbeats until each serves ``version`` of ``model``, or the bound passes
    (``field="shadow"``: until each scores it in shadow; None waits for no shadow). With ``path``, a
    worker confirms only once it loaded the version with the deploy's scoring-path tag on it."""
    version, started = (None if version is None else str(version)), clock()
    records = heartbeat.live_workers(store, now())
    if not records:
        note = (
            "no live serving worker heartbeat (serving older than heartbeats, or MODELOPS_SERVING_ALIAS_POLL_SECONDS=0): "
            "only the worker that took the reload is known to serve this version"
        )
        log.warning("%s version %s: %s", model, version, note)
        return WorkerConvergence(version, True, [], {}, False, 0.0, note)
    bound = timeout if timeout is not None else timeout_for(records)
    while True:
        confirmed, lagging = _split(records, model, version, field, path)
        waited = clock() - started
        if not lagging or waited >= bound:
            break
        sleep(min(CHECK_EVERY_SECONDS, max(0.0, bound - waited)))
        # Re-read: a worker that died without deleting its record drops out once its heartbeat is stale.
        records = heartbeat.live_workers(store, now())
    if not records:
        note = "every serving worker heartbeat went stale or was deleted while waiting (serving restarting?)"
        log.error("%s version %s: %s", model, version, note)
        return WorkerConvergence(version, False, [], {}, False, round(clock() - started, 1), note)
    converged = not lagging
    note = (
        f"{len(confirmed)} live serving worker(s) confirmed version {version}"
        if converged
        else f"{len(lagging)} of {len(confirmed) + len(lagging)} live serving worker(s) did not load version {version} within {bound:.0f} s"
    )
    (log.info if converged else log.error)("%s: %s (%s)", model, note, ", ".join(confirmed) or "none confirmed")
    return WorkerConvergence(version, converged, confirmed, lagging, True, round(waited, 1), note)
