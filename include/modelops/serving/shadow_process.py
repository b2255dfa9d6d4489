"""The shadow scored in a process of its own, one per serving worker (``shadow_isolation=process``).

Scored in the worker's own process, a shadow shares the worker's GIL with the event loop: its
model call, its capture rows and the second capture stream's files take turns with the answers,
and the paced p99 rose several-fold (docs/BENCHMARKS.md). Here the worker only pickles the
requests the champion answered (their checked columns, ids and event times) and hands the bytes
to a sender thread; a child process, started on the first shadow call, loads the shadow version
itself, scores with :func:`modelops.serving.shadow.run_shadow` (the same code as the in-process
mode) and writes the shadow stream with a capture writer of its own. Each call is acknowledged
with its counts, which :class:`~modelops.serving.shadow.ShadowRunner` adds up.

* The child is a ``spawn``, not a fork: the worker has threads (the capture writer, the follower).
* A child that dies fails its calls in flight (counted) and is started again ``RESTART_SECONDS``
  later, loading the shadows the dead one had (calls meanwhile are dropped, and counted).
* At shutdown the request pipe is closed after the last queued call; the child scores what it
  has, flushes its capture writer and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.config import ModelConfig
    from modelops.serving.scoring import PendingPrediction

log = logging.getLogger(__name__)

#: A child that died is started again on a later shadow call, no sooner than this.
RESTART_SECONDS = 5.0
#: A shadow version the child could not load is tried again after this long (its calls fail meanwhile).
LOAD_RETRY_SECONDS = 30.0
#: How long shutdown waits for the child to score what it has and flush its files.
STOP_SECONDS = 60.0
#: The child's niceness: the serving worker's answers come first when the cores are busy.
NICENESS = 10

_SPAWN = multiprocessing.get_context("spawn")


class ShadowProcess:
    """The worker's side: queues pickled shadow calls for the child and reads its acknowledgements.

    ``on_done(model, counts)`` is called once per call sent (from the reader thread), with what the
    child counted, or ``failed_requests`` for every call lost with a child that died."""

    def __init__(
        self,
        on_done: Callable[[str, dict[str, int]], None],
        *,
        settings: Any,
        capture_options: Any,
        scoring_path: str,
        max_lag_seconds: float,
        capture_enabled: bool = True,
    ):
        self._on_done = on_done
        self._child_args = (settings, capture_options if capture_enabled else None, scoring_path, max_lag_seconds)
        self._cond = threading.Condition()
        self._outbox: deque[bytes] = deque()
        self._inflight: dict[int, tuple[str, int]] = {}
        self._seq = 0
        self._process: Any = None
        self._threads: list[threading.Thread] = []
        self._announced: dict[str, str] = {}
        #: Per model, the declaration and version the child should have loaded (kept across restarts).
        self._wanted: dict[str, tuple[ModelConfig, str]] = {}
        self._loaded: dict[str, str | None] = {}
        self._restart_at = 0.0
        self._closing = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def send(self, config: ModelConfig, version: str, pending: list[PendingPrediction], queued_at: float) -> bool:
        """Queue one shadow call; False when it cannot be (shutting down, or a dead child not yet restarted)."""
        items = [(p.request_id, p.event_time, p.location, p.columns) for p in pending]
        records = sum(p.columns.length for p in pending)
        with self._cond:
            if self._closing or not self._running():
                return False
            self._announce(config, version)
            self._seq += 1
            self._inflight[self._seq] = (config.name, len(pending))
            call = (config.name, version, queued_at, items)
            self._outbox.append(pickle.dumps((self._seq, "score", call), protocol=pickle.HIGHEST_PROTOCOL))
            self._cond.notify()
        log.debug("shadow call %d queued for the child: %s, %d records", self._seq, config.name, records)
        return True

    def announce(self, config: ModelConfig, version: str) -> None:
        """Have the child load ``version`` now (a shadow just set), so it is warm before its calls."""
        with self._cond:
            if not self._closing and self._running():
                self._announce(config, version)
                self._cond.notify()

    def _announce(self, config: ModelConfig, version: str) -> None:
        self._wanted[config.name] = (config, version)
        if self._announced.get(config.name) != version:  # the child learns the model before its calls
            self._outbox.append(pickle.dumps((0, "load", (config, version)), protocol=pickle.HIGHEST_PROTOCOL))
            self._announced[config.name] = version

    def loaded(self) -> dict[str, str | None]:
        """Per model, the version the child reported loaded (None: it failed to load)."""
        with self._cond:
            return dict(self._loaded)

    def _running(self) -> bool:
        """Start the child when there is none (caller holds the lock); False while a restart must wait."""
        if self._process is not None:
            return True
        if time.monotonic() < self._restart_at:
            return False
        requests_read, requests_write = _SPAWN.Pipe(duplex=False)
        acks_read, acks_write = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(
            target=child_main,
            args=(requests_read, acks_write, *self._child_args),
            name="modelops-shadow",
            daemon=True,
        )
        process.start()
        requests_read.close()
        acks_write.close()
        self._process, self._announced, self._loaded = process, {}, {}
        self._threads = [
            threading.Thread(target=self._send_loop, args=(process, requests_write), name="modelops-shadow-send", daemon=True),
            threading.Thread(target=self._ack_loop, args=(process, acks_read), name="modelops-shadow-acks", daemon=True),
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()
        log.info("shadow scoring process started (pid %d)", process.pid)
        return True

    def _send_loop(self, process: Any, conn: Any) -> None:
        while True:
            with self._cond:
                while not self._outbox and not self._closing and self._process is process:
                    self._cond.wait()
                if self._process is not process or (self._closing and not self._outbox):
                    break
                data = self._outbox.popleft()
            try:
                conn.send_bytes(data)  # blocks (without the GIL) while the child is behind
            except OSError:
                break  # the child is gone: the ack reader fails what was in flight
        conn.close()

    def _ack_loop(self, process: Any, conn: Any) -> None:
        while True:
            try:
                seq, counts = conn.recv()
            except (EOFError, OSError):
                break
            if seq == 0:  # a load's outcome
                with self._cond:
                    self._loaded[counts["model"]] = counts["version"]
                continue
            with self._cond:
                model, _ = self._inflight.pop(seq, (None, 0))
            if model is not None:
                self._on_done(model, counts)
        conn.close()
        process.join(timeout=STOP_SECONDS)
        with self._cond:
            lost, self._inflight = list(self._inflight.values()), {}
            self._outbox.clear()
            if self._process is process:
                self._process = None
                self._restart_at = time.monotonic() + RESTART_SECONDS
            self._cond.notify_all()
        if not self._closing:
            log.error("the shadow scoring process (pid %s) exited (code %s): %d call(s) lost", process.pid, process.exitcode, len(lost))  # fmt: skip
        for model, requests in lost:
            self._on_done(model, {"failed_requests": requests})
        self._restart(RESTART_SECONDS)

    def _restart(self, after: float) -> None:
        """Start a new child after a death, loading what the dead one had, so calls find it warm."""
        with self._cond:
            self._cond.wait_for(lambda: self._closing, timeout=after)  # shutdown does not wait it out
            if self._closing or self._process is not None or not self._wanted:
                return
            if self._running():
                for config, version in list(self._wanted.values()):
                    self._announce(config, version)
                self._cond.notify()

    def close(self) -> None:
        """Send what is queued, let the child score it and flush, and wait for it to exit."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=STOP_SECONDS)


