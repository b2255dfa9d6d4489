"""dagkit on plain values: the as-of instant a run stands for, the shared @dag header, and how a step's refusal fails a task."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from modelops.config import ModelConfig
from modelops.dagkit import START_DATE, as_of, dag_header, fail_without_retry, requested_as_of

RUN_AFTER = dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.UTC)
ASKED = dt.datetime(2026, 11, 18, 0, 0, tzinfo=dt.UTC)


def _asset_triggered(*extras: dict) -> dict:
    events = [SimpleNamespace(extra=extra) for extra in extras]
    return {
        "data_interval_end": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(run_after=RUN_AFTER),
        "triggering_asset_events": {"churn_retrain_request": events},
    }


def test_a_requested_retrain_stands_for_the_day_that_asked():
    context = _asset_triggered({"model": "churn", "day": "2026-11-17", "as_of": ASKED.isoformat()})
    assert as_of(context) == ASKED


def test_several_requests_take_the_latest_as_of():
    later = ASKED + dt.timedelta(days=2)
    context = _asset_triggered({"as_of": ASKED.isoformat()}, {"as_of": "2026-11-20T00:00:00"})
    assert requested_as_of(context) == later  # a naive instant is UTC


def test_without_an_as_of_falls_back_to_the_run():
    assert as_of(_asset_triggered({"model": "churn"})) == RUN_AFTER  # an older request without as_of
    scheduled = {"data_interval_end": ASKED, "dag_run": SimpleNamespace(run_after=RUN_AFTER)}
    assert requested_as_of(scheduled) is None and as_of(scheduled) == ASKED


def _model() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "toy",
            "owner": "data-science",
            "problem_type": "regression",
            "target": "y",
            "features": [{"name": "x", "type": "numeric"}],
            "metrics": {"primary": "rmse"},
        }
    )


def test_dag_header_states_every_convention():
    header = dag_header(
        _model(), "monitor", doc_md="doc", description="d", schedule="@daily", timeout=dt.timedelta(hours=1)
    )
    assert header["dag_id"] == "monitor_toy"
    assert header["schedule"] == "@daily" and header["catchup"] is False
    assert header["start_date"] == START_DATE and header["start_date"].tzinfo is dt.UTC
    assert header["tags"] == ["modelops", "monitor", "toy"]
    assert header["default_args"]["owner"] == "data-science" and header["default_args"]["retries"] >= 1
    assert header["dagrun_timeout"] == dt.timedelta(hours=1) and header["max_active_runs"] == 1
    assert "params" not in header


def test_dag_header_takes_tags_args_params_and_extras():
    header = dag_header(
        _model(), "dead_letters", doc_md=None, description="d", schedule=None, timeout=dt.timedelta(minutes=5),
        max_active_runs=4, tags=["ingest", "dead-letters"], args={"owner": "x", "retries": 3},
        params={"since": None}, render_template_as_native_obj=False,
    )  # fmt: skip
    assert header["dag_id"] == "dead_letters_toy"
    assert header["tags"] == ["modelops", "ingest", "dead-letters", "toy"]
    assert header["default_args"] == {"owner": "x", "retries": 3} and header["max_active_runs"] == 4
    assert header["params"] == {"since": None} and header["render_template_as_native_obj"] is False


def test_fail_without_retry_turns_a_refusal_into_airflow_fail_exception():
    from airflow.sdk.exceptions import AirflowFailException

    with (
        pytest.raises(AirflowFailException, match="^params: bad day$"),
        fail_without_retry(ValueError, prefix="params: "),
    ):
        raise ValueError("bad day")


def test_fail_without_retry_lets_other_errors_retry():
    with pytest.raises(ConnectionError), fail_without_retry(ValueError):
        raise ConnectionError("S3 unreachable")
    with fail_without_retry(ValueError):
        pass  # nothing raised: nothing to do
