"""Dead letters are handled, not parked: record, notify, list, redrive.

``record_dead_letters`` (what ``dead_letters_<model>`` runs) drains a model's dead-letter queue:
each message becomes ``dead-letters/<model>/<message-id>.json`` (body, receive count, first and
last error from the consumer's error record, times, status ``dead``), a notification is logged
and, if ``MODELOPS_DEAD_LETTER_WEBHOOK_URL`` is set, posted as JSON; only then is the message
deleted from the dead-letter queue. ``redrive`` sends chosen records' bodies back to the source queue and marks
them ``redriven``. Both are also a CLI::

    python -m modelops.ingest.dead_letters list [--model churn] [--status dead|redriven|all]
    python -m modelops.ingest.dead_letters redrive --model churn (--all | MESSAGE_ID ...)
    python -m modelops.ingest.dead_letters drain --model churn
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import urllib.request

from modelops import settings as _settings
from modelops.ingest.queues import queue_url
from modelops.ingest.settings import dead_letter_webhook_url
from modelops.layout import dead_letter_key, dead_letters_prefix, ingest_error_key
from modelops.store import Store

log = logging.getLogger(__name__)

STATUSES = ("dead", "redriven")
REDRIVEN_FROM = "modelops-redriven-from"


def _ms_to_iso(value: str | None) -> str | None:
    return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC).isoformat() if value else None


def build_record(model: str, message: dict, error: dict | None, now: dt.datetime) -> dict:
    """The dead-letter record of one DLQ message: a pure function of the message and its error record."""
    attrs = message.get("Attributes", {})
    dlq_receives = int(attrs.get("ApproximateReceiveCount", 0))
    error = error or {}
    attempts = error.get("attempts") or []
    redriven_from = ((message.get("MessageAttributes") or {}).get(REDRIVEN_FROM) or {}).get("StringValue")
    return {
        "model": model,
        "message_id": message["MessageId"],
        "body": message.get("Body", ""),
        # Receives by the consumer (what the redrive policy counted); the DLQ's own counter
        # includes this handler's receive as well.
        "receive_count": error.get("receive_count") or max(dlq_receives - 1, 0),
        "dlq_receive_count": dlq_receives,
        "attempts": len(attempts),
        "first_error": error.get("first_error") or "no error recorded (the consumer never finished an attempt)",
        "first_error_at": error.get("first_error_at"),
        "last_error": error.get("last_error") or "no error recorded (the consumer never finished an attempt)",
        "last_error_at": error.get("last_error_at"),
        "poison": error.get("poison"),
        "sent_at": _ms_to_iso(attrs.get("SentTimestamp")),
        "first_received_at": _ms_to_iso(attrs.get("ApproximateFirstReceiveTimestamp")),
        "dead_lettered_at": now.isoformat(),
        "redriven_from": redriven_from,
        "status": "dead",
        "redrives": [],
    }


def notify_dead_letter(record: dict, webhook_url: str | None = None) -> bool:
    """Log the dead letter; POST it to the webhook if one is configured. Never raises."""
    log.warning(
        "DEAD LETTER %s/%s after %s receives: %s",
        record["model"],
        record["message_id"],
        record["receive_count"],
        record["last_error"],
    )
    webhook_url = webhook_url if webhook_url is not None else dead_letter_webhook_url()
    if not webhook_url:
        return False
    payload = {
        "text": f"modelops: dead letter on {record['model']}: {record['last_error']}",
        **{k: record[k] for k in ("model", "message_id", "receive_count", "first_error", "last_error")},
    }
    request = urllib.request.Request(
        webhook_url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status < 300
    except OSError as exc:
        log.error("dead-letter webhook %s failed: %s (the record is in S3 anyway)", webhook_url, exc)
        return False


def record_dead_letters(model_name: str, *, store: Store | None = None, sqs=None, max_messages: int = 1000) -> dict:
    """Drain the model's DLQ into records; each message is deleted only after its record is written."""
    store = store or Store()
    sqs = sqs or _settings.sqs_client()
    url = queue_url(sqs, model_name, dead_letter=True)
    recorded, seen = [], 0
    while seen < max_messages:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen += 1
            key = dead_letter_key(model_name, message["MessageId"])
            if store.exists(key):  # written before a crash, not yet deleted: do not notify twice
                existing = store.get_json(key)
                if existing.get("status") == "dead":
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    continue
            error_key = ingest_error_key(model_name, message["MessageId"])
            error = store.get_json(error_key) if store.exists(error_key) else None
            record = build_record(model_name, message, error, dt.datetime.now(dt.UTC))
            store.put_json(key, record)
            notify_dead_letter(record)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            recorded.append(record["message_id"])
    return {"model": model_name, "recorded": recorded, "count": len(recorded)}


