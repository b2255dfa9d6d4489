"""Is it up yet: the small checks the stack makes while it starts a component.

A pid that is alive (zombies are not), a port that answers, an HTTP endpoint below 500, and
:func:`wait_for`, which polls one of them and, on giving up, quotes the component's log tail so
a failed ``make up`` says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def bin_path(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def port_busy(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def wait_for(
    condition, what: str, timeout: float, logfile: Path | None = None, interval: float = 0.5, alive=None
) -> None:
    """Poll ``condition``; give up at ``timeout`` or as soon as ``alive()`` says the process died."""
    deadline = time.monotonic() + timeout
    problem = f"did not come up within {timeout:.0f} s"
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None and not alive():
            problem = "exited while starting"
            break
        time.sleep(interval)
    tail = ""
    if logfile and logfile.exists():
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-40:])
    raise TimeoutError(f"{what} {problem}. Last lines of {logfile}:\n{tail}")
