"""A serving worker's log lines written by a thread of their own, not by the event loop.

uvicorn logs every request (its access log) and the platform logs from the request path; by
default each line is formatted and written to stdout/stderr by the thread that logged it, the
event loop. A write to a log file or a pipe usually takes microseconds, but it can block: a file
while the filesystem commits its journal or writes back dirty pages, a pipe while its reader
(``docker logs``, a shipper) falls behind. Every request on the worker then waits with it (stalls
of 30-110 ms in a few of the paced rounds of ``benchmarks/serving_shadow.py``).

:class:`OffLoopLogging` moves the handlers of the loggers that have any (the root logger, uvicorn's)
behind a queue: the logging thread only puts the record on it, a listener thread formats and
writes. Records keep their arguments (uvicorn's access formatter reads them), so the lines are
the same; the order is kept (one listener per logger); at stop the listener writes what is queued.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue

#: The loggers whose handlers move behind the queue (uvicorn's access log has its own handler).
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


class _QueueHandler(logging.handlers.QueueHandler):
    """Puts the record itself on the queue: the listener is a thread of this process, so the
    record needs no flattening (``prepare`` would drop the arguments uvicorn's formatters use)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class OffLoopLogging:
    """Start: each of ``loggers`` with handlers logs through a queue to a listener thread.
    Stop: the listeners write what is queued and the handlers are put back."""

    def __init__(self, loggers: tuple[str, ...] = LOGGERS):
        self.loggers = loggers
        self._moved: list[tuple[logging.Logger, list[logging.Handler], logging.handlers.QueueListener]] = []

    def start(self) -> None:
        for name in self.loggers:
            logger = logging.getLogger(name)
            handlers = [h for h in logger.handlers if not isinstance(h, _QueueHandler)]
            if not handlers or len(handlers) != len(logger.handlers):
                continue  # nothing to move, or moved already
            records: queue.SimpleQueue = queue.SimpleQueue()
            listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
            listener.start()
            logger.handlers = [_QueueHandler(records)]
            self._moved.append((logger, handlers, listener))

    def stop(self) -> None:
        while self._moved:
            logger, handlers, listener = self._moved.pop()
            logger.handlers = handlers
            listener.stop()  # writes what was queued first
