"""The champion follower: one thread per serving worker that keeps it on the ``champion`` alias and
says so in S3.

With several workers (``python -m modelops.serving --workers N``, or replicas) a
``POST /models/<m>/reload`` lands on one of them. Every ``alias_poll_seconds`` each worker's
follower therefore (1) resolves each model's ``champion`` alias and swaps in the version it moved
to (:meth:`~modelops.serving.state.ServingState.follow_champions`), and (2) writes the worker's
heartbeat (:mod:`modelops.serving.heartbeat`), which the deploy stage reads to know when every
worker serves a deployed version. What a worker serves changing (a reload, a swap, a retried
load) wakes the follower to write the heartbeat at once. The heartbeat is deleted at clean stop.

A thread, not an asyncio task: registry and S3 calls block, and an event lets stop interrupt the
wait at once. ``alias_poll_seconds=0`` starts no follower: no alias watch, no heartbeats.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from modelops.serving import heartbeat

log = logging.getLogger(__name__)


class ChampionFollower:
    """Follow the champion aliases and write heartbeats every ``poll_seconds``, in a daemon thread."""

    def __init__(
        self,
        state: Any,
        store: Any,
        poll_seconds: float,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {poll_seconds}")
        self.state = state
        self.store = store
        self.poll_seconds = poll_seconds
        self._now = now
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_failure_log = float("-inf")

    def start(self) -> None:
        self.state.on_served_change = self._wake.set
        self._thread = threading.Thread(target=self._run, name="modelops-champion-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, then delete this worker's heartbeat (it no longer serves)."""
        self.state.on_served_change = lambda: None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            heartbeat.delete_heartbeat(self.store, self.state.worker.id)
        except Exception as exc:  # noqa: BLE001 - it goes stale by itself
            log.warning("worker %s: deleting its heartbeat failed (%s); it goes stale by itself", self.state.worker.id, exc)  # fmt: skip
        log.info("worker %s stopped following the champion aliases", self.state.worker.id)

    def follow_once(self) -> list[str]:
        """One poll: follow the aliases, then write the heartbeat. The models swapped in."""
        try:
            swapped = self.state.follow_champions()
        except Exception:  # noqa: BLE001 - the thread must survive a bug in one pass
            log.exception("worker %s: following the champion aliases failed", self.state.worker.id)
            swapped = []
        self.state.follow_shadows()
        self._wake.clear()  # the beat below reports any change made so far
        self.beat()
        return swapped

    def beat(self) -> bool:
        """Write this worker's heartbeat now; False (logged, at most every minute) when S3 refused."""
        record = heartbeat.heartbeat_record(self.state.worker, self.state.served(), self.poll_seconds, self._now())
        try:
            heartbeat.write_heartbeat(self.store, record)
        except Exception as exc:  # noqa: BLE001 - S3 down must not stop serving
            if time.monotonic() - self._last_failure_log >= 60:
                self._last_failure_log = time.monotonic()
                log.warning("worker %s: writing its heartbeat failed: %s (deploys cannot see it)", record["worker_id"], exc)  # fmt: skip
            return False
        return True

    def _run(self) -> None:
        self.beat()
        next_poll = time.monotonic() + self.poll_seconds
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_poll - time.monotonic()))
            if self._stop.is_set():
                return
            if self._wake.is_set():  # what this worker serves changed: say so now
                self._wake.clear()
                self.beat()
            if time.monotonic() >= next_poll:
                self.follow_once()
                next_poll = time.monotonic() + self.poll_seconds
