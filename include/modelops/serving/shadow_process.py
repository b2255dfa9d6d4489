"""The shadow scored in a process of its own, one per serving worker (``shadow_isolation=process``).

Scored in the worker's own process, a shadow shares the worker's GIL with the event loop: its
model call, its capture rows and the second capture stream's files take turns with the answers,
and the paced p99 rose several-fold (docs/BENCHMARKS.md). Here the worker only pickles the
requests the champion answered (their checked columns, numeric ones as raw bytes; ids and event
times) and writes them to a pipe; a child process loads the shadow version itself (as soon as it
is set), scores with :func:`modelops.serving.shadow.run_shadow` (the same code as the in-process
mode) and writes the shadow stream with a capture writer of its own.

The request path wakes no thread of the worker: the write goes straight into the pipe, and the
child reports progress in shared memory (bytes read, calls done, per model rows scored and
requests stale / failed / done), which ``/metrics`` and ``/health`` read. A write never blocks:
a call is sent only while the calls in flight are fewer than ``max_pending`` and the pipe has room
for all of it (what was sent minus what the child has read); otherwise it is dropped (counted).

* The child is a ``spawn``, not a fork: the worker has threads (the capture writer, the follower).
* It runs in Linux's idle scheduling class (``SCHED_IDLE``; niced elsewhere): it gets only CPU
  time nothing else wants, so on a busy machine the answers come first and the shadow falls
  behind (its calls are then skipped as stale or dropped, and counted). Given ``cpus``
  (``MODELOPS_SERVING_SHADOW_CPUS``) it runs on those only, and the worker on the others.
* It scores the calls waiting in the pipe together (up to ``COALESCE_CALLS``, per model version):
  the further it falls behind, the less each call costs it; with ``gather_seconds`` it first lets
  calls gather when one finds it idle (``ServingOptions.shadow_gather_ms`` says when that pays).
* A child that dies fails its calls in flight (counted) and is started again ``RESTART_SECONDS``
  later with the shadows the dead one had; one thread per worker waits on the child's control
  pipe (load outcomes, and its end) and does that.
* At shutdown the request pipe is closed after the last call; the child scores what it has,
  flushes its capture writer and exits (it ignores SIGINT/SIGTERM sent to the process group).
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops.serving import cpus as cpu_pinning

if TYPE_CHECKING:
    from modelops.config import ModelConfig
    from modelops.serving.columns import RequestColumns
    from modelops.serving.scoring import PendingPrediction

log = logging.getLogger(__name__)

#: A child that died is started again this long after (calls meanwhile are dropped, and counted).
RESTART_SECONDS = 5.0
#: A shadow version the child could not load is tried again after this long (its calls fail meanwhile).
LOAD_RETRY_SECONDS = 30.0
#: How long shutdown waits for the child to score what it has and flush its files.
STOP_SECONDS = 60.0
#: The request pipe's size asked of Linux (``F_SETPIPE_SZ``; 1 MiB is the default maximum).
PIPE_BYTES = 1 << 20
#: At most this many of the worker's calls waiting in the pipe are scored together by the child.
COALESCE_CALLS = 32
#: Models with a shadow at once, per worker (their counters' places in shared memory).
MAX_MODELS = 64
#: What the child counts per model, in shared memory (``done_requests``: calls' requests finished).
CHILD_COUNTERS = ("scored_records", "stale_requests", "failed_requests", "model_calls", "done_requests")
_HEADER = 2  # [bytes the child has read, calls it has finished]
_FRAME = struct.Struct("!i")  # multiprocessing.Connection's length prefix: the child reads with recv_bytes

_SPAWN = multiprocessing.get_context("spawn")


class ShadowProcess:
    """The worker's side: writes shadow calls into the child's pipe and reads its shared counters."""

    def __init__(
        self,
        *,
        settings: Any,
        capture_options: Any,
        scoring_path: str,
        max_lag_seconds: float,
        gather_seconds: float = 0.0,
        cpus: frozenset[int] = frozenset(),
        max_pending: int = 64,
        target: Callable[..., None] | None = None,
        on_loaded: Callable[[], None] = lambda: None,
    ):
        #: ``capture_options`` None: the worker captures nothing, and neither does its shadow.
        self._child_args = (settings, capture_options, scoring_path, max_lag_seconds, gather_seconds, cpus)
        self._target = target or child_main  # what the child runs (a test stands in a child that never finishes)
        #: Called (from the watcher thread) when the child reported a load: the worker's heartbeat says so.
        self._on_loaded = on_loaded
        self.max_pending = max_pending
        self._lock = threading.Condition()
        self._child: _Child | None = None
        self._index: dict[str, int] = {}  # model -> its counters' place (kept across restarts)
        #: Per model, the declaration and version the child should have loaded (kept across restarts).
        self._wanted: dict[str, tuple[ModelConfig, str]] = {}
        #: Counts of children that ended, and of their calls lost with them.
        self._past: dict[str, dict[str, int]] = {}
        self._restart_at = 0.0
        self._closing = False

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None else None

    # Request path -------------------------------------------------------------------------------
    def send(self, config: ModelConfig, version: str, pending: list[PendingPrediction], queued_at: float) -> bool:
        """Write one shadow call into the pipe; False (dropped) when the calls in flight or the
        pipe are full, or there is no child (shutting down, or restarting after a death)."""
        name = config.name
        items = [(p.request_id, p.event_time, p.location, _pack(p.columns)) for p in pending]
        with self._lock:
            child = self._child
            if self._closing or child is None:  # a child is started by announce() or after a death, never here
                return False
            self._announce(config, version)
            frame = _frame(("score", (self._index[name], name, version, queued_at, items)))
            if child.calls_in_flight() >= self.max_pending or not child.has_room(len(frame)):
                return False
            if not child.write(frame):
                return False
            child.calls += 1
            child.requests[name] = child.requests.get(name, 0) + len(pending)
        return True

    def announce(self, config: ModelConfig, version: str) -> None:
        """Have the child load ``version`` now (a shadow just set), so it is warm before its calls."""
        with self._lock:
            self._wanted[config.name] = (config, version)  # a child started later loads it too
            if not self._closing and self._running():
                self._announce(config, version)

    def _announce(self, config: ModelConfig, version: str) -> None:
        """Tell the current child to load ``version`` unless it was told (caller holds the lock)."""
        self._wanted[config.name] = (config, version)
        index = self._index.setdefault(config.name, len(self._index))
        child = self._child
        if index >= MAX_MODELS:
            raise RuntimeError(f"more than {MAX_MODELS} models with a shadow on one serving worker")
        if child.announced.get(config.name) == version:
            return
        frame = _frame(("load", (index, config, version)))
        if child.has_room(len(frame)) and child.write(frame):  # else told with the next call
            child.announced[config.name] = version
            child.loaded.pop(config.name, None)  # an earlier version's outcome says nothing of this one

    # Reading what the child did ---------------------------------------------------------------------
    def in_flight(self) -> int:
        child = self._child
        return child.calls_in_flight() if child is not None else 0

    def loaded(self) -> dict[str, str | None]:
        """Per model, the version the child reported loaded (None: it failed to load)."""
        child = self._child
        return dict(child.loaded) if child is not None else {}

    def counts(self) -> dict[str, dict[str, int]]:
        """Per model: rows scored and requests stale / failed, over every child this worker had."""
        with self._lock:
            totals = {m: dict(c) for m, c in self._past.items()}
            if self._child is not None:
                for model, counts in self._child.counts(self._index).items():
                    _add(totals, model, counts)
        return {m: {k: v for k, v in c.items() if k != "done_requests"} for m, c in totals.items()}

    # The child's life -----------------------------------------------------------------------------
    def _running(self) -> bool:
        """Start a child when there is none (caller holds the lock); False while a restart must wait."""
        if self._child is not None:
            return True
        if time.monotonic() < self._restart_at:
            return False
        self._child = _Child.start(self._target, self._child_args)
        threading.Thread(target=self._watch, args=(self._child,), name="modelops-shadow-watch", daemon=True).start()
        log.info("shadow scoring process started (pid %d)", self._child.process.pid)
        return True

    def _watch(self, child: _Child) -> None:
        """Read the child's control pipe (load outcomes) until it ends; then count its lost calls and restart it."""
        while True:
            try:
                model, version = child.control.recv()
            except (EOFError, OSError):
                break
            child.loaded[model] = version
            self._on_loaded()
        child.control.close()
        child.process.join(timeout=STOP_SECONDS)
        with self._lock:
            ended = child.counts(self._index)
            for model, sent in child.requests.items():
                lost = sent - ended.get(model, {}).get("done_requests", 0)
                if lost:
                    ended.setdefault(model, {})
                    ended[model]["failed_requests"] = ended[model].get("failed_requests", 0) + lost
            for model, counts in ended.items():
                _add(self._past, model, counts)
            if self._child is child:
                self._child = None
                self._restart_at = time.monotonic() + RESTART_SECONDS
            self._lock.notify_all()
            closing = self._closing
        if not closing:
            log.error("the shadow scoring process (pid %s) exited (code %s)", child.process.pid, child.process.exitcode)
            self._restart(RESTART_SECONDS)

    def _restart(self, after: float) -> None:
        """Start a new child after a death, loading what the dead one had, so calls find it warm."""
        with self._lock:
            self._lock.wait_for(lambda: self._closing, timeout=after)  # shutdown does not wait it out
            if self._closing or self._child is not None or not self._wanted:
                return
            if self._running():
                for config, version in list(self._wanted.values()):
                    self._announce(config, version)

    def close(self) -> None:
        """Close the pipe after the last call; the child scores it, flushes and exits; wait for that."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            child = self._child
            if child is not None:
                child.close_requests()
        if child is not None:
            deadline = time.monotonic() + STOP_SECONDS
            with self._lock:
                self._lock.wait_for(lambda: self._child is not child, timeout=max(0.0, deadline - time.monotonic()))


def _frame(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(len(payload)) + payload


def _pack(columns: RequestColumns) -> tuple:
    """A request's columns as the pipe carries them: numeric arrays as their raw float64 bytes
    (a tenth of pickling the array; docs/BENCHMARKS.md, "The worker's send")."""
    numeric = {name: np.asarray(values, dtype=np.float64).tobytes() for name, values in columns.numeric.items()}
    return columns.length, numeric, columns.categorical, columns.passthrough


def _unpack(packed: tuple) -> RequestColumns:
    """The child's side of :func:`_pack`: writable arrays (copied in the child), as the worker's own
    are: a step that writes in place must not refuse in shadow what the champion scored."""
    from modelops.serving.columns import RequestColumns

    length, numeric, categorical, passthrough = packed
    arrays = {name: np.frombuffer(raw, dtype=np.float64).copy() for name, raw in numeric.items()}
    return RequestColumns(length, arrays, categorical, passthrough)


def _add(totals: dict[str, dict[str, int]], model: str, counts: dict[str, int]) -> None:
    into = totals.setdefault(model, {})
    for counter, n in counts.items():
        into[counter] = into.get(counter, 0) + n


class _Child:
    """One child process: its request pipe (the worker writes), control pipe and shared counters."""

    def __init__(self, process: Any, requests: Any, control: Any, shared: Any):
        self.process, self.requests_conn, self.control, self.shared = process, requests, control, shared
        self.fd = requests.fileno()
        self.capacity = _pipe_capacity(self.fd)
        self.sent_bytes = 0
        self.calls = 0
        self.requests: dict[str, int] = {}  # model -> requests sent
        self.announced: dict[str, str] = {}
        self.loaded: dict[str, str | None] = {}

    @classmethod
    def start(cls, target: Callable[..., None], child_args: tuple) -> _Child:
        shared = _SPAWN.Array("q", _HEADER + MAX_MODELS * len(CHILD_COUNTERS), lock=False)
        requests_read, requests_write = _SPAWN.Pipe(duplex=False)
        control_read, control_write = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(
            target=target,
            args=(requests_read, control_write, shared, *child_args),
            name="modelops-shadow",
            daemon=True,
        )
        process.start()
        requests_read.close()
        control_write.close()
        return cls(process, requests_write, control_read, shared)

    def calls_in_flight(self) -> int:
        return self.calls - self.shared[1]

    def has_room(self, size: int) -> bool:
        return self.sent_bytes - self.shared[0] + size <= self.capacity

    def write(self, frame: bytes) -> bool:
        """Write a whole frame (the caller checked there is room: it never blocks); False when the child is gone."""
        view = memoryview(frame)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:  # BrokenPipeError: the child died; its watcher counts and restarts
            return False
        self.sent_bytes += len(frame)
        return True

    def counts(self, index: dict[str, int]) -> dict[str, dict[str, int]]:
        width = len(CHILD_COUNTERS)
        return {
            model: {c: self.shared[_HEADER + i * width + j] for j, c in enumerate(CHILD_COUNTERS)}
            for model, i in index.items()
            if i < MAX_MODELS
        }

    def close_requests(self) -> None:
        self.requests_conn.close()


def _pipe_capacity(fd: int) -> int:
    """The pipe's buffer: ``PIPE_BYTES`` when Linux grants it, else what it has (64 KiB by default)."""
    try:
        return fcntl.fcntl(fd, 1031, PIPE_BYTES)  # F_SETPIPE_SZ returns the size set
    except OSError:
        try:
            return fcntl.fcntl(fd, 1032)  # F_GETPIPE_SZ
        except OSError:
            return 65536


