"""The REST client's login: a token is fetched before the first call, whatever the clock reads."""

from __future__ import annotations

import time

from modelops.airflow_api import AirflowClient


class _Response:
    def __init__(self, payload: dict):
        self.status_code, self._payload, self.content, self.text = 200, payload, b"x", ""

    def json(self) -> dict:
        return self._payload


class _Session:
    def __init__(self):
        self.headers: dict[str, str] = {}
        self.logins = 0

    def post(self, url, json, timeout):
        self.logins += 1
        return _Response({"access_token": f"token-{self.logins}"})

    def request(self, method, url, timeout, **kwargs):
        assert self.headers.get("Authorization", "").startswith("Bearer "), "called without a token"
        return _Response({"import_errors": []})


def test_first_call_logs_in_even_just_after_boot(monkeypatch):
    # time.monotonic() counts from boot: a machine up for under 5 minutes once skipped the login.
    clock = [12.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    client = AirflowClient("http://airflow", "admin", "admin")
    client._session = session = _Session()
    assert client.import_errors() == []
    assert session.logins == 1
    client.import_errors()
    assert session.logins == 1  # reused while fresh
    clock[0] += 301
    client.import_errors()
    assert session.logins == 2 and session.headers["Authorization"] == "Bearer token-2"


def test_backfill_runs_asks_only_for_the_backfill_runs_in_the_range():
    client = AirflowClient("http://airflow", "admin", "admin")
    seen = []

    def request(method, path, **kwargs):
        seen.append((method, path, kwargs))
        return {"dag_runs": [{"logical_date": "2026-11-18T00:00:00Z", "state": "success"}]}

    client.request = request
    runs = client.backfill_runs("monitor_churn", "2026-11-18T00:00:00+00:00", "2026-11-19T00:00:00+00:00")
    assert runs == [{"logical_date": "2026-11-18T00:00:00Z", "state": "success"}]
    method, path, kwargs = seen[0]
    assert (method, path) == ("GET", "/dags/monitor_churn/dagRuns")
    assert kwargs["params"]["run_type"] == "backfill"
    assert kwargs["params"]["logical_date_gte"] == "2026-11-18T00:00:00+00:00"
    assert kwargs["params"]["logical_date_lte"] == "2026-11-19T00:00:00+00:00"


def test_from_env_reads_the_address_and_login_with_the_local_stack_as_default():
    client = AirflowClient.from_env({})
    assert (client.base_url, client.username, client.password) == ("http://127.0.0.1:8080", "admin", "admin")
    client = AirflowClient.from_env(
        {"MODELOPS_AIRFLOW_URL": "http://af:9090/", "MODELOPS_AIRFLOW_USER": "ops", "MODELOPS_AIRFLOW_PASSWORD": "pw"}
    )
    assert (client.base_url, client.username, client.password) == ("http://af:9090", "ops", "pw")


class _FlakySession(_Session):
    """Answers the first ``failures`` calls with a 500 "Database error" (a deadlock), then 200."""

    def __init__(self, failures: int, status: int = 500, text: str = '{"detail":{"reason":"Database error"}}'):
        super().__init__()
        self.failures, self.status, self.text, self.calls = failures, status, text, []

    def request(self, method, url, timeout, **kwargs):
        self.calls.append(method)
        if len(self.calls) <= self.failures:
            response = _Response({})
            response.status_code, response.text = self.status, self.text
            return response
        return _Response({"is_paused": False})


def _client(session, monkeypatch) -> AirflowClient:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    client = AirflowClient("http://airflow", "admin", "admin")
    client._session = session
    return client


def test_an_idempotent_call_is_retried_after_a_database_deadlock(monkeypatch):
    session = _FlakySession(failures=2)
    _client(session, monkeypatch).unpause("monitor_churn")
    assert session.calls == ["PATCH", "PATCH", "PATCH"]


def test_retries_are_bounded_and_the_last_error_is_raised(monkeypatch):
    import pytest

    from modelops.airflow_api import TRANSIENT_RETRIES, AirflowError

    session = _FlakySession(failures=99)
    with pytest.raises(AirflowError, match="Database error") as raised:
        _client(session, monkeypatch).unpause("monitor_churn")
    assert raised.value.status_code == 500 and len(session.calls) == TRANSIENT_RETRIES + 1


def test_a_post_or_a_refusal_is_never_repeated(monkeypatch):
    import pytest

    from modelops.airflow_api import AirflowError

    session = _FlakySession(failures=1)
    with pytest.raises(AirflowError):
        _client(session, monkeypatch).request("POST", "/dags/monitor_churn/dagRuns", json={})
    assert session.calls == ["POST"]  # a trigger may have happened: never sent twice
    refused = _FlakySession(failures=1, status=500, text='{"detail":"boom"}')
    with pytest.raises(AirflowError):
        _client(refused, monkeypatch).dag("monitor_churn")
    assert refused.calls == ["GET"]  # a 500 that is not a database error is the server's bug