# The child process ---------------------------------------------------------------------------------


def child_main(
    requests: Any, acks: Any, settings: Any, capture_options: Any, scoring_path: str, max_lag: float
) -> None:
    """Score shadow calls until the worker closes the pipe, then flush the shadow capture files."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s shadow[%(process)d] %(levelname)s %(name)s: %(message)s"
    )
    # Ctrl-C and a group SIGTERM reach the child too: it stops when its worker closes the pipe,
    # after the worker's last calls and with its capture flushed, not before (the worker waits).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Best effort, second in line for a core: when the machine is busy the worker's answers get
    # the CPU first and the shadow falls behind (its calls are then skipped as stale, and counted).
    os.nice(NICENESS)
    from modelops.serving.capture import CaptureWriter
    from modelops.serving.state import default_store

    writer = CaptureWriter(default_store(settings), capture_options) if capture_options is not None else None
    if writer is not None:
        writer.start()
    models = _ChildModels(settings.mlflow_tracking_uri, scoring_path)
    try:
        while True:
            try:
                seq, kind, body = pickle.loads(requests.recv_bytes())
            except EOFError:
                break
            if kind == "load":
                loaded = models.load(*body)
                acks.send((0, {"model": body[0].name, "version": loaded and loaded.version}))
                continue
            acks.send((seq, models.score(body, writer, max_lag)))
    finally:
        if writer is not None:
            writer.close()
        acks.close()


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

    def score(self, call: tuple, writer: Any, max_lag: float) -> dict[str, int]:
        from modelops.serving.scoring import PendingPrediction
        from modelops.serving.shadow import run_shadow

        name, version, queued_at, items = call
        pending = [PendingPrediction(columns, location, request_id, event_time) for request_id, event_time, location, columns in items]  # fmt: skip
        slot, loaded = self.loaded.get(name, (None, None))
        if loaded is None or loaded.version != str(version):
            config = self.configs.get(name)
            if config is None or time.monotonic() < self.retry_at.get((name, str(version)), 0.0):
                return {"failed_requests": len(pending)}
            self.load(config, version)
            slot, loaded = self.loaded.get(name, (None, None))
            if loaded is None:
                return {"failed_requests": len(pending)}
        return run_shadow(slot, loaded, pending, writer, queued_at, max_lag)