# The child process ---------------------------------------------------------------------------------


def child_main(
    requests: Any,
    control: Any,
    shared: Any,
    settings: Any,
    capture_options: Any,
    scoring_path: str,
    max_lag: float,
    gather_seconds: float = 0.0,
    cpus: frozenset[int] = frozenset(),
) -> None:
    """Score shadow calls until the worker closes the pipe, then flush the shadow capture files."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s shadow[%(process)d] %(levelname)s %(name)s: %(message)s"
    )
    # Ctrl-C and a group SIGTERM reach the child too: it stops when its worker closes the pipe,
    # after the worker's last calls and with its capture flushed, not before (the worker waits).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cpu_pinning.run_in_the_background(cpus)
    from modelops.serving.capture import CaptureWriter
    from modelops.serving.state import default_store

    writer = CaptureWriter(default_store(settings), capture_options) if capture_options is not None else None
    if writer is not None:
        writer.start()
    models = _ChildModels(settings.mlflow_tracking_uri, scoring_path)
    try:
        while True:
            try:
                messages = _next_messages(requests, shared, gather_seconds)
            except EOFError:
                break
            for kind, body in _runs_of_calls(messages):
                if kind == "load":
                    _, config, version = body
                    loaded = models.load(config, version)
                    control.send((config.name, loaded.version if loaded is not None else None))
                    continue
                index, name, version, calls = body
                counts = models.score(name, version, calls, writer, max_lag)
                counts["done_requests"] = sum(len(items) for _, items in calls)
                _count(shared, index, counts, len(calls))
    finally:
        if writer is not None:
            writer.close()
        control.close()


def _next_messages(requests: Any, shared: Any, gather_seconds: float) -> list:
    """The next messages, decoded: one, and when none waits behind it, those that arrive within
    ``gather_seconds``; a backlog at once. EOFError when the worker closed the pipe."""
    first = requests.recv_bytes()
    if gather_seconds > 0 and not requests.poll():
        time.sleep(gather_seconds)
    return _waiting(requests, shared, first)


def _waiting(requests: Any, shared: Any, first: bytes) -> list:
    """The message in ``first`` and those already waiting behind it (at most ``COALESCE_CALLS``),
    decoded; the pipe has their bytes' room again."""
    frames = [first]
    while len(frames) < COALESCE_CALLS and requests.poll():
        try:
            frames.append(requests.recv_bytes())
        except EOFError:  # the next recv_bytes sees it too, and the child ends there
            break
    shared[0] += sum(_FRAME.size + len(f) for f in frames)
    return [pickle.loads(f) for f in frames]


