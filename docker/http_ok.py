#!/usr/bin/env python3
"""Container healthcheck without curl: ``modelops-http-ok URL [dotted.key=value ...]``.

Exit 0 when URL answers 2xx within the timeout and, for each ``key=value``, the JSON body holds
that value at that dotted path (``scheduler.status=healthy``); exit 1 otherwise, saying why.
Standard library only, so it runs on the official Python image and on the Debian base alike.
"""

import json
import sys
import urllib.request


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    url, conditions = argv[0], [item.split("=", 1) for item in argv[1:]]
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except Exception as exc:  # any failure is "unhealthy"
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    if not conditions:
        return 0
    try:
        document = json.loads(body)
    except ValueError:
        print(f"{url}: not JSON", file=sys.stderr)
        return 1
    for path, wanted in conditions:
        value = document
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if str(value) != wanted:
            print(f"{url}: {path} is {value!r}, not {wanted!r}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
