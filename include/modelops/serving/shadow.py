"""Shadow scoring: the ``shadow`` version scores every request the champion answered, off the
response path, and its predictions go to a capture stream of their own.

The request path only hands the champion-scored requests to :class:`ShadowRunner` (a counter
check and an executor submit, microseconds). One background thread per serving worker scores
them with the shadow version and enqueues the rows under ``shadow/<model>/dt=YYYY-MM-DD/``, with
the same request id and record index as the served rows, so monitoring joins the two. A shadow
never answers and never fails a request:

* **bounded**: at most ``max_pending`` model calls wait; beyond it a request's shadow scoring
  is dropped (``dropped``);
* **timely**: a call that waited longer than ``max_lag_seconds`` (a slow shadow falling behind)
  is skipped (``stale``), so the backlog never grows without bound;
* **isolated**: any error of the shadow (it refuses the input, it raises) is counted
  (``failed``) and logged at most every 30 s.

The counters are on ``/metrics`` (``modelops_shadow_*``) and ``/health``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from modelops import registry
from modelops.layout import SHADOW

if TYPE_CHECKING:
    from modelops.serving.capture import CaptureWriter
    from modelops.serving.champion import LoadedModel, ModelSlot
    from modelops.serving.scoring import PendingPrediction
    from modelops.serving.state import ServingState

log = logging.getLogger(__name__)

#: What :class:`ShadowRunner` counts per model: rows scored, requests dropped / stale / failed.
COUNTERS = ("scored_records", "dropped_requests", "stale_requests", "failed_requests")


class ShadowRunner:
    """Scores the shadow versions in one background thread; never raises into the request path."""

    def __init__(
        self,
        writer: CaptureWriter | None,
        *,
        max_pending: int = 64,
        max_lag_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_pending < 1 or max_lag_seconds <= 0:
            raise ValueError(f"max_pending must be >= 1 and max_lag_seconds > 0, got {max_pending}, {max_lag_seconds}")
        self.writer = writer
        self.max_pending = max_pending
        self.max_lag_seconds = max_lag_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = 0
        self._counts: dict[str, dict[str, int]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._last_failure_log = float("-inf")

    def _count(self, model: str, counter: str, n: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(model, dict.fromkeys(COUNTERS, 0))
            counts[counter] += n

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"pending": self._pending, "models": {m: dict(c) for m, c in sorted(self._counts.items())}}

    def submit(self, slot: ModelSlot, shadow: LoadedModel, pending: list[PendingPrediction]) -> bool:
        """Queue ``pending`` (requests the champion answered) for the shadow; False when dropped."""
        name = slot.config.name
        with self._lock:
            if self._pending >= self.max_pending:
                full = True
            else:
                full = False
                self._pending += 1
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="modelops-shadow")
                executor = self._executor
        if full:
            self._count(name, "dropped_requests", len(pending))
            return False
        try:
            executor.submit(self._run, slot, shadow, pending, self._clock())
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._pending -= 1
            self._count(name, "dropped_requests", len(pending))
            return False
        return True

    def _run(self, slot: ModelSlot, shadow: LoadedModel, pending: list[PendingPrediction], queued_at: float) -> None:
        name = slot.config.name
        try:
            if self._clock() - queued_at > self.max_lag_seconds:
                self._count(name, "stale_requests", len(pending))
                return
            rows, failed = score_shadow(slot, shadow, pending, self.writer)
            self._count(name, "scored_records", rows)
            if failed:
                self._count(name, "failed_requests", failed)
        except Exception as exc:  # noqa: BLE001 - a broken shadow must never reach a request
            self._count(name, "failed_requests", len(pending))
            if time.monotonic() - self._last_failure_log >= 30:
                self._last_failure_log = time.monotonic()
                log.warning("%s: shadow version %s failed to score: %s", name, shadow.version, exc)
        finally:
            with self._lock:
                self._pending -= 1

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued (tests, shutdown); True when drained within ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def render(self) -> str:
        """The ``modelops_shadow_*`` Prometheus families."""
        stats = self.stats()
        lines = []
        for counter in COUNTERS:
            metric = f"modelops_shadow_{counter}_total"
            lines += [f"# HELP {metric} Shadow scoring: {counter.replace('_', ' ')}.", f"# TYPE {metric} counter"]
            lines += [f'{metric}{{model="{m}"}} {c[counter]}' for m, c in stats["models"].items()]
        lines += ["# HELP modelops_shadow_pending Shadow model calls waiting.", "# TYPE modelops_shadow_pending gauge"]
        lines.append(f"modelops_shadow_pending {stats['pending']}")
        return "\n".join(lines) + "\n"


def score_shadow(
    slot: ModelSlot, shadow: LoadedModel, pending: list[PendingPrediction], writer: CaptureWriter | None
) -> tuple[int, int]:
    """Score ``pending`` with ``shadow`` and capture the rows in the shadow stream. Rows scored and
    requests the shadow refused (their input, or its own error): a refusal is evidence, not a crash."""
    from modelops.serving import scoring

    ready = [p for p in pending if not scoring.input_problems(slot.config, shadow, p)]
    refused = len(pending) - len(ready)
    if not ready:
        return 0, refused
    try:
        _, block, rows = scoring.score_together(slot, shadow, ready, answer=False)
    except (ValueError, TypeError):
        return 0, len(pending)
    if writer is not None:
        scoring.enqueue_capture(slot, writer, ready, block, stream=SHADOW)
    return rows, refused


# Following the shadow alias ----------------------------------------------------------------------


def follow_shadow(state: ServingState, slot: ModelSlot, version: str | None) -> bool:
    """Make ``slot.shadow`` the version ``shadow`` points at (None: no shadow). True when it changed.
    A version that fails to load leaves the slot without a shadow (logged): the champion serves on."""
    name, current = slot.config.name, slot.shadow
    if version is None or (slot.current is not None and slot.current.version == version):
        slot.shadow, slot.shadow_seen = None, version  # a shadow promoted to champion stops shadowing
        if current is not None:
            log.info("%s: shadow version %s ended", name, current.version)
        return current is not None
    if current is not None and current.version == version:
        slot.shadow_seen = version
        return False
    try:
        loaded = dataclasses.replace(state.load(slot, version), alias=registry.SHADOW)
    except Exception:  # noqa: BLE001 - no shadow rather than a broken one; tried again next pass
        log.exception("%s: the shadow alias points at version %s but loading it failed", name, version)
        slot.shadow = None
        return current is not None
    slot.shadow, slot.shadow_seen = loaded, version
    log.info("%s: shadow version %s scores beside champion %s", name, version, slot.current and slot.current.version)
    return True


def follow_shadows(state: ServingState) -> list[str]:
    """One pass over every model: load, swap or drop its shadow where the alias moved."""
    changed = []
    for name, slot in list(state.slots.items()):
        try:
            version = state.alias_version(name, registry.SHADOW)
        except Exception as exc:  # noqa: BLE001 - registry unreachable: keep what runs, look next pass
            log.warning("%s: could not read the shadow alias: %s", name, exc)
            continue
        if version == slot.shadow_seen and (slot.shadow is None) == (version is None):
            continue
        if follow_shadow(state, slot, version):
            changed.append(name)
    return changed
