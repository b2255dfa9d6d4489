"""``make demo``: the monitoring loop, end to end, on a running stack.

1. **champion**: trains and deploys the first champion (``retrain_<model>``), unless one serves.
2. **normal days**: sends a few days of ordinary traffic through ``POST /predict``, with labels
   through ``POST /feedback``, then runs ``monitor_<model>`` for each day: no drift.
3. **drift day**: switches the generator to a drift scenario, sends a day of traffic and labels,
   runs monitoring: drift is found and a retrain is requested (an Asset event).
4. **retrain**: follows the ``retrain_<model>`` run that request starts, and checks that serving
   answers with the registry's champion afterwards.

Days are simulated: each request carries ``X-Modelops-Event-Time`` (honoured by a serving
service started with ``MODELOPS_SERVING_ACCEPT_EVENT_TIME=true``, as the local stack is), so the
traffic lands in the past days' capture partitions that a daily monitor run judges. The demo
is safe to run again: a day whose traffic is already captured is not sent twice, a day already
monitored is re-run (which never asks for a second retrain), and the retrain that day asked
for is shown again. ``tests/integration/test_monitor.py`` runs the same loop and asserts each step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from modelops import registry
from modelops.airflow_api import AirflowClient
from modelops.config import ModelConfig, get_model
from modelops.local import datagen
from modelops.monitoring import capture_format, storage
from modelops.store import Store

log = logging.getLogger(__name__)

EVENT_TIME_HEADER = "X-Modelops-Event-Time"
#: Traffic of one simulated day: requests spread over business hours, labels an hour later.
FIRST_REQUEST = dt.time(9)
LABEL_DELAY = dt.timedelta(hours=1)


class DemoError(RuntimeError):
    """A demo step did not reach the state it waits for; the message says which and where to look."""


@dataclass(frozen=True)
class DemoDays:
    normal: tuple[dt.date, ...]
    drift: dt.date

    @classmethod
    def ending(cls, drift: dt.date, normal_days: int = 2) -> DemoDays:
        """``normal_days`` ordinary days, then the drift day."""
        if normal_days < 1:
            raise ValueError(f"normal_days must be at least 1, got {normal_days}")
        return cls(tuple(drift - dt.timedelta(days=n) for n in range(normal_days, 0, -1)), drift)

    @classmethod
    def before(cls, today: dt.date, normal_days: int = 2) -> DemoDays:
        """The days just before ``today``: complete days, so their daily monitor runs may judge them."""
        return cls.ending(today - dt.timedelta(days=1), normal_days)


@dataclass
class DayTraffic:
    day: str
    scenario: str | None
    rows: int
    requests: int
    labels: int
    skipped: bool = False
    versions: list[str] = field(default_factory=list)


def traffic_frame(config: ModelConfig, day: dt.date, rows: int, scenario: str | None):
    """The day's records (features + label) from the model's generator; a fixed seed per day."""
    if not config.data.generator:
        raise DemoError(f"model '{config.name}' names no data generator: the demo cannot make traffic for it")
    # A different seed from the history batches: live traffic is new customers, not the training rows.
    return datagen.generate_batch(config.data.generator, day, rows, scenario=scenario, seed=101)


def json_records(frame, columns: list[str]) -> list[dict[str, Any]]:
    """DataFrame rows as JSON objects: NaN/None become null, numpy scalars plain Python."""
    out = []
    for row in frame[columns].to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                clean[key] = None
            elif hasattr(value, "item"):
                clean[key] = value.item()
            else:
                clean[key] = value
        out.append(clean)
    return out


def event_times(day: dt.date, requests_count: int) -> list[dt.datetime]:
    """One instant per request, spread evenly over 09:00-17:00 UTC of ``day``."""
    start = dt.datetime.combine(day, FIRST_REQUEST, dt.UTC)
    step = dt.timedelta(hours=8) / max(requests_count, 1)
    return [start + step * i for i in range(requests_count)]


def captured_rows(store: Store, model: str, day: dt.date) -> int:
    """Rows in the day's capture partition, from the Parquet footers (no data is read)."""
    import pyarrow.parquet as pq

    total = 0
    for item in store.list(capture_format.capture_partition(model, day)):
        if item.key.endswith(".parquet"):
            total += pq.ParquetFile(io.BytesIO(store.get_bytes(item.key))).metadata.num_rows
    return total


