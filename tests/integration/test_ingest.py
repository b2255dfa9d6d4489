"""Data arrival end to end: moto's bucket notifications → SQS → ingest_churn (real scheduler,
triggerer and LocalExecutor workers) → validated/ or quarantine/; poison → DLQ → dead_letters_churn
→ redrive_churn; a consumer killed with SIGKILL mid-file; files whose notifications were lost,
found by reconcile_churn.

The stack runs with small windows (conftest: visibility 15 s, retry delay 1 s, 4 workers).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.support.polling import wait_until

from modelops import batches, ingest
from modelops.airflow_api import AirflowError
from modelops.local import bootstrap, datagen

pytestmark = pytest.mark.integration

MODEL = "churn"
BURST_FILES = 1000
#: Partitions far in the future: every other test reads days up to "now", so these files (some of
#: them broken on purpose) never enter a smoke, retrain or monitor run; removed afterwards anyway.
BURST_DAY = dt.date(2099, 1, 1)
LATE_DAY = dt.date(2099, 1, 2)
CRASH_DAY = dt.date(2099, 1, 3)
RECONCILE_DAY = dt.date(2099, 1, 10)
CONCURRENCY = 8  # MODELOPS_INGEST_CONCURRENCY in conftest
CORRUPTIONS = ("truncated_file", "missing_column", "unit_change", "wrong_type", "out_of_range")


@pytest.fixture(scope="module")
def sqs(stack):
    from modelops import settings

    return settings.sqs_client()


@pytest.fixture(scope="module")
def urls(sqs):
    return {
        "source": ingest.queue_url(sqs, MODEL),
        "dlq": ingest.queue_url(sqs, MODEL, dead_letter=True),
    }


@pytest.fixture(scope="module")
def consumers(airflow, store, sqs, urls):
    """ingest_churn and dead_letters_churn running; paused again afterwards, so the rest of the
    integration tier does not share the machine with them."""
    # The history loaded at start-up announced 60 files (+ the s3:TestEvent); this module starts
    # from an empty queue so its counts are its own (history ingestion is the same code path).
    sqs.purge_queue(QueueUrl=urls["source"])
    for dag_id in (f"ingest_{MODEL}", f"dead_letters_{MODEL}", f"redrive_{MODEL}"):
        airflow.wait_for_dag(dag_id)
    for kind in ("ingest", "dead_letters", "redrive"):
        airflow.unpause(f"{kind}_{MODEL}")
    yield
    for kind in ("ingest", "dead_letters", "redrive"):
        airflow.pause(f"{kind}_{MODEL}")
    for prefix in (f"raw/{MODEL}", f"validated/{MODEL}", f"quarantine/{MODEL}", f"ingest/{MODEL}/reports"):
        doomed = [{"Key": item.key} for item in store.list(f"{prefix}/dt=2099-")]
        for start in range(0, len(doomed), 1000):
            store.client.delete_objects(
                Bucket=store.bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
            )


def depth(sqs, url) -> dict:
    return ingest.queue_depth(sqs, url)


def drained(sqs, url) -> bool:
    return depth(sqs, url) == {"visible": 0, "in_flight": 0}


def keys(store, prefix) -> set[str]:
    return {item.key for item in store.list(prefix)}


def markers(store) -> dict[str, dict]:
    return {item.key: item for item in store.list(f"ingest/{MODEL}/results/")}


def burst_files() -> tuple[dict[str, bytes], set[str]]:
    """1,000 small files: 8 distinct valid contents and 5 corruptions, spread over 1,000 keys.

    Validation is memoised per (suite, file bytes), so repeated contents cost S3 and SQS work
    but one Great Expectations run each: the test exercises the queue, not GX's speed (measured
    by ``make bench``)."""
    valid, seed = [], 0
    while len(valid) < 8:
        frame = datagen.generate_batch("churn", BURST_DAY, 40, seed=seed)
        seed += 1
        if 0.1 <= frame["churned"].mean() <= 0.5:  # comfortably inside the suite's label balance
            valid.append(batches.to_csv_bytes(frame))
    bad = []
    for kind in CORRUPTIONS:
        broken = datagen.corrupt_batch(datagen.generate_batch("churn", BURST_DAY, 40, seed=99), kind)
        bad.append(broken if isinstance(broken, bytes) else batches.to_csv_bytes(broken))
    files, invalid = {}, set()
    for i in range(BURST_FILES):
        key = f"raw/{MODEL}/dt={BURST_DAY.isoformat()}/burst-{i:04d}.csv"
        if i % 10 == 9:
            files[key] = bad[(i // 10) % len(bad)]
            invalid.add(key)
        else:
            files[key] = valid[i % len(valid)]
    return files, invalid


def test_burst_every_file_lands_once_and_no_valid_message_reaches_the_dlq(stack, consumers, store, sqs, urls):
    files, invalid = burst_files()
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:  # 1,000 puts → 1,000 notifications, as fast as the endpoint takes them
        etags = dict(
            zip(files, pool.map(lambda kv: store.put_bytes(kv[0], kv[1], "text/csv"), files.items()), strict=True)
        )
    written = time.monotonic() - started
    # S3 may announce an object twice: 20 duplicate notifications on top.
    for key in list(files)[:20]:
        sqs.send_message(
            QueueUrl=urls["source"],
            MessageBody=json.dumps(
                {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                              "s3": {"bucket": {"name": store.bucket}, "object": {"key": key, "eTag": etags[key]}}}]}
            ),
        )  # fmt: skip

    max_in_flight = 0

    def all_done():
        nonlocal max_in_flight
        now = depth(sqs, urls["source"])
        max_in_flight = max(max_in_flight, now["in_flight"])
        # Listing 1,000 markers is real work for the endpoint: only once the queue looks empty.
        return now == {"visible": 0, "in_flight": 0} and len(markers(store)) >= BURST_FILES

    wait_until(all_done, "1,000 files ingested and the queue drained", timeout=900, interval=2.0)
    elapsed = time.monotonic() - started

    validated = keys(store, f"validated/{MODEL}/dt={BURST_DAY.isoformat()}/")
    quarantined = {k for k in keys(store, f"quarantine/{MODEL}/dt={BURST_DAY.isoformat()}/") if k.endswith(".csv")}
    for key in files:
        rest = key[len(f"raw/{MODEL}/") :]
        places = [f"validated/{MODEL}/{rest}" in validated, f"quarantine/{MODEL}/{rest}" in quarantined]
        assert places.count(True) == 1, f"{key}: validated={places[0]} quarantined={places[1]}"
        assert places[1] == (key in invalid), f"{key}: expected {'quarantine' if key in invalid else 'validated'}"
    results = [store.get_json(ingest.result_key(MODEL, key, etags[key])) for key in list(files)[::10]]
    assert all(r["receive_count"] == 1 for r in results), "a message was received twice (visibility lapsed?)"
    latencies = sorted(r["latency_seconds"] for r in results)
    # Nothing processed twice: one marker per file version, each written by the first receive.
    assert len(markers(store)) == BURST_FILES
    assert depth(sqs, urls["dlq"]) == {"visible": 0, "in_flight": 0}
    assert not keys(store, f"dead-letters/{MODEL}/") and not keys(store, f"ingest/{MODEL}/errors/")
    assert max_in_flight <= CONCURRENCY, f"{max_in_flight} messages in flight with {CONCURRENCY} workers"
    print(
        f"\nburst: {BURST_FILES} files written in {written:.1f} s, all ingested {elapsed:.1f} s after the first put "
        f"({BURST_FILES / elapsed * 60:.0f} files/min); latency of every 10th file: p50 "
        f"{latencies[len(latencies) // 2]:.0f} s, p95 {latencies[int(len(latencies) * 0.95)]:.0f} s"
    )


def _dead_letter_records(store) -> dict[str, dict]:
    return {r["message_id"]: r for r in (store.get_json(k) for k in keys(store, f"dead-letters/{MODEL}/"))}


def test_poison_reaches_the_dlq_after_max_receives_is_recorded_and_redriven(
    stack, consumers, store, sqs, urls, airflow
):
    late = f"raw/{MODEL}/dt={LATE_DAY}/late.csv"
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": store.bucket}, "object": {"key": late}}}]}  # fmt: skip
    bodies = {
        "not_json": "this is not an S3 event",
        "missing_object": json.dumps(event),
        "unknown_model": json.dumps(event).replace(f"raw/{MODEL}/", "raw/nobody/"),
    }
    ids = {
        name: sqs.send_message(QueueUrl=urls["source"], MessageBody=body)["MessageId"] for name, body in bodies.items()
    }

    records = wait_until(
        lambda: (r := _dead_letter_records(store)) and set(ids.values()) <= set(r) and r,
        "three dead letters recorded by dead_letters_churn",
        timeout=150,
    )
    for name, message_id in ids.items():
        record = records[message_id]
        assert record["receive_count"] == bootstrap.MAX_RECEIVE_COUNT, (name, record)
        assert record["attempts"] == bootstrap.MAX_RECEIVE_COUNT and record["status"] == "dead"
        assert record["body"] == bodies[name]
    assert "not JSON" in records[ids["not_json"]]["last_error"]
    assert "does not exist" in records[ids["missing_object"]]["first_error"]
    assert "names no known model" in records[ids["unknown_model"]]["last_error"]
    wait_until(lambda: drained(sqs, urls["dlq"]), "the DLQ emptied after recording", timeout=30)

    listing = subprocess.run(
        [sys.executable, "-m", "modelops.ingest.dead_letters", "list", "--model", MODEL],
        capture_output=True, text=True, env=os.environ, check=True,
    )  # fmt: skip
    assert all(message_id in listing.stdout for message_id in ids.values())

    with pytest.raises(AirflowError, match="400"):  # typed params: a bad request never becomes a run
        airflow.trigger(f"redrive_{MODEL}", conf={"message_ids": "not-a-list"})

    # Fix the cause (the file arrives), then redrive that dead letter from the UI's trigger form.
    etag = store.put_bytes(late, batches.to_csv_bytes(datagen.generate_batch("churn", LATE_DAY, 200)))
    run = airflow.trigger(f"redrive_{MODEL}", conf={"message_ids": [ids["missing_object"]]})
    finished = airflow.wait_for_run(f"redrive_{MODEL}", run["dag_run_id"], timeout=120)
    assert finished["state"] == "success", airflow.failure_logs(f"redrive_{MODEL}", run["dag_run_id"])
    record = store.get_json(f"dead-letters/{MODEL}/{ids['missing_object']}.json")
    assert record["status"] == "redriven" and record["redrives"][0]["new_message_id"]
    new_id = record["redrives"][0]["new_message_id"]
    wait_until(lambda: store.exists(ingest.result_key(MODEL, late, etag)) and drained(sqs, urls["source"]),
               "the fixed file ingested and the redriven message consumed", timeout=120)  # fmt: skip
    assert store.exists(f"validated/{MODEL}/dt={LATE_DAY}/late.csv")
    assert not store.exists(f"quarantine/{MODEL}/dt={LATE_DAY}/late.csv")
    assert not store.exists(ingest.error_key(MODEL, new_id)), "the redriven message failed again"
    assert new_id not in _dead_letter_records(store)


def test_consumer_killed_mid_file_is_redelivered_and_processed_exactly_once(stack, consumers, store, sqs, urls):
    wait_until(lambda: drained(sqs, urls["source"]), "queue empty before the crash test", timeout=120)
    errors_before = keys(store, f"ingest/{MODEL}/errors/")
    key = f"raw/{MODEL}/dt={CRASH_DAY}/large.csv"
    data = batches.to_csv_bytes(datagen.generate_batch("churn", CRASH_DAY, 150_000))
    etag = store.put_bytes(key, data, "text/csv")
    marker = ingest.result_key(MODEL, key, etag)

    def holder():
        for item in store.list(f"ingest/{MODEL}/inflight/"):
            record = store.get_json(item.key)
            if record["messages"]:
                return record
        return None

    record = wait_until(holder, "a consumer holding the large file", timeout=120, interval=0.1)
    assert not store.exists(marker), "the file was already processed before the kill"
    os.kill(record["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    assert not store.exists(marker)

    result = wait_until(lambda: store.exists(marker) and store.get_json(marker), "redelivered and processed",
                        timeout=180)  # fmt: skip
    assert result["receive_count"] == 2, result
    assert result["status"] == "validated"
    assert keys(store, f"validated/{MODEL}/dt={CRASH_DAY}/") == {f"validated/{MODEL}/dt={CRASH_DAY}/large.csv"}
    assert not keys(store, f"quarantine/{MODEL}/dt={CRASH_DAY}/")
    wait_until(lambda: drained(sqs, urls["source"]), "queue drained after the crash", timeout=60)
    assert depth(sqs, urls["dlq"])["visible"] == 0
    assert keys(store, f"ingest/{MODEL}/errors/") == errors_before, "the crash was recorded as a message failure"
    print(f"\ncrash: redelivered and processed {time.monotonic() - killed_at:.1f} s after SIGKILL")


def _consume_idle(airflow) -> bool:
    """No consume task of ingest_churn queued or running (a paused DAG gets no new one queued)."""
    for run in airflow.runs(f"ingest_{MODEL}"):
        if run["state"] in ("queued", "running"):
            state = airflow.task_states(f"ingest_{MODEL}", run["dag_run_id"]).get("consume")
            if state in ("queued", "running", "restarting"):
                return False
    return True


def _scheduled_runs_done(airflow, dag_id: str) -> list[dict] | None:
    """Unpausing a @daily DAG with catchup=False creates today's run at once, then moves the next
    one to tomorrow: done once the next run lies ahead and every run has finished."""
    next_at = airflow.dag(dag_id)["next_dagrun_run_after"]
    if not next_at or dt.datetime.fromisoformat(next_at.replace("Z", "+00:00")) <= dt.datetime.now(dt.UTC):
        return None
    runs = airflow.runs(dag_id)
    return runs if runs and all(run["state"] in ("success", "failed") for run in runs) else None


def _purged(sqs, url) -> bool:
    try:
        sqs.purge_queue(QueueUrl=url)
    except sqs.exceptions.PurgeQueueInProgress:  # one purge a minute; the fixture purged at start
        return False
    return True


def test_files_whose_notifications_were_lost_are_reconciled_and_ingested_once(
    stack, consumers, store, sqs, urls, airflow
):
    ingest_dag, reconcile_dag = f"ingest_{MODEL}", f"reconcile_{MODEL}"
    started = time.monotonic()
    airflow.wait_for_dag(reconcile_dag)
    was_paused = {dag_id: airflow.dag(dag_id)["is_paused"] for dag_id in (ingest_dag, reconcile_dag)}
    # Valid batches and one broken file; a key with a space and a '+' checks the URL encoding.
    files, seed = {}, 0
    while len(files) < 3:
        frame = datagen.generate_batch("churn", RECONCILE_DAY, 40, seed=seed)
        seed += 1
        if 0.1 <= frame["churned"].mean() <= 0.5:
            files[f"raw/{MODEL}/dt={RECONCILE_DAY}/lost {len(files)}+a.csv"] = batches.to_csv_bytes(frame)
    broken = datagen.corrupt_batch(datagen.generate_batch("churn", RECONCILE_DAY, 40, seed=99), "missing_column")
    broken_key = f"raw/{MODEL}/dt={RECONCILE_DAY}/lost-broken.csv"
    files[broken_key] = broken if isinstance(broken, bytes) else batches.to_csv_bytes(broken)
    try:
        # 1. The consumer cannot take anything: paused, and no consume task left running.
        airflow.pause(ingest_dag)
        wait_until(lambda: _consume_idle(airflow), "ingest_churn's consume task finished", timeout=180)
        # Unpausing reconcile_churn starts today's scheduled run (every partition, the history
        # included): let it finish now, so the purge below also drops what it announced.
        airflow.unpause(reconcile_dag)
        scheduled = wait_until(lambda: _scheduled_runs_done(airflow, reconcile_dag), "the scheduled run", timeout=180)
        assert all(run["state"] == "success" for run in scheduled), [(r["dag_run_id"], r["state"]) for r in scheduled]

        # 2. The files land, their notifications arrive, and are lost.
        waiting = depth(sqs, urls["source"])["visible"]
        etags = {key: store.put_bytes(key, data, "text/csv") for key, data in files.items()}
        wait_until(lambda: depth(sqs, urls["source"])["visible"] >= waiting + len(files), "notifications", timeout=30)
        wait_until(lambda: _purged(sqs, urls["source"]), "the queue purged", timeout=90, interval=2.0)
        wait_until(lambda: drained(sqs, urls["source"]), "the purge took effect", timeout=30)
        assert not any(store.exists(ingest.result_key(MODEL, k, e)) for k, e in etags.items()), "consumed early"

        # 3. A bad date is refused by the trigger form / REST API; a good request announces the files.
        with pytest.raises(AirflowError, match="400"):
            airflow.trigger(reconcile_dag, conf={"since": "2099-13-01"})
        run = airflow.trigger(reconcile_dag, conf={"since": RECONCILE_DAY.isoformat()})
        finished = airflow.wait_for_run(reconcile_dag, run["dag_run_id"], timeout=180)
        assert finished["state"] == "success", airflow.failure_logs(reconcile_dag, run["dag_run_id"])
        result = airflow.xcom(reconcile_dag, run["dag_run_id"], "announce_unprocessed_files")
        assert (result["listed"], result["already_done"], result["announced"]) == (len(files), 0, len(files))
        assert result["keys"] == sorted(files)
        assert depth(sqs, urls["source"]) == {"visible": len(files), "in_flight": 0}

        # 4. The consumer runs again and ingests each file once.
        airflow.unpause(ingest_dag)
        wait_until(
            lambda: (
                all(store.exists(ingest.result_key(MODEL, k, e)) for k, e in etags.items())
                and drained(sqs, urls["source"])
            ),
            "every reconciled file ingested and the queue drained",
            timeout=180,
        )
        validated = keys(store, f"validated/{MODEL}/dt={RECONCILE_DAY}/")
        quarantined = {k for k in keys(store, f"quarantine/{MODEL}/dt={RECONCILE_DAY}/") if k.endswith(".csv")}
        assert validated == {k.replace("raw/", "validated/", 1) for k in files if k != broken_key}
        assert quarantined == {broken_key.replace("raw/", "quarantine/", 1)}
        for key, etag in etags.items():
            marker = store.get_json(ingest.result_key(MODEL, key, etag))
            assert marker["event_name"] == ingest.RECONCILE_EVENT_NAME and marker["receive_count"] == 1, marker
            assert marker["status"] == ("quarantined" if key == broken_key else "validated"), marker

        # 5. Nothing left to announce: a dry run finds every file done.
        run = airflow.trigger(reconcile_dag, conf={"since": RECONCILE_DAY.isoformat(), "dry_run": True})
        finished = airflow.wait_for_run(reconcile_dag, run["dag_run_id"], timeout=180)
        assert finished["state"] == "success", airflow.failure_logs(reconcile_dag, run["dag_run_id"])
        again = airflow.xcom(reconcile_dag, run["dag_run_id"], "announce_unprocessed_files")
        assert (again["already_done"], again["missing"], again["announced"], again["dry_run"]) == (4, 0, 0, True)
        assert drained(sqs, urls["source"])
    finally:
        for dag_id, paused in was_paused.items():  # as the fixture left them
            if paused:
                airflow.pause(dag_id)
            else:
                airflow.unpause(dag_id)
    print(
        f"\nreconcile: {len(files)} files with lost notifications ingested; test took {time.monotonic() - started:.0f} s"
    )
