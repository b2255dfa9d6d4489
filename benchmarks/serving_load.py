"""The serving benchmark's load generator and the processes it measures.

The load generator is a plain asyncio HTTP/1.1 client on keep-alive connections (no HTTP
library): at thousands of requests per second a client library's own CPU, on the same 2 cores as
the servers, would be what is measured. It runs in its own (spawned) process, closed loop:
``concurrency`` connections each send a request as soon as the previous one answered, for
``warmup_s`` + ``measure_s`` seconds; only requests *completed* inside the window count.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger("bench.serving")

CONCURRENCY = 8


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at >= 0:
        length = int(lower[at + 15 : lower.index(b"\r\n", at)])
        return status, await reader.readexactly(length)
    body = b""  # chunked
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


async def _drive(
    url: str, bodies: list[bytes], concurrency: int, warmup_s: float, measure_s: float, rate: float | None = None
) -> dict:
    parts = urlparse(url)
    host, port = parts.hostname, parts.port
    requests = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    latencies: list[float] = []
    counts = {"ok_total": 0, "errors_total": 0, "errors": 0}
    samples: list[str] = []
    start = time.perf_counter()
    window_start, window_end = start + warmup_s, start + warmup_s + measure_s

    async def connection(offset: int) -> None:
        reader = writer = None
        i = offset
        # Paced (``rate`` requests/s over all connections): each connection sends on its own
        # schedule and a latency counts from the scheduled time, so a server that falls behind is
        # charged for the wait (no coordinated omission). Unpaced: closed loop.
        period = concurrency / rate if rate else 0.0
        scheduled = start + offset / rate if rate else 0.0
        while time.perf_counter() < window_end:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            if rate:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent, scheduled = scheduled, scheduled + period
            else:
                sent = time.perf_counter()
            good = False
            try:
                writer.write(requests[i % len(requests)])
                status, body = await _read_response(reader)
                good = status == 200
                if not good and len(samples) < 3:
                    samples.append(f"{status}: {body[:300]!r}")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {exc}")
                writer.close()
                reader = writer = None
            i += concurrency
            done = time.perf_counter()
            counts["ok_total" if good else "errors_total"] += 1
            if window_start <= done < window_end:
                if good:
                    latencies.append(done - sent)
                else:
                    counts["errors"] += 1
        if writer is not None:
            writer.close()

    lags: list[float] = []

    async def probe() -> None:
        """The load generator's own stalls: how late a 1 ms sleep wakes, over the window. A stall
        here delays every answer read meanwhile, whichever server is measured."""
        while time.perf_counter() < window_end:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            if window_start <= before:
                lags.append(time.perf_counter() - before - 0.001)

    cpu_before = time.process_time()
    await asyncio.gather(probe(), *(connection(k) for k in range(concurrency)))
    return {
        "loadgen_max_lag_ms": round(max(lags, default=0.0) * 1000, 1),
        "latencies": latencies,
        "errors": counts["errors"],
        "ok_total": counts["ok_total"],
        "errors_total": counts["errors_total"],
        "error_samples": samples,
        "measure_s": measure_s,
        "loadgen_cpu_s": time.process_time() - cpu_before,
    }


def _loadgen_process(conn) -> None:
    """Serve load jobs sent over ``conn`` until ``None`` arrives."""
    with suppress(ImportError):
        import uvloop

        uvloop.install()
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(asyncio.run(_drive(**job)))
        except Exception as exc:  # noqa: BLE001 - report, do not hang the parent
            conn.send({"crash": repr(exc)})


class LoadGenerator:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_loadgen_process, args=(child,), name="bench-loadgen", daemon=True)
        self.process.start()
        child.close()

    def run(self, url: str, bodies: list[bytes], warmup_s: float, measure_s: float, rate: float | None = None) -> dict:
        """Closed loop at ``CONCURRENCY`` connections, or paced at ``rate`` requests/s over them."""
        self._conn.send(
            {
                "url": url,
                "bodies": bodies,
                "concurrency": CONCURRENCY,
                "warmup_s": warmup_s,
                "measure_s": measure_s,
                "rate": rate,
            }
        )
        result = self._conn.recv()
        if "crash" in result:
            raise RuntimeError(f"load generator crashed: {result['crash']}")
        return result

    def close(self) -> None:
        with suppress(Exception):
            self._conn.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# Processes we start (each in its own session, stopped by process group) ----------------------------


def start(name: str, argv: list[str], env: dict, logs: Path) -> subprocess.Popen:
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as logfile:
        return subprocess.Popen(
            argv, env=env, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=logs, start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM the process group we created, then SIGKILL it if it lingers."""
    if process is None:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(20)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)


def wait_for(condition, what: str, timeout: float, process: subprocess.Popen | None, logfile: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            if condition():
                return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-30:]) if logfile.exists() else ""
    raise TimeoutError(f"{what} did not come up. Last lines of {logfile}:\n{tail}")


def tree_cpu(pid: int, descendants_only: bool = False) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (or of the descendants only)."""
    import psutil

    total = 0.0
    with suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [*([] if descendants_only else [root]), *root.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    return total
