"""Shadow scoring: the ``shadow`` version scores every request the champion answered, off the
response path, and its predictions go to a capture stream of their own.

The request path only hands the champion-scored requests to :class:`ShadowRunner` (a counter
check and a hand-over, microseconds). The shadow version scores them and its rows go under
``shadow/<model>/dt=YYYY-MM-DD/``, with the same request id and record index as the served rows,
so monitoring joins the two. Where it scores is ``MODELOPS_SERVING_SHADOW_ISOLATION``:

* ``process`` (the default): in a process of its own per serving worker
  (:mod:`.shadow_process`), with its own GIL and capture writer, so the shadow's Python never
  takes turns with the event loop that answers;
* ``thread``: in one background thread of the worker (no second process; it shares the GIL).

Either way :func:`run_shadow` scores a call, and a shadow never answers and never fails a request:

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
    from modelops.serving.shadow_process import ShadowProcess
    from modelops.serving.state import ServingState

log = logging.getLogger(__name__)

#: How long ``POST /models/<m>/shadow/reload`` waits for the shadow process to load the version.
READY_SECONDS = 120.0
#: What :class:`ShadowRunner` counts per model: rows scored, requests dropped / stale / failed, and
#: the shadow's model calls (the shadow process scores the calls waiting for it as one: requests
#: per model call show how far it coalesces).
COUNTERS = ("scored_records", "dropped_requests", "stale_requests", "failed_requests", "model_calls")


class ShadowRunner:
    """Scores the shadow versions off the response path; never raises into the request path.

    In one background thread of this process, or (``process``, a factory of
    :class:`~.shadow_process.ShadowProcess`) in a process of its own: then the bound on calls in
    flight and the counts other than ``dropped`` are the child's (:mod:`.shadow_process`)."""

    def __init__(
        self,
        writer: CaptureWriter | None,
        *,
        max_pending: int = 64,
        max_lag_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        process: Callable[[], ShadowProcess] | None = None,
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
        self._process = process() if process is not None else None

    @property
    def isolation(self) -> str:
        return "process" if self._process is not None else "thread"

    def _count(self, model: str, counter: str, n: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(model, dict.fromkeys(COUNTERS, 0))
            counts[counter] += n

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pending, models = self._pending, {m: dict(c) for m, c in self._counts.items()}
        stats: dict[str, Any] = {"isolation": self.isolation}
        if self._process is not None:
            pending += self._process.in_flight()
            for model, counts in self._process.counts().items():
                into = models.setdefault(model, dict.fromkeys(COUNTERS, 0))
                for counter, n in counts.items():
                    into[counter] += n
            stats["process"] = {"pid": self._process.pid, "loaded": self._process.loaded()}
        return stats | {"pending": pending, "models": dict(sorted(models.items()))}

    def ready(self, model: str, version: str) -> bool:
        """Whether ``version`` of ``model`` scores in shadow now: in the worker's thread, as soon as
        it is loaded; in the shadow process, once the child reported it loaded."""
        return self._process is None or self._process.loaded().get(model) == version

    def wait_ready(self, model: str, version: str, timeout: float = READY_SECONDS) -> str | None:
        """Wait until ``version`` scores in shadow; None when it does, else why not (the shadow
        process could not load it, or did not within ``timeout``)."""
        end = time.monotonic() + timeout
        while not self.ready(model, version):
            loaded = self._process.loaded()
            if model in loaded and loaded[model] is None:
                return f"the shadow process could not load version {version} of '{model}' (see the serving log)"
            if time.monotonic() >= end:
                return f"the shadow process did not load version {version} of '{model}' within {timeout:.0f} s"
            time.sleep(0.05)
        return None

    def prepare(self, slot: ModelSlot, shadow: LoadedModel) -> None:
        """A shadow was just set on ``slot``: the shadow process (if any) loads it before its first call."""
        if self._process is not None:
            self._process.announce(slot.config, shadow.version)

    def submit(self, slot: ModelSlot, shadow: LoadedModel, pending: list[PendingPrediction]) -> bool:
        """Queue ``pending`` (requests the champion answered) for the shadow; False when dropped."""
        name = slot.config.name
        if self._process is not None:  # the child bounds its calls in flight
            try:
                sent = self._process.send(slot.config, shadow.version, pending, self._clock())
            except RuntimeError:  # more models with a shadow than the child has places for
                sent = False
            if not sent:
                self._count(name, "dropped_requests", len(pending))
            return sent
        with self._lock:
            full = self._pending >= self.max_pending
            if not full:
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
        self._done(slot.config.name, run_shadow(slot, shadow, pending, self.writer, queued_at, self.max_lag_seconds, self._clock))  # fmt: skip

    def _done(self, model: str, counts: dict[str, int]) -> None:
        """One shadow call finished in the shadow thread: add its counts, free its place."""
        with self._lock:
            totals = self._counts.setdefault(model, dict.fromkeys(COUNTERS, 0))
            for counter, n in counts.items():
                if counter in totals:
                    totals[counter] += n
            self._pending -= 1

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued (tests, shutdown); True when drained within ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                pending = self._pending
            if pending == 0 and (self._process is None or self._process.in_flight() == 0):
                return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if self._process is not None:
            self._process.close()

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


#: When a shadow failure was last logged (at most every 30 s per process).
_last_failure_log = [float("-inf")]


def run_shadow(
    slot: ModelSlot,
    shadow: LoadedModel,
    pending: list[PendingPrediction],
    writer: CaptureWriter | None,
    queued_at: float,
    max_lag_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, int]:
    """One queued shadow call: skipped when it waited past ``max_lag_seconds``, else scored and
    captured. Its counts (:data:`COUNTERS`); never raises (an error is counted, logged every 30 s)."""
    if clock() - queued_at > max_lag_seconds:
        return {"stale_requests": len(pending)}
    try:
        rows, failed, calls = score_shadow(slot, shadow, pending, writer)
    except Exception as exc:  # noqa: BLE001 - a broken shadow must never reach a request
        if time.monotonic() - _last_failure_log[0] >= 30:
            _last_failure_log[0] = time.monotonic()
            log.warning("%s: shadow version %s failed to score: %s", slot.config.name, shadow.version, exc)
        return {"failed_requests": len(pending), "model_calls": 1}
    return {"scored_records": rows, "failed_requests": failed, "model_calls": calls}


def score_shadow(
    slot: ModelSlot, shadow: LoadedModel, pending: list[PendingPrediction], writer: CaptureWriter | None
) -> tuple[int, int, int]:
    """Score ``pending`` with ``shadow`` and capture the rows in the shadow stream. Rows scored,
    requests the shadow refused (their input, or its own error: a refusal is evidence, not a crash)
    and model calls made. When the requests scored together fail, each is scored alone, so one
    refusal costs only its own rows."""
    from modelops.serving import scoring

    ready = [p for p in pending if not scoring.input_problems(slot.config, shadow, p)]
    refused = len(pending) - len(ready)
    if not ready:
        return 0, refused, 0
    try:
        _, block, rows = scoring.score_together(slot, shadow, ready, answer=False)
    except (ValueError, TypeError):
        if len(ready) == 1:
            return 0, len(pending), 1
        alone = [score_shadow(slot, shadow, [p], writer) for p in ready]
        return sum(a[0] for a in alone), refused + sum(a[1] for a in alone), 1 + sum(a[2] for a in alone)
    if writer is not None:
        scoring.enqueue_capture(slot, writer, ready, block, stream=SHADOW)
    return rows, refused, 1


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
    state.shadow.prepare(slot, loaded)
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
