"""``python -m modelops.ingest``: the ingest stage's command line.

Why a module: an operator re-announces files whose notification was lost without Airflow::

    python -m modelops.ingest reconcile --model churn [--since 2026-11-01] [--dry-run] [--limit N]

Dead letters have their own command line: ``python -m modelops.ingest.dead_letters``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

log = logging.getLogger(__name__)

DESCRIPTION = "Data arrival: consume a model's SQS queue of S3 notifications, validate each new raw file once."


def _date_argument(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; expected YYYY-MM-DD, e.g. 2026-11-01") from None


def _limit_argument(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelops.ingest", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    again = commands.add_parser(
        "reconcile", help="announce raw files that have no ingest result (their notification was lost)"
    )
    again.add_argument("--model", required=True)
    again.add_argument(
        "--since", type=_date_argument, metavar="YYYY-MM-DD", help="only partitions dt= on or after this day"
    )
    again.add_argument("--dry-run", action="store_true", help="count and list, send nothing")
    again.add_argument("--limit", type=_limit_argument, metavar="N", help="announce at most N files")
    again.add_argument("--json", action="store_true", help="print the full result (keys included) as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    from modelops import settings
    from modelops.config import load_all_models
    from modelops.ingest.reconcile import reconcile, summarize_reconciliation
    from modelops.store import Store

    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    models = load_all_models()
    if args.model not in models:
        parser.error(f"unknown model {args.model!r}; declared: {sorted(models)}")
    from botocore.exceptions import BotoCoreError

    try:
        result = reconcile(
            models[args.model], Store(), settings.sqs_client(), since=args.since, dry_run=args.dry_run,
            limit=args.limit,
        )  # fmt: skip
    except RuntimeError as exc:  # the queue is missing, or sends failed: the message says what to do
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:  # no endpoint or no credentials
        print(f"error: {exc}; is this shell pointed at the stack (`eval $(make -s env)`)?", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else summarize_reconciliation(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
