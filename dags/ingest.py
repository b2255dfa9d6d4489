"""
### Data arrival: ingest_&lt;model&gt;, dead_letters_&lt;model&gt;, redrive_&lt;model&gt;, reconcile_&lt;model&gt;

New files under `raw/<model>/dt=YYYY-MM-DD/` make the bucket send an S3 event to the SQS queue
`modelops-ingest-<model>` (redrive to `-dlq` after 5 receives).

**ingest_&lt;model&gt;** (`@continuous`, one run at a time):

1. **wait_for_messages**: a deferrable sensor; its trigger reads the queue's depth
   (`ApproximateNumberOfMessages`, which does not count as a receive) every few seconds and fires
   when messages wait. It never receives a message itself.
2. **consume**: receives only as many messages as it has free workers, validates each file with
   the model's Great Expectations suite and copies it to `validated/` or `quarantine/` with its
   report (JSON + Data Docs HTML), writes the result marker `ingest/<model>/results/...`, and only
   then deletes the message. Invalid data is handled (quarantined, deleted); a malformed message
   (not an S3 event, missing object, another model's key) is recorded under
   `ingest/<model>/errors/` and retried until SQS moves it to the dead-letter queue. Stops when
   the queue is empty or after its time budget; the next run goes on.

**dead_letters_&lt;model&gt;** (`@continuous`): the same sensor on the dead-letter queue; records each
dead letter at `dead-letters/<model>/<message-id>.json` (body, receive count, first/last error,
times), alerts (log, optional webhook `MODELOPS_DEAD_LETTER_WEBHOOK_URL`), then deletes it.

**redrive_&lt;model&gt;** (trigger only): sends the dead letters you name (or all) back to the source
queue and marks them `redriven`. Same as `python -m modelops.ingest.dead_letters redrive`.

**reconcile_&lt;model&gt;** (`@daily`, and on trigger): finds raw files that have no result marker
because their notification never arrived (files uploaded before `make provision` created the
model's queue, messages lost with the local endpoint, a notification misconfiguration) and sends
the queue the S3 event each should have had; `ingest_<model>` then handles them like any other.
Params: `since` (only partitions `dt=` on or after that day; empty = all) and `dry_run` (count and
list, send nothing). Same as `python -m modelops.ingest reconcile`. A file that is already queued
or being processed is announced again harmlessly: its marker makes the second message a duplicate.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import Param, dag, get_current_context, task

from modelops.dagkit import START_DATE, declared_models, default_args, guard_run_params
from modelops.ingest.queues import dead_letter_queue_name, queue_name
from modelops_airflow.sqs_watch import WaitForQueueMessages

MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _poll_seconds() -> float:
    return float(os.environ.get("MODELOPS_INGEST_POLL_SECONDS") or 5)


def _idle_seconds() -> float:
    return float(os.environ.get("MODELOPS_INGEST_IDLE_SECONDS") or 3600)


def _consumer_args(model) -> dict:
    # A failed consume leaves its messages in the queue (they come back by themselves); retry soon.
    return {**default_args(model), "retry_delay": dt.timedelta(seconds=15), "retry_exponential_backoff": False}


def build_ingest_dag(model):
    @dag(
        dag_id=f"ingest_{model.name}",
        doc_md=__doc__,
        description=f"Validate each new '{model.name}' raw file once: SQS → validated/ or quarantine/",
        schedule="@continuous",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["modelops", "ingest", model.name],
        default_args=_consumer_args(model),
        dagrun_timeout=dt.timedelta(hours=3),
    )
    def ingest():
        @task(execution_timeout=dt.timedelta(hours=1))
        def consume(waited: dict) -> dict:
            from modelops.ingest.consumer import consume as consume_queue

            return {"sensor": waited, **consume_queue(model)}

        waited = WaitForQueueMessages(
            task_id="wait_for_messages",
            queue_name=queue_name(model.name),
            poll_seconds=_poll_seconds(),
            idle_seconds=_idle_seconds(),
        )
        consume(waited.output)

    return ingest()


def build_dead_letters_dag(model):
    @dag(
        dag_id=f"dead_letters_{model.name}",
        doc_md=__doc__,
        description=f"Record and alert on '{model.name}' messages that reached the dead-letter queue",
        schedule="@continuous",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["modelops", "ingest", "dead-letters", model.name],
        default_args=_consumer_args(model),
        dagrun_timeout=dt.timedelta(hours=3),
    )
    def dead_letters():
        @task(execution_timeout=dt.timedelta(minutes=30))
        def record_dead_letters(waited: dict) -> dict:
            from modelops.ingest.dead_letters import record_dead_letters as record

            return {"sensor": waited, **record(model.name)}

        waited = WaitForQueueMessages(
            task_id="wait_for_dead_letters",
            queue_name=dead_letter_queue_name(model.name),
            poll_seconds=_poll_seconds(),
            idle_seconds=_idle_seconds(),
        )
        record_dead_letters(waited.output)

    return dead_letters()


def build_redrive_dag(model):
    @dag(
        dag_id=f"redrive_{model.name}",
        doc_md=__doc__,
        description=f"Send recorded '{model.name}' dead letters back to the ingest queue",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["modelops", "ingest", "dead-letters", model.name],
        default_args=default_args(model),
        dagrun_timeout=dt.timedelta(minutes=30),
        params={
            "message_ids": Param(
                [], type="array", items={"type": "string", "pattern": MESSAGE_ID_PATTERN}, uniqueItems=True,
                maxItems=1000, title="Dead letters to redrive",
                description="Message ids from `dead-letters/<model>/` (or `python -m modelops.ingest.dead_letters list`). "
                "Leave empty and tick 'all' to redrive every dead letter.",
            ),
            "all": Param(
                False, type="boolean", title="Redrive all",
                description="Every record with status 'dead' (then leave the list empty).",
            ),
        },
    )  # fmt: skip
    def redrive():
        @task
        def redrive_dead_letters() -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from modelops.ingest.dead_letters import redrive as send_back

            context = get_current_context()
            params = context["params"]
            user = getattr(context["dag_run"], "triggering_user_name", None)
            actor = f"{user} via {context['dag'].dag_id}" if user else context["dag"].dag_id
            try:
                return send_back(model.name, list(params["message_ids"]), all_dead=bool(params["all"]), actor=actor)
            except (ValueError, LookupError) as exc:  # bad request: retrying will not help
                raise AirflowFailException(f"params: {exc}") from None

        redrive_dead_letters()
        guard_run_params()

    return redrive()


def build_reconcile_dag(model):
    @dag(
        dag_id=f"reconcile_{model.name}",
        doc_md=__doc__,
        description=f"Re-announce '{model.name}' raw files whose notification never arrived",
        schedule="@daily",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["modelops", "ingest", "reconcile", model.name],
        default_args=default_args(model),
        dagrun_timeout=dt.timedelta(hours=1),
        params={
            "since": Param(
                None, type=["null", "string"], format="date", pattern=DATE_PATTERN, title="Partitions from",
                description=f"Only `dt=` partitions of {model.raw_prefix} on or after this day (YYYY-MM-DD). "
                "Leave empty to check every partition (what the daily run does).",
            ),
            "dry_run": Param(
                False, type="boolean", title="Dry run",
                description="Count and list the files without a result marker; send nothing.",
            ),
        },
    )  # fmt: skip
    def reconcile():
        @task(execution_timeout=dt.timedelta(minutes=30))
        def announce_unprocessed_files() -> dict:
            from modelops import settings
            from modelops.ingest.consumer import reconcile as announce
            from modelops.store import Store

            params = get_current_context()["params"]
            since = dt.date.fromisoformat(params["since"]) if params.get("since") else None
            return announce(model, Store(), settings.sqs_client(), since=since, dry_run=bool(params["dry_run"]))

        announce_unprocessed_files()
        guard_run_params()

    return reconcile()


for _model in declared_models():
    globals()[f"ingest_{_model.name}"] = build_ingest_dag(_model)
    globals()[f"dead_letters_{_model.name}"] = build_dead_letters_dag(_model)
    globals()[f"redrive_{_model.name}"] = build_redrive_dag(_model)
    globals()[f"reconcile_{_model.name}"] = build_reconcile_dag(_model)
