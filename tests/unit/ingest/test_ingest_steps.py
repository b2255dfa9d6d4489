"""The ingest DAGs' step functions on plain values: the sensor's arguments and who a redrive names."""

from __future__ import annotations

import pytest

from modelops.ingest import steps
from modelops.settings import SettingError


def test_queue_watch_names_the_queue_and_reads_the_poll_settings(monkeypatch):
    monkeypatch.delenv("MODELOPS_INGEST_POLL_SECONDS", raising=False)
    monkeypatch.setenv("MODELOPS_INGEST_IDLE_SECONDS", "60")
    assert steps.queue_watch("delivery_time") == {
        "queue_name": "modelops-ingest-delivery-time",
        "poll_seconds": 5.0,
        "idle_seconds": 60.0,
    }
    assert steps.queue_watch("churn", dead_letter=True)["queue_name"] == "modelops-ingest-churn-dlq"
    monkeypatch.setenv("MODELOPS_INGEST_POLL_SECONDS", "often")
    with pytest.raises(SettingError, match="MODELOPS_INGEST_POLL_SECONDS='often'"):
        steps.queue_watch("churn")


def test_redrive_names_the_triggering_user_and_the_dag(monkeypatch):
    from modelops.config import get_model
    from modelops.ingest import dead_letters

    calls = []
    monkeypatch.setattr(dead_letters, "redrive", lambda *args, **kwargs: calls.append((args, kwargs)) or {})
    params = {"message_ids": ["m-1"], "all": False}
    steps.redrive_dead_letters(get_model("churn"), params, dag_id="redrive_churn", triggering_user="ana")
    steps.redrive_dead_letters(get_model("churn"), params, dag_id="redrive_churn", triggering_user=None)
    assert [kwargs["actor"] for _, kwargs in calls] == ["ana via redrive_churn", "redrive_churn"]
    assert calls[0][0] == ("churn", ["m-1"]) and calls[0][1]["all_dead"] is False