def _runs_of_calls(messages: list) -> list:
    """Messages in order, with consecutive score calls for one model version merged into one:
    ``("score", (index, name, version, [(queued_at, items), ...]))``. Under load the child scores
    several of the worker's calls in one model call and one capture block, so the shadow's fixed
    cost per call falls as its backlog grows instead of the backlog growing."""
    out: list = []
    for kind, body in messages:
        if kind != "score":
            out.append((kind, body))
            continue
        index, name, version, queued_at, items = body
        last = out[-1] if out else None
        if last is not None and last[0] == "score" and last[1][:3] == (index, name, version):
            last[1][3].append((queued_at, items))
        else:
            out.append(("score", (index, name, version, [(queued_at, items)])))
    return out


def _count(shared: Any, index: int, counts: dict, calls: int) -> None:
    """Add one merged call's counts to the model's place in shared memory, then its calls as done."""
    width = len(CHILD_COUNTERS)
    for j, counter in enumerate(CHILD_COUNTERS):
        shared[_HEADER + index * width + j] += counts.get(counter, 0)
    shared[1] += calls


class _ChildModels:
    """The shadow versions the child scores: per model, its declaration, slot and loaded version."""

    def __init__(self, tracking_uri: str, scoring_path: str):
        self.tracking_uri = tracking_uri
        self.scoring_path = scoring_path
        self.configs: dict[str, ModelConfig] = {}
        self.loaded: dict[str, tuple[Any, Any]] = {}
        #: (model, version) -> when a version that failed to load may be tried again.
        self.retry_at: dict[tuple[str, str], float] = {}

    def load(self, config: ModelConfig, version: str) -> Any:
        """Load ``version`` of ``config``'s model; the loaded version, or None when it failed."""
        from modelops.serving.champion import ModelSlot, load_model_version

        self.configs[config.name] = config
        self.loaded.pop(config.name, None)
        try:
            loaded = load_model_version(config, self.tracking_uri, version, scoring=self.scoring_path)
        except Exception:  # noqa: BLE001 - its calls are counted as failed until a retry loads it
            log.exception("%s: shadow version %s did not load in the shadow process", config.name, version)
            self.retry_at[(config.name, str(version))] = time.monotonic() + LOAD_RETRY_SECONDS
            return None
        self.retry_at.pop((config.name, str(version)), None)
        log.info("%s: shadow version %s loaded (%s path)", config.name, version, loaded.scoring_path)
        self.loaded[config.name] = (ModelSlot(config), loaded)
        return loaded

    def score(self, name: str, version: str, calls: list, writer: Any, max_lag: float) -> dict:
        """Score the worker's ``calls`` (``(queued_at, items)``) for one version as one: those that
        waited past ``max_lag`` are counted stale, the others scored together."""
        from modelops.serving.scoring import PendingPrediction
        from modelops.serving.shadow import run_shadow

        now = time.monotonic()
        fresh = [(queued_at, items) for queued_at, items in calls if now - queued_at <= max_lag]
        counts = {"stale_requests": sum(len(items) for queued_at, items in calls if now - queued_at > max_lag)}
        if not fresh:
            return counts
        pending = [
            PendingPrediction(_unpack(packed), location, request_id, event_time)
            for _, items in fresh
            for request_id, event_time, location, packed in items
        ]
        slot, loaded = self.loaded.get(name, (None, None))
        if loaded is None or loaded.version != str(version):
            config = self.configs.get(name)
            if config is None or time.monotonic() < self.retry_at.get((name, str(version)), 0.0):
                return counts | {"failed_requests": len(pending)}
            self.load(config, version)
            slot, loaded = self.loaded.get(name, (None, None))
            if loaded is None:
                return counts | {"failed_requests": len(pending)}
        oldest = min(queued_at for queued_at, _ in fresh)
        return counts | run_shadow(slot, loaded, pending, writer, oldest, max_lag, clock=lambda: now)
