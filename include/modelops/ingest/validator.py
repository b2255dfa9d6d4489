"""Validating one raw file with the model's Great Expectations suite, and the outcome of a file
that cannot even be read.

Why a module: GX is slow to import and pure Python. Each process reuses its GX set-up per suite
(:func:`modelops.data.validation.prepared_suite`), and since a verdict is a pure function of
(suite, file bytes) it is memoised. GX holds the GIL for a validation, so threads alone run one
validation at a time per process: :class:`PooledSuiteValidator` runs them in a few worker
processes (one per core) while the consumer's threads keep doing the S3/SQS round trips.
Ingestion and the training snapshot's batch screen share these validators.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sys
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.config import ModelConfig
    from modelops.data.validation import ValidationOutcome

log = logging.getLogger(__name__)


def validate_file(data: bytes, file_format: str, suite_path: str, data_name: str) -> ValidationOutcome:
    """Parse and validate one file's bytes; timings say where the time went. Raises
    :class:`~modelops.batches.BatchReadError` for an unreadable file (it pickles across processes)."""
    from modelops import batches
    from modelops.data import validation

    started = time.perf_counter()
    frame = batches.read_batch(data, file_format, data_name)
    parsed = time.perf_counter()
    outcome = validation.validate_dataframe(frame, suite_path, data_name=data_name)
    outcome.timings = {"parse": parsed - started, "validate": time.perf_counter() - parsed}
    return outcome


def _warm_worker(suite_path: str) -> None:
    """Pay GX's import and the suite's set-up before the first file arrives."""
    from modelops.data import validation

    validation.prepared_suite(suite_path)


_MAIN_SWAP_LOCK = threading.Lock()


def _ready() -> None:
    """A no-op: submitting it starts a worker process."""


def _start_worker(warm: Callable[[str], None], suite_path: str, consumer_pid: int) -> None:
    """Pool initializer: leave with the consumer (a SIGKILLed consumer must not leave workers
    holding memory: its messages come back through SQS anyway), then warm up. The consumer's pid
    comes from the consumer: one that died while this worker was still starting has already
    handed it to another parent, which ``getppid()`` here would take for the consumer."""

    def watch() -> None:
        while os.getppid() == consumer_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="consumer-watch", daemon=True).start()
    warm(suite_path)


class SuiteValidator:
    """Validates files against one suite file in this process; results are memoised by
    (suite bytes, file bytes), since validation is a pure function of both."""

    def __init__(self, suite_path, cache_size: int = 4096):
        self.suite_path = suite_path
        self._lock = threading.Lock()
        self._cache: dict[str, ValidationOutcome] = {}
        self._cache_size = cache_size
        self.hits = 0
        self.misses = 0

    def _key(self, data: bytes) -> str:
        # The suite file is read on every call (a few KB), so an edited suite is never served stale.
        suite = hashlib.sha256(Path(self.suite_path).read_bytes()).digest()
        return hashlib.sha256(suite + hashlib.sha256(data).digest()).hexdigest()

    def __call__(self, data: bytes, frame_loader, data_name: str) -> tuple[ValidationOutcome, bool]:
        """``(outcome, reused)``; ``frame_loader()`` parses ``data`` when a validation must run."""
        key = self._key(data)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self.hits += 1
                return dataclasses.replace(cached, data_name=data_name, timings={}), True
            self.misses += 1
        outcome = self._run(data, frame_loader, data_name)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = outcome
        return outcome, False

    def _run(self, data: bytes, frame_loader, data_name: str) -> ValidationOutcome:
        from modelops.data import validation

        started = time.perf_counter()
        frame = frame_loader()
        parsed = time.perf_counter()
        outcome = validation.validate_dataframe(frame, self.suite_path, data_name=data_name)
        outcome.timings = {"parse": parsed - started, "validate": time.perf_counter() - parsed}
        return outcome

    def close(self) -> None:
        """Nothing to release in-process."""


class PooledSuiteValidator(SuiteValidator):
    """The same validation in ``processes`` worker processes, so validations of several files run
    at once on several cores. The caller's thread waits for its file's result, so the message
    promises of the consumer (delete after the result is written, visibility extended while
    waiting, a failure makes the message visible again) are unchanged. A worker that dies
    breaks the pool: the files in progress fail and come back through SQS."""

    def __init__(
        self,
        suite_path,
        file_format: str,
        processes: int,
        cache_size: int = 4096,
        *,
        worker: Callable[[bytes, str, str, str], ValidationOutcome] = validate_file,
        warm: Callable[[str], None] = _warm_worker,
    ):
        super().__init__(suite_path, cache_size)
        self.file_format = file_format
        self.processes = processes
        self._worker, self._warm = worker, warm
        self._pool_lock = threading.Lock()
        self._pool = self._start_pool()
        #: Pools replaced after a worker died (the files it held were retried through SQS).
        self.restarts = 0

    def _start_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        # spawn: the consumer has threads (boto3, heartbeat); forking a threaded process is unsafe.
        pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._warm, str(self.suite_path), os.getpid()),
        )
        # Start every worker now (a spawned pool starts one per submit while none is idle), with
        # the parent's __main__ out of sight: spawn would otherwise re-run it in each worker, and
        # in an Airflow task that is the `airflow` CLI script, which fails outside the task's setup.
        with _MAIN_SWAP_LOCK:
            real_main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                for _ in range(self.processes):
                    pool.submit(_ready)
            finally:
                sys.modules["__main__"] = real_main
        return pool

    def _run(self, data: bytes, frame_loader, data_name: str) -> ValidationOutcome:
        pool = self._pool
        try:
            return pool.submit(self._worker, data, self.file_format, str(self.suite_path), data_name).result()
        except BrokenProcessPool:
            # A worker died (killed, out of memory): every file it held fails and comes back through
            # SQS; a new pool takes the next files.
            with self._pool_lock:
                if self._pool is pool:
                    log.warning("a validation worker process died; starting a new pool")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._start_pool()
                    self.restarts += 1
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_validator(model: ModelConfig, processes: int) -> SuiteValidator:
    """In-process for ``processes`` 0, else a pool of that many processes (at most one per core)."""
    processes = min(processes, os.cpu_count() or 1)
    if processes <= 0:
        return SuiteValidator(model.suite_path)
    return PooledSuiteValidator(model.suite_path, model.data.file_format, processes)


def unreadable_outcome(model: ModelConfig, data_name: str, problem: str) -> ValidationOutcome:
    """A failed validation for a file that could not even be parsed: quarantined like any bad data."""
    from modelops.data.validation import ValidationOutcome

    return ValidationOutcome(
        suite_name=model.suite_path.stem,
        data_name=data_name,
        success=False,
        statistics={"evaluated_expectations": 0, "successful_expectations": 0, "unsuccessful_expectations": 1},
        failures=[
            {
                "expectation_type": "file_is_readable",
                "column": None,
                "kwargs": {"file_format": model.data.file_format},
                "observed_value": None,
                "unexpected_count": None,
                "unexpected_percent": None,
                "element_count": None,
                "sample_unexpected_values": [],
                "exception": problem,
                "notes": "The file could not be parsed; no expectation was evaluated.",
            }
        ],
        result_json={"success": False, "results": [], "statistics": {}, "meta": {"unreadable": problem}},
    )
