"""``python -m modelops.serving [--host H] [--port P]``: the serving endpoint under uvicorn.

One worker on purpose: models, the capture buffer and the metrics live in the process, so N
workers would load every model N times and report N disjoint sets of counters. Scale with
replicas (each with its own capture files and metrics), not workers. The default address comes
from ``MODELOPS_SERVING_URL`` (what the local stack exports), else 127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import logging
from urllib.parse import urlparse

from modelops import settings as _settings


def main(argv: list[str] | None = None) -> int:
    url = urlparse(_settings.load().serving_url)
    parser = argparse.ArgumentParser(prog="python -m modelops.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=url.hostname or "127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=url.port or 8000, help="port to bind (default: %(default)s)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="log level"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )

    import uvicorn

    from modelops.serving.app import create_app

    app = create_app()
    # Graceful shutdown lets in-flight requests finish, then the lifespan flushes the capture buffer.
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level=args.log_level, timeout_graceful_shutdown=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
