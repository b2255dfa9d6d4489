"""Log lines written off the event loop (modelops.serving.logs): a handler that blocks does not
block the thread that logs, uvicorn's access lines keep their format, nothing queued is lost."""

from __future__ import annotations

import logging
import threading
import time

from uvicorn.logging import AccessFormatter

from modelops.serving.logs import OffLoopLogging


class _Blocking(logging.Handler):
    """A handler whose writes wait until ``go`` is set (a log file while its disk stalls)."""

    def __init__(self):
        super().__init__()
        self.go = threading.Event()
        self.lines: list[str] = []
        self.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))

    def emit(self, record):
        self.go.wait(10)
        self.lines.append(self.format(record))


def test_a_stalled_handler_does_not_stall_the_logging_thread_and_loses_nothing():
    logger = logging.getLogger("modelops.test.access")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = _Blocking()
    logger.handlers = [handler]
    logging_thread = OffLoopLogging(("modelops.test.access",))
    logging_thread.start()
    try:
        started = time.perf_counter()
        for i in range(50):  # uvicorn's access call: the formatter reads the arguments
            logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", f"/models/churn/predict?{i}", "1.1", 200)
        assert time.perf_counter() - started < 5  # returned while every write still waits
        assert handler.lines == []
    finally:
        handler.go.set()
        logging_thread.stop()
    assert logger.handlers == [handler]  # put back
    assert len(handler.lines) == 50
    assert handler.lines[0] == '127.0.0.1:5000 - "POST /models/churn/predict?0 HTTP/1.1" 200 OK'
    assert handler.lines[-1].endswith('predict?49 HTTP/1.1" 200 OK')