class Demo:
    """One model's monitoring loop against the services a running stack exposes."""

    def __init__(
        self,
        airflow: AirflowClient,
        store: Store,
        serving_url: str,
        serving_token: str | None,
        mlflow_url: str,
        model: str = "churn",
        out: Callable[[str], None] = print,
        timeout: float = 900.0,
    ):
        self.airflow = airflow
        self.store = store
        self.serving_url = serving_url.rstrip("/")
        self.serving_token = serving_token
        self.mlflow_url = mlflow_url.rstrip("/")
        self.config = get_model(model)
        self.model = model
        self.out = out
        self.timeout = timeout
        self.http = requests.Session()
        if serving_token:
            self.http.headers["Authorization"] = f"Bearer {serving_token}"

    @classmethod
    def from_env(cls, model: str = "churn", out: Callable[[str], None] = print) -> Demo:
        """Addresses from the environment `make env` prints (the local stack's defaults otherwise)."""
        from modelops import settings as _settings
        from modelops.local.stack_config import StackConfig

        stack = StackConfig.from_env()
        # A plain shell has none of the stack's addresses: default to the local stack's own.
        for key, value in stack.client_env().items():
            os.environ.setdefault(key, value)
        found = _settings.load()
        airflow = AirflowClient.from_env(
            url=stack.airflow_url, username=stack.admin_user, password=stack.admin_password
        )
        return cls(
            airflow,
            Store(found.bucket),
            found.serving_url,
            found.serving_token or stack.serving_token,
            found.mlflow_tracking_uri,
            model=model,
            out=out,
        )

    # Where to look -------------------------------------------------------------------------------
    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow.base_url}/dags/{dag_id}/runs/{requests.utils.quote(run_id, safe='')}"

    def model_url(self, version: str | None = None) -> str:
        base = f"{self.mlflow_url}/#/models/{self.model}"
        return f"{base}/versions/{version}" if version else base

    # Step 1 ----------------------------------------------------------------------------------------
    def ensure_champion(self, as_of: dt.date) -> dict[str, Any]:
        """The serving champion; trains the first one (``retrain_<model>`` as of ``as_of``) if none."""
        dag_id = f"retrain_{self.model}"
        self.airflow.wait_for_dag(dag_id)
        self.airflow.unpause(dag_id)
        champion = registry.version_for_alias(self.model, registry.CHAMPION)
        if champion is not None:
            self.out(f"[champion] {self.model} v{champion.version} already serves: {self.model_url(champion.version)}")
            return {"version": str(champion.version), "trained_now": False, "run_id": None}
        logical = dt.datetime.combine(as_of, dt.time(), dt.UTC)
        run = self._run_for_logical_date(dag_id, logical)
        self.out(f"[champion] training the first {self.model} champion: {self.run_url(dag_id, run['dag_run_id'])}")
        self._wait_for_success(dag_id, run["dag_run_id"])
        champion = registry.version_for_alias(self.model, registry.CHAMPION)
        if champion is None:
            raise DemoError(f"{dag_id} succeeded but promoted no champion: see its decision record (gate task)")
        self.out(
            f"[champion] {self.model} v{champion.version} promoted and deployed: {self.model_url(champion.version)}"
        )
        return {"version": str(champion.version), "trained_now": True, "run_id": run["dag_run_id"]}

    def _wait_for_success(self, dag_id: str, run_id: str) -> None:
        """Waits for the run to end; a failed run stops the demo with its failed tasks' logs."""
        finished = self.airflow.wait_for_run(dag_id, run_id, timeout=self.timeout, interval=2)
        if finished["state"] != "success":
            raise DemoError(
                f"{dag_id} run {run_id} ended {finished['state']}: {self.airflow.failure_logs(dag_id, run_id)[-3000:]}"
            )

    def _run_for_logical_date(self, dag_id: str, logical: dt.datetime) -> dict:
        """The run for ``logical``: an existing one (re-run of the demo) or a new one."""
        for run in self.airflow.runs(dag_id):
            if run.get("logical_date") and dt.datetime.fromisoformat(run["logical_date"]) == logical:
                return run
        return self.airflow.trigger(dag_id, logical_date=logical.isoformat())

    # Step 2/3: traffic -------------------------------------------------------------------------------
    def send_day(self, day: dt.date, rows: int, scenario: str | None, batch: int = 100) -> DayTraffic:
        """A day of traffic through /predict and its labels through /feedback (skipped if captured)."""
        already = captured_rows(self.store, self.model, day)
        if already >= rows:
            self.out(f"[traffic] {day}: {already} rows already captured, not sent again")
            return DayTraffic(str(day), scenario, already, 0, 0, skipped=True)
        frame = traffic_frame(self.config, day, rows, scenario)
        records = json_records(frame, self.config.feature_names)
        labels = [v.item() if hasattr(v, "item") else v for v in frame[self.config.target].tolist()]
        chunks = [range(start, min(start + batch, rows)) for start in range(0, rows, batch)]
        traffic = DayTraffic(str(day), scenario, rows, len(chunks), 0)
        for chunk, at in zip(chunks, event_times(day, len(chunks)), strict=True):
            answer = self._post(
                f"/models/{self.model}/predict", {"records": [records[i] for i in chunk]}, at.isoformat()
            )
            if answer["version"] not in traffic.versions:
                traffic.versions.append(answer["version"])
            feedback = [
                {"request_id": answer["request_id"], "record_index": j, "label": labels[i]} for j, i in enumerate(chunk)
            ]
            accepted = self._post(
                f"/models/{self.model}/feedback", {"labels": feedback}, (at + LABEL_DELAY).isoformat()
            )
            traffic.labels += int(accepted["accepted"])
        what = f"scenario '{scenario}'" if scenario else "normal"
        self.out(
            f"[traffic] {day}: {rows} rows ({what}) in {len(chunks)} requests to {self.serving_url}/models/"
            f"{self.model}/predict, {traffic.labels} labels to /feedback; served by v{', v'.join(traffic.versions)}"
        )
        return traffic

    def _post(self, path: str, body: dict, event_time: str) -> dict:
        response = self.http.post(
            f"{self.serving_url}{path}", json=body, headers={EVENT_TIME_HEADER: event_time}, timeout=60
        )
        if response.status_code >= 400:
            raise DemoError(f"POST {path} answered {response.status_code}: {response.text[:1000]}")
        return response.json()

    def wait_for_capture(self, day: dt.date, rows: int) -> int:
        """Polls the day's capture partition until every row sent is in S3 (capture is batched)."""
        deadline = time.monotonic() + self.timeout
        while (found := captured_rows(self.store, self.model, day)) < rows:
            if time.monotonic() > deadline:
                raise DemoError(
                    f"only {found} of {rows} rows of {day} reached s3://{self.store.bucket}/"
                    f"{capture_format.capture_partition(self.model, day)} after {self.timeout:.0f} s: "
                    f"see the serving log and GET {self.serving_url}/metrics (modelops_capture_*)"
                )
            time.sleep(1)
        return found

    # Monitoring ---------------------------------------------------------------------------------------
    def monitor_day(self, day: dt.date) -> dict[str, Any]:
        """Runs ``monitor_<model>`` for ``day`` (a re-run if the demo ran before) and returns its summary."""
        dag_id = f"monitor_{self.model}"
        self.airflow.wait_for_dag(dag_id)
        self.airflow.unpause(dag_id)
        logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        run = self._run_for_logical_date(dag_id, logical)
        if run["state"] in {"success", "failed"}:
            self.airflow.clear_run(dag_id, run["dag_run_id"])
        self._wait_for_success(dag_id, run["dag_run_id"])
        summary = self.airflow.xcom(dag_id, run["dag_run_id"], "build_report")
        decision = self.airflow.xcom(dag_id, run["dag_run_id"], "decide")
        keys = storage.report_keys(self.model, day)
        drifted = summary.get("drifted_features") or []
        self.out(
            f"[monitor] {day}: status {summary['status']}"
            + (f", drifted: {', '.join(drifted)}" if drifted else "")
            + f"; decision {decision['action']}"
            + (" (already requested for this day)" if decision.get("already_requested") else "")
            + f"\n          run: {self.run_url(dag_id, run['dag_run_id'])}"
            + f"\n          report: s3://{self.store.bucket}/{keys['report_html']}"
            + f"\n          open it: {storage.presigned_url(self.store, keys['report_html'])}"
        )
        return {"run_id": run["dag_run_id"], "summary": summary, "decision": decision}

    # Step 4 ----------------------------------------------------------------------------------------------
    def follow_retrain(self, known_before: set[str], decision: dict[str, Any]) -> dict[str, Any]:
        """The retrain run the drift day's request started; waits for it and for serving to follow."""
        dag_id = f"retrain_{self.model}"
        deadline = time.monotonic() + self.timeout
        while True:
            asset_runs = [r for r in self.airflow.runs(dag_id) if r["run_type"] == "asset_triggered"]
            new = [r for r in asset_runs if r["dag_run_id"] not in known_before]
            if new:
                run = new[-1]
                break
            if decision.get("already_requested") and asset_runs:
                run = asset_runs[0]  # newest first: the run this day's earlier request started
                break
            if time.monotonic() > deadline:
                raise DemoError(
                    f"no asset-triggered {dag_id} run appeared within {self.timeout:.0f} s of the retrain request; "
                    f"is {dag_id} paused? See Assets in the Airflow UI"
                )
            time.sleep(2)
        self.out(f"[retrain] {dag_id} started by the retrain request: {self.run_url(dag_id, run['dag_run_id'])}")
        self._wait_for_success(dag_id, run["dag_run_id"])
        gate = self.airflow.xcom(dag_id, run["dag_run_id"], "gate")
        champion = registry.version_for_alias(self.model, registry.CHAMPION)
        served = self.serving_version()
        if champion is None or served != str(champion.version):
            raise DemoError(
                f"after {dag_id} the registry champion is {champion and champion.version} but serving answers "
                f"with v{served}: see the run's deploy task"
            )
        promoted = bool(gate.get("promote")) if isinstance(gate, dict) else None
        self.out(
            f"[retrain] gate: {'promoted' if promoted else 'kept the champion'}"
            + (f" ({gate['reasons'][0]})" if isinstance(gate, dict) and gate.get("reasons") else "")
            + f"\n          serving now answers with {self.model} v{served}: {self.model_url(served)}"
        )
        return {"run_id": run["dag_run_id"], "promoted": promoted, "champion": str(champion.version), "served": served}

    def serving_version(self) -> str | None:
        response = self.http.get(f"{self.serving_url}/models", timeout=30)
        response.raise_for_status()
        for entry in response.json().get("models", []):
            if entry.get("name") == self.model:
                version = entry.get("version")
                return None if version is None else str(version)
        return None

    # The loop -------------------------------------------------------------------------------------------
    def run(self, days: DemoDays, scenario: str, rows: int = 1500, as_of: dt.date | None = None) -> dict[str, Any]:
        if scenario not in datagen.SCENARIOS.get(self.config.data.generator or "", {}):
            known = sorted(datagen.SCENARIOS.get(self.config.data.generator or "", {}))
            raise DemoError(f"unknown scenario '{scenario}' for model '{self.model}'; known: {known}")
        result: dict[str, Any] = {
            "model": self.model,
            "days": {"normal": [str(d) for d in days.normal], "drift": str(days.drift)},
        }
        result["champion"] = self.ensure_champion(as_of or days.drift + dt.timedelta(days=1))
        first = result["champion"]["version"]

        result["normal"] = []
        for day in days.normal:
            traffic = self.send_day(day, rows, None)
            self.wait_for_capture(day, rows)
            result["normal"].append({"traffic": traffic.__dict__, **self.monitor_day(day)})

        known_before = {r["dag_run_id"] for r in self.airflow.runs(f"retrain_{self.model}")}
        traffic = self.send_day(days.drift, rows, scenario)
        self.wait_for_capture(days.drift, rows)
        result["drift"] = {"traffic": traffic.__dict__, **self.monitor_day(days.drift)}
        decision = result["drift"]["decision"]
        if decision["action"] != "retrain":
            raise DemoError(
                f"monitoring of {days.drift} did not ask for a retrain: {decision['reasons']} "
                f"(suppressed_by={decision.get('suppressed_by')})"
            )
        result["retrain"] = self.follow_retrain(known_before, decision)
        self.out(
            f"[done] {self.model}: v{first} served the normal days; drift on {days.drift} asked for a retrain; "
            f"v{result['retrain']['served']} serves now. MLflow: {self.model_url()}"
        )
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.local.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="churn")
    parser.add_argument("--scenario", default="covariate_shift", help="drift scenario of the model's generator")
    parser.add_argument("--rows", type=int, default=1500, help="rows of traffic per day")
    parser.add_argument("--normal-days", type=int, default=2)
    parser.add_argument("--drift-day", type=dt.date.fromisoformat, default=None, help="default: yesterday (UTC)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    today = dt.datetime.now(dt.UTC).date()
    drift_day = args.drift_day or today - dt.timedelta(days=1)
    if drift_day >= today:
        parser.error(f"--drift-day must be a complete day before today ({today}), got {drift_day}")
    try:
        Demo.from_env(args.model).run(
            DemoDays.ending(drift_day, args.normal_days), args.scenario, args.rows, as_of=today
        )
    except (DemoError, ValueError) as exc:
        print(f"demo stopped: {exc}", file=sys.stderr)
        return 1
    except requests.ConnectionError as exc:
        print(f"demo stopped: a service is not reachable ({exc}); is the stack up? Run `make up`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
