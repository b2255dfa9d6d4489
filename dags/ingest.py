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
times), notifies (log, optional webhook `MODELOPS_DEAD_LETTER_WEBHOOK_URL`), then deletes it.

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

from airflow.sdk import Param, dag, get_current_context, task

from modelops.dagkit import dag_header, declared_models, default_args, fail_without_retry, guard_run_params
from modelops.ingest.steps import queue_watch
from modelops.run_params import MESSAGE_ID_PATTERN
from modelops_airflow.sqs_watch import WaitForQueueMessages

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _consumer_args(model) -> dict:
    # A failed consume leaves its messages in the queue (they come back by themselves); retry soon.
    return {**default_args(model), "retry_delay": dt.timedelta(seconds=15), "retry_exponential_backoff": False}


def build_ingest_dag(model):
    @dag(
        **dag_header(
            model, "ingest", doc_md=__doc__,
            description=f"Validate each new '{model.name}' raw file once: SQS → validated/ or quarantine/",
            schedule="@continuous", timeout=dt.timedelta(hours=3), args=_consumer_args(model),
        )
    )  # fmt: skip
    def ingest():
        @task(execution_timeout=dt.timedelta(hours=1))
        def consume(waited: dict) -> dict:
            """Validate the files the queue announces; copy each to validated/ or quarantine/ with its report."""
            from modelops.ingest import steps

            return steps.consume(model, waited)

        waited = WaitForQueueMessages(
            task_id="wait_for_messages",
            doc_md="Wait, deferred, until the ingest queue holds messages (none is received here).",
            **queue_watch(model.name),
        )
        consume(waited.output)

    return ingest()


def build_dead_letters_dag(model):
    @dag(
        **dag_header(
            model, "dead_letters", doc_md=__doc__,
            description=f"Record and alert on '{model.name}' messages that reached the dead-letter queue",
            schedule="@continuous", timeout=dt.timedelta(hours=3), tags=["ingest", "dead-letters"],
            args=_consumer_args(model),
        )
    )  # fmt: skip
    def dead_letters():
        @task(execution_timeout=dt.timedelta(minutes=30))
        def record_dead_letters(waited: dict) -> dict:
            """Record each dead letter in S3, notify about it, then delete it from the dead-letter queue."""
            from modelops.ingest import steps

            return steps.record_dead_letters(model, waited)

        waited = WaitForQueueMessages(
            task_id="wait_for_dead_letters",
            doc_md="Wait, deferred, until the dead-letter queue holds messages.",
            **queue_watch(model.name, dead_letter=True),
        )
        record_dead_letters(waited.output)

    return dead_letters()


def build_redrive_dag(model):
    @dag(
        **dag_header(
            model, "redrive", doc_md=__doc__,
            description=f"Send recorded '{model.name}' dead letters back to the ingest queue",
            schedule=None, timeout=dt.timedelta(minutes=30), tags=["ingest", "dead-letters"],
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
        )
    )  # fmt: skip
    def redrive():
        @task
        def redrive_dead_letters() -> dict:
            """Send the chosen dead letters back to the ingest queue and mark them redriven."""
            from modelops.ingest import steps

            context = get_current_context()
            user = getattr(context["dag_run"], "triggering_user_name", None)
            with fail_without_retry(*steps.REFUSALS, prefix="params: "):  # bad request: retrying will not help
                return steps.redrive_dead_letters(
                    model, context["params"], dag_id=context["dag"].dag_id, triggering_user=user
                )

        redrive_dead_letters()
        guard_run_params()

    return redrive()


def build_reconcile_dag(model):
    @dag(
        **dag_header(
            model, "reconcile", doc_md=__doc__,
            description=f"Re-announce '{model.name}' raw files whose notification never arrived",
            schedule="@daily", timeout=dt.timedelta(hours=1), tags=["ingest", "reconcile"],
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
        )
    )  # fmt: skip
    def reconcile():
        @task(execution_timeout=dt.timedelta(minutes=30))
        def announce_unprocessed_files() -> dict:
            """Announce on the queue every raw file that has no result marker (its notification was lost)."""
            from modelops.ingest import steps

            return steps.announce_unprocessed_files(model, get_current_context()["params"])

        announce_unprocessed_files()
        guard_run_params()

    return reconcile()


for _model in declared_models():
    globals()[f"ingest_{_model.name}"] = build_ingest_dag(_model)
    globals()[f"dead_letters_{_model.name}"] = build_dead_letters_dag(_model)
    globals()[f"redrive_{_model.name}"] = build_redrive_dag(_model)
    globals()[f"reconcile_{_model.name}"] = build_reconcile_dag(_model)
