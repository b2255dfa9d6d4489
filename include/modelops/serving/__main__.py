"""``python -m modelops.serving [--host H] [--port P] [--workers N]``: the serving endpoint under uvicorn.

``--workers N`` (default ``MODELOPS_SERVING_WORKERS``, else 1) runs N uvicorn worker processes on
one socket, each building its own app from the factory ``modelops.serving.app:create_app``. Each
worker is a full copy: it loads every champion (N × the memory of the models), keeps its own
capture buffer (files keyed by a fresh uuid4, so no worker overwrites another's; each flushes at
its own graceful shutdown) and its own metrics (Prometheus must scrape each worker, or sum them:
one scrape of the shared port sees one worker's counters). A ``POST /models/<m>/reload`` reaches
one worker; every worker follows the ``champion`` alias by itself every
``MODELOPS_SERVING_ALIAS_POLL_SECONDS`` and writes a heartbeat the deploy stage waits on
(:mod:`modelops.serving.follower`). Replicas behind a load balancer behave the same way.

The default address comes from ``MODELOPS_SERVING_URL`` (what the local stack exports), else
127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import copy
import logging
from urllib.parse import urlparse

from modelops import settings as _settings

#: The uvicorn factory every worker process calls (an import string: workers are spawned processes).
APP_FACTORY = "modelops.serving.app:create_app"
MAX_WORKERS = 64


def log_config(level: str) -> dict:
    """uvicorn's logging config plus a root handler, so every worker process logs the platform's
    messages too (a spawned worker does not inherit the parent's ``logging.basicConfig``)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["modelops"] = {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"}
    config["handlers"]["modelops"] = {
        "formatter": "modelops",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["modelops"], "level": level.upper()}
    return config


def main(argv: list[str] | None = None) -> int:
    url = urlparse(_settings.load().serving_url)
    workers = _settings.env_int("MODELOPS_SERVING_WORKERS", 1, minimum=1, maximum=MAX_WORKERS)
    parser = argparse.ArgumentParser(prog="python -m modelops.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=url.hostname or "127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=url.port or 8000, help="port to bind (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=workers,
        help=f"uvicorn worker processes (default: MODELOPS_SERVING_WORKERS, else 1; at most {MAX_WORKERS})",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="log level"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be between 1 and {MAX_WORKERS}, got {args.workers}")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )

    import uvicorn

    common = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "log_config": log_config(args.log_level),
        # Graceful shutdown lets in-flight requests finish, then each worker's lifespan flushes its capture buffer.
        "timeout_graceful_shutdown": 30,
    }
    if args.workers == 1:
        from modelops.serving.app import create_app

        uvicorn.run(create_app(), workers=1, **common)
    else:
        uvicorn.run(APP_FACTORY, factory=True, workers=args.workers, **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
