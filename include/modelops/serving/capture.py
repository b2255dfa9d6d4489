"""Data capture: predictions and labels buffered in memory, written to S3 as Parquet by one thread.

The request path only appends rows to an in-memory buffer (a lock held for microseconds); a
background thread turns the buffer into files, so a slow or failing S3 never slows or fails a
prediction. Rows arrive either as dicts (feedback) or, from the predict path, as a
:class:`ColumnBlock`: the columns of a whole scored batch as the request path already holds them
(numpy arrays, lists, one value for all rows). Turning them into Arrow and Parquet is the writer
thread's job, so the request path never builds a dict per row. Rows are grouped by ``(stream, model, capture date)`` and written to
``<stream>/<model>/dt=YYYY-MM-DD/<uuid>.parquet`` (``stream`` is ``capture`` or ``feedback``):
one file per ``flush_records`` rows, or whatever a group holds after ``flush_seconds``.
While a file fills, the writer joins its blocks ``COMPACT_PARTS`` at a time (one request's block
each under single-record load), so the file's write does not join thousands at once: a 25 ms
burst per 5,000 single records beside the answers (benchmarks/serving_shadow.py).

What can be lost, and when (the price of never blocking a request):

* **S3 failing for long**: a failed write is logged and retried with exponential backoff
  (``retry_initial_seconds`` doubling up to ``retry_max_seconds``), forever, with the same
  object key, so a retry after a write that did land overwrites instead of duplicating. Rows
  keep arriving meanwhile; memory is bounded by ``max_buffered`` rows (everything buffered or
  waiting for a retry; plus, transiently, the copy of the one file being written, at most
  ``flush_records`` rows). Beyond it the **oldest** rows are dropped (files in the order they
  were cut, then open groups by age), counted in ``dropped``
  (``modelops_capture_records_dropped_total``) and logged at most every 10 s. Rows cut from the
  file whose write is in progress are counted back as written if that write succeeds.
* **Clean shutdown** (SIGTERM/SIGINT, the FastAPI lifespan): everything buffered is written,
  retrying for up to ``shutdown_timeout_seconds``; what is still unwritten then is dropped,
  counted and logged at ERROR.
* **Crash** (SIGKILL, OOM, power): everything in memory is lost: at most ``max_buffered`` rows;
  with S3 healthy, about ``flush_seconds`` of traffic (at most ``flush_records`` per group).
* A group that cannot be turned into Parquet (a bug, not an outage) is dropped at once, counted
  and logged with its traceback: retrying would not help.

Nothing is written twice: a retry reuses its object key. If S3 completed a write but reported
it as failed, and rows were cut from that file before the retry, the retry overwrites it with
fewer rows, and exactly those rows are the ones counted as dropped.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.layout import capture_file_key
from modelops.serving.blocks import JOIN_SLICE, ColumnBlock, RowParts
from modelops.settings import env_float, env_int

log = logging.getLogger(__name__)

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
#: An open file's parts the writer joins at a time, once that many have arrived since its last join.
COMPACT_PARTS = JOIN_SLICE

#: Option -> (variable, type, least value the variable may hold); ranges between fields are checked by the options.
_ENV: dict[str, tuple[str, type, float]] = {
    "flush_records": ("MODELOPS_CAPTURE_FLUSH_RECORDS", int, 1),
    "flush_seconds": ("MODELOPS_CAPTURE_FLUSH_SECONDS", float, 0),
    "max_buffered": ("MODELOPS_CAPTURE_MAX_BUFFERED", int, 1),
    "retry_initial_seconds": ("MODELOPS_CAPTURE_RETRY_INITIAL_SECONDS", float, 0),
    "retry_max_seconds": ("MODELOPS_CAPTURE_RETRY_MAX_SECONDS", float, 0),
    "shutdown_timeout_seconds": ("MODELOPS_CAPTURE_SHUTDOWN_TIMEOUT_SECONDS", float, 0),
}


@dataclass(frozen=True)
class CaptureOptions:
    """How often capture files are cut and how much may wait in memory."""

    #: Rows per file at most; a group reaching it is written at once. Each file costs an S3 put
    #: and Parquet metadata, and readers prefer few files: 5000 rows (about 0.5 MB for churn).
    flush_records: int = 5000
    #: A group's rows wait at most this long before they are written (however few).
    flush_seconds: float = 60.0
    #: Rows kept in memory at most (buffered + awaiting retry); beyond it the oldest are dropped.
    max_buffered: int = 100_000
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    #: How long shutdown keeps trying to write what is buffered before dropping it.
    shutdown_timeout_seconds: float = 15.0

    def __post_init__(self) -> None:
        problems = []
        if self.flush_records < 1:
            problems.append(f"flush_records must be at least 1, got {self.flush_records}")
        if self.max_buffered < self.flush_records:
            problems.append(f"max_buffered ({self.max_buffered}) must be at least flush_records ({self.flush_records})")
        for name in ("flush_seconds", "retry_initial_seconds", "retry_max_seconds"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.shutdown_timeout_seconds < 0:
            problems.append(f"shutdown_timeout_seconds must not be negative, got {self.shutdown_timeout_seconds}")
        if problems:
            raise ValueError("invalid capture options: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CaptureOptions:
        """Defaults overridden by ``MODELOPS_CAPTURE_*`` variables; a bad value names its variable."""
        values: dict[str, Any] = {}
        for name, (variable, kind, least) in _ENV.items():
            read = env_int if kind is int else env_float
            values[name] = read(variable, getattr(cls, name), minimum=least, environ=environ)
        return cls(**values)


@dataclass
class _Counts:
    written: int = 0
    dropped: int = 0
    files: int = 0
    write_failures: int = 0


@dataclass(eq=False)
class _Chunk:
    """Rows of one ``(stream, model, day)`` group; becomes one file once sealed."""

    stream: str
    model: str
    day: dt.date
    schema: Any
    opened_at: float
    rows: RowParts = field(default_factory=RowParts)
    key: str | None = None
    in_flight: bool = False
    #: Rows cut (counted as dropped) while the file's write was in progress.
    cut_in_flight: int = 0
    attempts: int = 0
    #: Parts before this index are already joined (a hint: cutting the head may shift them).
    compacted: int = 0


class CaptureWriter:
    """Buffer rows, write them to S3 as Parquet in a background thread. Thread-safe.

    ``store`` needs ``put_bytes(key, data, content_type)`` (``modelops.store.Store``).
    """

    def __init__(
        self,
        store: Any,
        options: CaptureOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.options = options or CaptureOptions()
        self._clock = clock
        self._cond = threading.Condition()
        self._open: dict[tuple[str, str, dt.date], _Chunk] = {}  # insertion order = age
        self._sealed: deque[_Chunk] = deque()  # written in this order
        self._pending = 0
        self._writer_cpu_s = 0.0  # CPU the writer thread spent on files (Arrow, Parquet, S3 put)
        self._counts: dict[tuple[str, str], _Counts] = {}
        self._retry_at = 0.0
        self._backoff = self.options.retry_initial_seconds
        self._thread: threading.Thread | None = None
        self._closing = False
        self._closed = False
        self._deadline = float("inf")
        self._last_drop_log = float("-inf")

    # Request path ---------------------------------------------------------------------------
    def enqueue(self, stream: str, model: str, day: dt.date, rows: list[dict] | ColumnBlock, schema: Any) -> None:
        """Buffer ``rows`` (dicts or a :class:`ColumnBlock`; ``schema`` a ``pyarrow.Schema``); never blocks on I/O."""
        if not rows:
            return
        with self._cond:
            if self._closing:
                self._count(stream, model).dropped += len(rows)
                log.error("capture is shut down: %d %s rows of '%s' dropped", len(rows), stream, model)
                return
            group = (stream, model, day)
            chunk = self._open.get(group)
            if chunk is None:
                chunk = self._open[group] = _Chunk(stream, model, day, schema, opened_at=self._clock())
            chunk.rows.extend(rows)
            self._pending += len(rows)
            if len(chunk.rows) >= self.options.flush_records:
                self._seal(group)
                self._cond.notify_all()
            elif len(chunk.rows.parts) - chunk.compacted == COMPACT_PARTS:
                self._cond.notify_all()  # parts to join
            self._enforce_bound()

    # Control --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelops-capture-writer", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything buffered now; True when nothing is left within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        with self._cond:
            for group in list(self._open):
                self._seal(group)
            self._retry_at = 0.0
            self._cond.notify_all()
            while self._pending:
                remaining = end - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float | None = None) -> dict:
        """Write what is buffered (up to ``timeout``, default from the options), then stop.

        Whatever is still unwritten then is dropped and counted. Returns :meth:`stats`.
        """
        timeout = self.options.shutdown_timeout_seconds if timeout is None else timeout
        with self._cond:
            if self._closed:
                return self.stats()
            self._closing = True
            for group in list(self._open):
                self._seal(group)
            self._deadline = self._clock() + timeout
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout + 5.0)
        with self._cond:
            self._closed = True
            if self._pending:
                # Thread gone or stuck in a write past the deadline: account for everything left.
                self._abandon("the writer did not finish in time")
        stats = self.stats()
        log.info(
            "capture closed: %d rows written in %d files, %d dropped",
            stats["written"],
            stats["files"],
            stats["dropped"],
        )
        return stats

    def stats(self) -> dict:
        """Totals and per-``(stream, model)`` counts: written, dropped, files, write_failures, pending."""
        with self._cond:
            pending: dict[tuple[str, str], int] = {}
            for chunk in [*self._sealed, *self._open.values()]:
                pending[(chunk.stream, chunk.model)] = pending.get((chunk.stream, chunk.model), 0) + len(chunk.rows)
            groups = {}
            for key in sorted(set(self._counts) | set(pending)):
                counts = self._counts.get(key, _Counts())
                groups[key] = {
                    "written": counts.written,
                    "dropped": counts.dropped,
                    "files": counts.files,
                    "write_failures": counts.write_failures,
                    "pending": pending.get(key, 0),
                }
            return {
                "pending": self._pending,
                "max_buffered": self.options.max_buffered,
                "written": sum(g["written"] for g in groups.values()),
                "dropped": sum(g["dropped"] for g in groups.values()),
                "files": sum(g["files"] for g in groups.values()),
                "write_failures": sum(g["write_failures"] for g in groups.values()),
                "writer_cpu_seconds": round(self._writer_cpu_s, 6),
                "groups": groups,
            }

    # Internals (all called with the lock held, except _write) -------------------------------
    def _count(self, stream: str, model: str) -> _Counts:
        return self._counts.setdefault((stream, model), _Counts())

    def _seal(self, group: tuple[str, str, dt.date]) -> None:
        """Move a group's rows into files of at most ``flush_records`` rows, queued for writing."""
        chunk = self._open.pop(group)
        size = self.options.flush_records
        for start in range(0, len(chunk.rows), size):
            piece = _Chunk(chunk.stream, chunk.model, chunk.day, chunk.schema, chunk.opened_at)
            piece.rows = chunk.rows[start : start + size]
            piece.key = capture_file_key(chunk.stream, chunk.model, chunk.day, uuid.uuid4().hex)
            self._sealed.append(piece)

    def _seal_due(self, now: float) -> None:
        for group, chunk in list(self._open.items()):
            if now - chunk.opened_at >= self.options.flush_seconds:
                self._seal(group)

    def _enforce_bound(self) -> None:
        excess = self._pending - self.options.max_buffered
        if excess <= 0:
            return
        dropped_now = 0
        # Oldest first: files in the order they were cut (the head may be in flight), then open groups by age.
        for chunk in [*self._sealed, *self._open.values()]:
            if excess <= 0:
                break
            cut = min(excess, len(chunk.rows))
            del chunk.rows[:cut]  # the writer works on its own copy of an in-flight file's rows
            if chunk.in_flight:
                chunk.cut_in_flight += cut
            self._count(chunk.stream, chunk.model).dropped += cut
            self._pending -= cut
            excess -= cut
            dropped_now += cut
        self._sealed = deque(c for c in self._sealed if c.rows or c.in_flight)
        for group in [g for g, c in self._open.items() if not c.rows]:
            del self._open[group]
        now = self._clock()
        if dropped_now and now - self._last_drop_log >= 10.0:
            self._last_drop_log = now
            log.warning(
                "capture buffer full (%d rows): dropped the %d oldest rows; S3 writes are failing or too slow",
                self.options.max_buffered,
                dropped_now,
            )

    def _abandon(self, why: str) -> None:
        lost = 0
        for chunk in [*self._sealed, *self._open.values()]:
            self._count(chunk.stream, chunk.model).dropped += len(chunk.rows)
            lost += len(chunk.rows)
        self._sealed.clear()
        self._open.clear()
        self._pending = 0
        if lost:
            log.error("capture: %d rows were never written to S3 and are lost (%s)", lost, why)
        self._cond.notify_all()

    def _next_wait(self, now: float) -> float:
        waits = [1.0]
        if self._sealed:
            waits.append(self._retry_at - now)
        if self._open:
            oldest = min(c.opened_at for c in self._open.values())
            waits.append(oldest + self.options.flush_seconds - now)
        if self._closing:
            waits.append(self._deadline - now)
        return max(0.005, min(waits))

    def _run(self) -> None:
        while True:
            joining = None
            with self._cond:
                while True:
                    now = self._clock()
                    self._seal_due(now)
                    if self._closing and now >= self._deadline and self._pending:
                        self._abandon("shutdown timeout reached while S3 writes were failing")
                    if self._closing and not self._pending:
                        return
                    if self._sealed and now >= self._retry_at:
                        chunk = self._sealed[0]
                        chunk.in_flight = True
                        chunk.cut_in_flight = 0
                        chunk.attempts += 1
                        rows = chunk.rows.copy()
                        break
                    joining = self._parts_to_join()
                    if joining is not None:
                        break
                    self._cond.wait(self._next_wait(now))
            cpu_start = time.thread_time()
            if joining is not None:
                self._join(*joining)
                with self._cond:
                    self._writer_cpu_s += time.thread_time() - cpu_start
                continue
            outcome = self._write(chunk, rows)
            with self._cond:
                self._writer_cpu_s += time.thread_time() - cpu_start
                self._finish(chunk, rows, outcome)
                self._cond.notify_all()

    def _parts_to_join(self) -> tuple[tuple[str, str, dt.date], _Chunk, list] | None:
        """An open file with ``COMPACT_PARTS`` parts not yet joined: its key, itself, those parts."""
        for group, chunk in self._open.items():
            start = min(chunk.compacted, len(chunk.rows.parts))
            if len(chunk.rows.parts) - start >= COMPACT_PARTS:
                return group, chunk, chunk.rows.parts[start : start + COMPACT_PARTS]
        return None

    def _join(self, group: tuple[str, str, dt.date], chunk: _Chunk, parts: list) -> None:
        """Join ``parts`` outside the lock, then put them back joined if the file still holds them
        as they were (rows cut from its head or the file sealed meanwhile: the work is dropped; the
        write joins what is left)."""
        try:
            joined = RowParts.joined(parts)
        except Exception:  # noqa: BLE001 - the write will meet the same rows and say what is wrong
            log.exception("capture: joining %d parts of %s '%s' failed; left for the write", len(parts), *group[:2])
            joined = None
        with self._cond:
            if self._open.get(group) is not chunk:
                return
            at = chunk.rows.replace(parts, joined, chunk.compacted) if joined is not None else None
            # Failed, or no longer there as they were: go past them (the write joins what it gets).
            chunk.compacted = at if at is not None else chunk.compacted + len(parts)

    def _finish(self, chunk: _Chunk, rows: RowParts, outcome: str) -> None:
        """Account for one write attempt of ``chunk`` (``rows`` is what the attempt held)."""
        chunk.in_flight = False
        counts = self._count(chunk.stream, chunk.model)
        queued = chunk in self._sealed  # False once close() gave up on it (all its rows counted dropped)
        if outcome == "retry":
            counts.write_failures += 1
            self._retry_at = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, self.options.retry_max_seconds)
            if queued and not chunk.rows:
                self._sealed.remove(chunk)
            return
        if queued:
            self._sealed.remove(chunk)
            self._pending -= len(chunk.rows)
        if outcome == "written":
            counts.written += len(rows)
            counts.files += 1
            # Rows counted as dropped while this write ran were written after all.
            counts.dropped -= chunk.cut_in_flight if queued else len(rows)
            self._backoff = self.options.retry_initial_seconds
            self._retry_at = 0.0
        elif queued:  # "unwritable"
            counts.dropped += len(chunk.rows)

    def _write(self, chunk: _Chunk, rows: RowParts) -> str:
        """``written``, ``retry`` (S3 failed) or ``unwritable`` (cannot become Parquet)."""
        try:
            import pyarrow.parquet as pq

            table = rows.to_arrow(chunk.schema)
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
        except Exception:
            log.exception(
                "capture: %d %s rows of '%s' cannot be written as Parquet and are dropped",
                len(rows),
                chunk.stream,
                chunk.model,
            )
            return "unwritable"
        try:
            self.store.put_bytes(chunk.key, buffer.getvalue(), PARQUET_CONTENT_TYPE)
        except Exception as exc:  # noqa: BLE001 - any failure of the store is retried
            log.warning(
                "capture: writing %s (%d rows) failed on attempt %d: %s; retrying in %.1f s",
                chunk.key,
                len(rows),
                chunk.attempts,
                exc,
                self._backoff,
            )
            return "retry"
        log.debug("capture: wrote %s (%d rows)", chunk.key, len(rows))
        return "written"
