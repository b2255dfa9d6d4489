"""Dead-letter records, alerts and redrive against in-process S3 + SQS (moto's mock_aws)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from tests.unit.ingest.ingest_helpers import _consume, _csv, _depth, _event, _keys

from modelops.ingest import dead_letters
from modelops.layout import ingest_error_key


def _poison_to_dlq(aws, model, body: str) -> None:
    aws["sqs"].send_message(QueueUrl=aws["url"], MessageBody=body)
    _consume(aws, model)
    assert _depth(aws, aws["dlq"])["visible"] >= 1


def test_build_record_takes_errors_from_the_consumer_record():
    message = {
        "MessageId": "m-1",
        "Body": "{}",
        "Attributes": {"ApproximateReceiveCount": "6", "SentTimestamp": "1764000000000"},
    }
    error = {"receive_count": 5, "first_error": "A", "last_error": "B", "attempts": [{}] * 5, "poison": True}
    record = dead_letters.build_record("churn", message, error, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    assert record["receive_count"] == 5 and record["dlq_receive_count"] == 6
    assert (record["first_error"], record["last_error"], record["status"]) == ("A", "B", "dead")
    assert record["sent_at"].startswith("2025-11-24")
    without = dead_letters.build_record("churn", message, None, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    assert without["receive_count"] == 5 and "no error recorded" in without["last_error"]


def test_dead_letters_are_recorded_alerted_and_removed_from_the_dlq(aws, model, monkeypatch, caplog):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MODELOPS_DEAD_LETTER_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    _poison_to_dlq(aws, model, "garbage")
    result = dead_letters.record_dead_letters("churn", store=aws["store"], sqs=aws["sqs"])
    server.shutdown()
    assert result["count"] == 1
    (record,) = dead_letters.list_dead_letters("churn", store=aws["store"])
    assert record["body"] == "garbage" and record["receive_count"] == 5
    assert "not JSON" in record["first_error"] and record["status"] == "dead"
    assert received and received[0]["message_id"] == record["message_id"]
    assert "DEAD LETTER churn/" in caplog.text
    assert _depth(aws, aws["dlq"]) == {"visible": 0, "in_flight": 0}


def test_redrive_sends_back_marks_and_never_twice(aws, model):
    key = "raw/churn/dt=2026-11-01/late.csv"
    _poison_to_dlq(aws, model, _event(key))
    dead_letters.record_dead_letters("churn", store=aws["store"], sqs=aws["sqs"])
    (record,) = dead_letters.list_dead_letters("churn", store=aws["store"])

    with pytest.raises(LookupError, match="no dead-letter record for \\['nope'\\]"):
        dead_letters.redrive("churn", ["nope"], store=aws["store"], sqs=aws["sqs"])
    with pytest.raises(ValueError, match="not both and not neither"):
        dead_letters.redrive("churn", [], store=aws["store"], sqs=aws["sqs"])

    aws["store"].put_bytes(key, _csv())  # the fix: the file arrives after all
    out = dead_letters.redrive("churn", [record["message_id"]], store=aws["store"], sqs=aws["sqs"], actor="ops")
    assert len(out["redriven"]) == 1
    again = dead_letters.redrive("churn", all_dead=True, store=aws["store"], sqs=aws["sqs"])
    assert again["redriven"] == []
    (marked,) = dead_letters.list_dead_letters("churn", status="redriven", store=aws["store"])
    assert marked["redrives"][0]["by"] == "ops"
    assert _consume(aws, model)["counts"] == {"received": 1, "validated": 1}
    assert _keys(aws["store"], "validated/") == ["validated/churn/dt=2026-11-01/late.csv"]


def test_cli_lists_and_refuses_unknown_models(aws, model, capsys):
    _poison_to_dlq(aws, model, "garbage")
    dead_letters.record_dead_letters("churn", store=aws["store"], sqs=aws["sqs"])
    assert dead_letters.main(["list", "--model", "churn"]) == 0
    assert "receives=5" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        dead_letters.main(["list", "--model", "nobody"])
    assert "unknown model(s) ['nobody']" in capsys.readouterr().err
    assert dead_letters.main(["redrive", "--model", "churn"]) == 2
    assert ingest_error_key("churn", "x") == "ingest/churn/errors/x.json"


def test_cli_says_where_to_point_the_shell_when_the_endpoint_does_not_answer(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert dead_letters.main(["drain", "--model", "churn"]) == 1
    assert "eval $(make -s env)" in capsys.readouterr().err
