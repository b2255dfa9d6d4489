"""Rebuild a registered version from its lineage and say whether it matches; or export it.

    python -m modelops.reproduce churn 3            # or an alias: churn champion
    python -m modelops.reproduce churn 3 --json
    python -m modelops.reproduce churn 3 --export ./churn-v3

Exit status: 0 reproduced (identical predictions, and identical model bytes where the estimator is
deterministic); 1 not reproduced (the reasons name what differs: a snapshot object whose ETag
changed, predictions, probabilities, model bytes, and the inputs that changed since); 3 the
version cannot be rebuilt (trained elsewhere and submitted, or without lineage); 2 bad arguments.
With ``--export``: 0 when written. Reads the configured tracking server and bucket
(``MLFLOW_TRACKING_URI``, ``MODELOPS_BUCKET``, the S3 endpoint settings), as ``make -s env`` sets them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from modelops.reproduce.report import EXIT_STATUS, NOT_REPRODUCIBLE

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelops.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a registered model (its name in the registry)")
    parser.add_argument("version", help="a version number or an alias (champion, challenger, ...)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--export", metavar="DIR", type=Path, default=None,
                        help="write a standalone training script (train.py, README.md, data/) into DIR")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the local copies and the rebuild's request and result here (default: a temp folder)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the rebuild may take (default 3600)")
    return parser


def _export(args) -> int:
    from modelops.reproduce.export import ExportRefused, export
    from modelops.reproduce.lineage import NotReproducible
    from modelops.reproduce.render import NotRenderable

    try:
        written = export(args.model, args.version, args.export)
    except NotReproducible as exc:
        print(f"cannot export: {exc}", file=sys.stderr)
        return EXIT_STATUS[NOT_REPRODUCIBLE]
    except (ExportRefused, NotRenderable) as exc:
        print(f"cannot export: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(written, indent=2))
    else:
        print(f"exported {args.model} version {written['version']} to {written['folder']}: "
              f"run `python {written['script']}` (see README.md there)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return 2
    if args.export is not None:
        return _export(args)
    from modelops.reproduce.runner import reproduce

    report = reproduce(args.model, args.version, workdir=args.workdir, timeout=args.timeout)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.to_text())
    return report.exit_status
