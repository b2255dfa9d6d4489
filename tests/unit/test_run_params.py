from __future__ import annotations

import datetime as dt

import pytest

from modelops.run_params import RunParamsError, check_conf_keys, check_not_future, unknown_keys

KNOWN = ["training_window_days", "candidates", "dry_run"]


def test_known_keys_and_empty_conf_pass():
    check_conf_keys({"training_window_days": 10, "dry_run": True}, KNOWN)
    check_conf_keys({}, KNOWN)
    check_conf_keys(None, KNOWN)


def test_a_misspelt_key_is_refused_with_the_closest_known_one():
    with pytest.raises(RunParamsError) as error:
        check_conf_keys({"trainig_window_days": 10}, KNOWN, "retrain_churn")
    message = str(error.value)
    assert "'trainig_window_days'" in message
    assert "did you mean 'training_window_days'" in message
    assert "retrain_churn" in message


def test_an_unrelated_key_is_refused_and_the_accepted_ones_listed():
    with pytest.raises(RunParamsError) as error:
        check_conf_keys({"foo": "bar"}, KNOWN)
    message = str(error.value)
    assert "'foo'" in message and "did you mean" not in message
    assert "candidates, dry_run, training_window_days" in message


def test_a_dag_without_params_refuses_any_key():
    assert unknown_keys({"x": 1}, []) == ["x"]
    with pytest.raises(RunParamsError, match="accepts: none"):
        check_conf_keys({"x": 1}, [])


NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def test_a_future_logical_date_is_refused_with_the_date():
    future = NOW + dt.timedelta(days=2)
    with pytest.raises(RunParamsError, match="2026-12-03T12:00:00"):
        check_not_future(future, NOW, "retrain_churn")


@pytest.mark.parametrize("logical_date", [None, NOW, NOW - dt.timedelta(days=3)])
def test_past_present_and_missing_logical_dates_pass(logical_date):
    check_not_future(logical_date, NOW)


def _app_behind_guard():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from modelops_airflow.trigger_guard import RefuseFutureTriggers

    async def trigger(request):
        return JSONResponse({"received": await request.json()})

    app = Starlette(routes=[Route("/api/v2/dags/{dag_id}/dagRuns", trigger, methods=["POST"])])
    app.add_middleware(RefuseFutureTriggers)
    return app


def test_the_api_guard_refuses_a_future_trigger_naming_the_date_and_passes_others():
    from starlette.testclient import TestClient

    client = TestClient(_app_behind_guard())
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    refused = client.post("/api/v2/dags/retrain_churn/dagRuns", json={"logical_date": future.isoformat()})
    assert refused.status_code == 400
    assert future.isoformat() in refused.json()["detail"] and "retrain_churn" in refused.json()["detail"]
    for body in ({"logical_date": None, "conf": {"a": 1}}, {"logical_date": "2026-01-01T00:00:00Z"}):
        passed = client.post("/api/v2/dags/retrain_churn/dagRuns", json=body)
        assert passed.status_code == 200 and passed.json() == {"received": body}
