"""A small client of Airflow's REST API (v2), as the UI uses it: trigger, watch, inspect runs.

Used by the integration tests, the benchmarks and the demo, so each drives Airflow the way a
person does rather than calling Python functions behind its back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

import requests

from modelops.settings import env_str

log = logging.getLogger(__name__)

TERMINAL_STATES = {"success", "failed"}
#: Where the local stack's API server listens and whom it lets in (``StackConfig``'s defaults):
#: what a plain shell gets when ``MODELOPS_AIRFLOW_*`` are unset.
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "admin"
#: Calls that change nothing when repeated; only these are retried after a transient server error.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE", "HEAD"})
#: A database deadlock or serialisation failure between the API server, the scheduler and the
#: dag-processor (all writing the ``dag`` row) surfaces as a 500 "Database error"; a restarting
#: server as 502/503/504. Each is worth a second try.
TRANSIENT_RETRIES = 3


class AirflowError(RuntimeError):
    """A refused or failed call; ``status_code`` is the HTTP status when the server answered."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._session = requests.Session()
        self._token_at: float | None = None  # monotonic time of the last login (None: never)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        url: str = DEFAULT_URL,
        username: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
    ) -> AirflowClient:
        """A client of the API server named by ``MODELOPS_AIRFLOW_URL``, logging in as
        ``MODELOPS_AIRFLOW_USER`` / ``MODELOPS_AIRFLOW_PASSWORD``; the arguments are the defaults
        for unset variables (the local stack's own unless a caller knows better)."""
        return cls(
            env_str("MODELOPS_AIRFLOW_URL", url, environ=environ),
            env_str("MODELOPS_AIRFLOW_USER", username, environ=environ),
            env_str("MODELOPS_AIRFLOW_PASSWORD", password, environ=environ),
        )

    def _auth(self) -> None:
        # Tokens live 10 minutes by default; renew well before.
        if self._token_at is not None and time.monotonic() - self._token_at < 300:
            return
        response = self._session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise AirflowError(
                f"login to {self.base_url} as {self.username} failed: {response.status_code} {response.text}"
            )
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self._token_at = time.monotonic()

    def request(self, method: str, path: str, **kwargs):
        self._auth()
        attempts = TRANSIENT_RETRIES + 1 if method.upper() in IDEMPOTENT_METHODS else 1
        for attempt in range(1, attempts + 1):
            response = self._session.request(method, f"{self.base_url}/api/v2{path}", timeout=self.timeout, **kwargs)
            if attempt == attempts or not _transient(response):
                break
            log.warning(
                "%s %s: transient %s (%s); retry %d of %d",
                method,
                path,
                response.status_code,
                response.text[:200],
                attempt,
                attempts - 1,
            )
            time.sleep(0.5 * attempt)
        if response.status_code >= 400:
            raise AirflowError(f"{method} {path}: {response.status_code} {response.text[:2000]}", response.status_code)
        return response.json() if response.content else None

    # DAGs ----------------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}")

    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 1000})["dags"]]

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/importErrors")["import_errors"]

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict:
        """Poll until the dag-processor has parsed and serialised ``dag_id``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dag(dag_id)
            except AirflowError:
                if time.monotonic() > deadline:
                    errors = self.import_errors()
                    raise AirflowError(
                        f"DAG {dag_id} not parsed within {timeout:.0f} s; import errors: {errors}"
                    ) from None
                time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    # Runs ----------------------------------------------------------------------------------------
    def trigger(
        self, dag_id: str, conf: dict | None = None, logical_date: str | None = None, run_id: str | None = None
    ) -> dict:
        body: dict = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}")

    def runs(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "-run_after"})[
            "dag_runs"
        ]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600.0, interval: float = 1.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise AirflowError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(interval)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances"
        return self.request("GET", path, params={"limit": 1000})["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        states = {}
        for ti in self.task_instances(dag_id, run_id):
            name = ti["task_id"] if ti.get("map_index", -1) == -1 else f"{ti['task_id']}[{ti['map_index']}]"
            states[name] = ti["state"]
        return states

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1):
        path = (
            f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{key}"
        )
        return self.request("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """A task attempt's log as text: each structured entry's message, plus any error detail."""
        path = (
            f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        )
        body = self.request("GET", path, params={"map_index": map_index, "full_content": "true"})
        lines = []
        for entry in body.get("content", []):
            if isinstance(entry, str):
                lines.append(entry)
                continue
            lines.append(str(entry.get("event", "")))
            if entry.get("error_detail"):
                lines.append(json.dumps(entry["error_detail"], default=str))
        return "\n".join(lines)

    def approve(self, dag_id: str, run_id: str, task_id: str, option: str = "Approve", map_index: int = -1) -> dict:
        """Answer a human-in-the-loop task (what the UI's "Required actions" page does)."""
        path = f"/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/hitlDetails"
        return self.request("PATCH", path, json={"chosen_options": [option], "params_input": {}})

    def clear_run(self, dag_id: str, run_id: str, task_ids: list[str] | None = None) -> dict:
        body: dict = {"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True}
        if task_ids:
            body["task_ids"] = task_ids
        return self.request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def run_and_wait(self, dag_id: str, conf: dict | None = None, timeout: float = 600.0, **kwargs) -> dict:
        self.wait_for_dag(dag_id)
        self.unpause(dag_id)
        run = self.trigger(dag_id, conf, **kwargs)
        return self.wait_for_run(dag_id, run["dag_run_id"], timeout)

    # Backfills -----------------------------------------------------------------------------------
    def create_backfill(
        self, dag_id: str, from_date: str, to_date: str, reprocess_behavior: str = "none", max_active_runs: int = 2
    ) -> dict:
        """``POST /backfills``: one run per schedule tick from ``from_date`` to ``to_date`` (inclusive)."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": max_active_runs,
        }
        return self.request("POST", "/backfills", json=body)

    def backfill(self, backfill_id: int) -> dict:
        return self.request("GET", f"/backfills/{backfill_id}")

    def backfills(self, dag_id: str) -> list[dict]:
        return self.request("GET", "/backfills", params={"dag_id": dag_id, "limit": 100, "order_by": "id"})["backfills"]

    def cancel_backfill(self, backfill_id: int) -> dict:
        return self.request("PUT", f"/backfills/{backfill_id}/cancel")

    def backfill_runs(self, dag_id: str, from_date: str, to_date: str) -> list[dict]:
        """The DAG's backfill runs whose logical date lies in [from_date, to_date]."""
        params = {
            "run_type": "backfill",
            "logical_date_gte": from_date,
            "logical_date_lte": to_date,
            "limit": 1000,
            "order_by": "logical_date",
        }
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def failure_logs(self, dag_id: str, run_id: str) -> str:
        """The logs of every failed task of a run, for assertion messages."""
        chunks = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] in {"failed", "upstream_failed"}:
                chunks.append(f"--- {ti['task_id']} ({ti['state']}) ---")
                if ti["state"] == "failed":
                    chunks.append(
                        self.task_log(
                            dag_id, run_id, ti["task_id"], max(ti.get("try_number") or 1, 1), ti.get("map_index", -1)
                        )[-4000:]
                    )
        return "\n".join(chunks)


def _transient(response) -> bool:
    """Whether a failed answer is worth repeating: a gateway/availability error, or the API
    server's "Database error" 500 (a deadlock with the scheduler), never a refusal of the request."""
    if response.status_code in (502, 503, 504):
        return True
    return response.status_code == 500 and "Database error" in (response.text or "")