def list_dead_letters(model_name: str, *, status: str = "dead", store: Store | None = None) -> list[dict]:
    """Records of the model, oldest first; ``status`` is ``dead``, ``redriven`` or ``all``."""
    if status not in (*STATUSES, "all"):
        raise ValueError(f"status must be one of {[*STATUSES, 'all']}, got {status!r}")
    store = store or Store()
    records = [store.get_json(item.key) for item in store.list(dead_letters_prefix(model_name))]
    records = [r for r in records if status == "all" or r.get("status") == status]
    return sorted(records, key=lambda r: (r.get("dead_lettered_at") or "", r["message_id"]))


def redrive(
    model_name: str,
    message_ids: list[str] | None = None,
    *,
    all_dead: bool = False,
    actor: str = "cli",
    store: Store | None = None,
    sqs=None,
) -> dict:
    """Send dead letters back to the source queue (a new message each) and mark them redriven.

    Unknown ids are refused before anything is sent; already-redriven ones are skipped, so running
    the same request twice sends nothing twice.
    """
    if bool(message_ids) == bool(all_dead):
        raise ValueError("name the dead letters to redrive (message ids) or choose all, not both and not neither")
    store = store or Store()
    sqs = sqs or _settings.sqs_client()
    if all_dead:
        records = list_dead_letters(model_name, status="dead", store=store)
    else:
        records, missing = [], []
        for message_id in dict.fromkeys(message_ids):
            key = dead_letter_key(model_name, message_id)
            if store.exists(key):
                records.append(store.get_json(key))
            else:
                missing.append(message_id)
        if missing:
            raise LookupError(
                f"no dead-letter record for {missing} under {store.uri(dead_letters_prefix(model_name))}; "
                f"`python -m modelops.ingest.dead_letters list --model {model_name}` shows them"
            )
    url = queue_url(sqs, model_name)
    redriven, skipped = [], []
    for record in records:
        if record.get("status") != "dead":
            skipped.append(record["message_id"])
            continue
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody=record["body"],
            MessageAttributes={REDRIVEN_FROM: {"DataType": "String", "StringValue": record["message_id"]}},
        )
        now = dt.datetime.now(dt.UTC).isoformat()
        record["status"] = "redriven"
        record["redrives"] = [
            *record.get("redrives", []),
            {"at": now, "by": actor, "new_message_id": sent["MessageId"]},
        ]
        store.put_json(dead_letter_key(model_name, record["message_id"]), record)
        redriven.append({"message_id": record["message_id"], "new_message_id": sent["MessageId"]})
        log.info("redrove dead letter %s/%s as %s", model_name, record["message_id"], sent["MessageId"])
    return {"model": model_name, "redriven": redriven, "skipped_not_dead": skipped}


def main(argv: list[str] | None = None) -> int:
    from modelops.config import load_all_models

    parser = argparse.ArgumentParser(prog="python -m modelops.ingest.dead_letters", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("list", help="dead letters recorded in S3")
    show.add_argument("--model", help="one model (default: all declared models)")
    show.add_argument("--status", default="dead", choices=[*STATUSES, "all"])
    show.add_argument("--json", action="store_true", help="full records as JSON lines")
    again = commands.add_parser("redrive", help="send dead letters back to the model's source queue")
    again.add_argument("--model", required=True)
    again.add_argument("--all", action="store_true", help="every record with status 'dead'")
    again.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
    drain = commands.add_parser("drain", help="record what waits in the dead-letter queue now")
    drain.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    models = sorted(load_all_models())
    chosen = [args.model] if getattr(args, "model", None) else models
    unknown = sorted(set(chosen) - set(models))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; declared: {models}")
    from botocore.exceptions import BotoCoreError

    try:
        if args.command == "list":
            for name in chosen:
                for record in list_dead_letters(name, status=args.status):
                    if args.json:
                        print(json.dumps(record, sort_keys=True))
                    else:
                        print(
                            f"{name}\t{record['message_id']}\t{record['status']}\treceives={record['receive_count']}"
                            f"\t{record['dead_lettered_at']}\t{record['last_error'][:120]}"
                        )
        elif args.command == "redrive":
            print(json.dumps(redrive(args.model, args.message_ids, all_dead=args.all), indent=2))
        else:
            print(json.dumps(record_dead_letters(args.model), indent=2))
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotoCoreError as exc:  # no endpoint or no credentials
        print(f"error: {exc}; is this shell pointed at the stack (`eval $(make -s env)`)?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
