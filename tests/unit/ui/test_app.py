"""The Models pages' web layer: who may see and do what, what the pages show, what actions trigger.

Auth, data and triggers are swapped through ``app.dependency_overrides`` (canned data in the shapes
``modelops.ui`` documents); the tests marked "real auth" go through Airflow's own ``get_user`` and
simple auth manager instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from modelops import dagkit
from modelops.ui import actions, auth
from modelops.ui.app import app, get_reads, get_trigger

REPO = Path(__file__).resolve().parents[3]
EVIL = "<script>alert('x')</script>"

CHAMPION = {"version": 3, "since": "2026-11-20T08:00:00+00:00", "metric": 0.912}
OVERVIEW = {
    "models": [
        {
            "model": "churn",
            "problem_type": "binary_classification",
            "primary_metric": "roc_auc",
            "champion": CHAMPION,
            "last_retrain": {
                "run_id": "manual__2026-12-01T00:00:00+00:00",
                "at": "2026-12-01T00:10:00+00:00",
                "outcome": "kept_champion",
                "reason": "roc_auc 0.905 < champion 0.912",
            },
            "monitoring": {"day": "2026-12-02", "status": "drift"},
            "dead_letters": 2,
            "quarantined_7d": 1,
        },
        {
            "model": "delivery_time",
            "problem_type": "regression",
            "primary_metric": "rmse",
            "champion": None,
            "last_retrain": None,
            "monitoring": None,
            "dead_letters": 0,
            "quarantined_7d": 0,
        },
    ],
    "invalid": [{"file": "include/models/broken.yaml", "error": "target: field required"}],
}
RUN_ID = "manual__2026-12-01T00:00:00+00:00"
MODEL_PAGE = {
    "model": "churn",
    "problem_type": "binary_classification",
    "primary_metric": "roc_auc",
    "champion": CHAMPION,
    "timeline": [
        {
            "run_id": RUN_ID,
            "at": "2026-12-01T00:10:00+00:00",
            "outcome": "kept_champion",
            "reasons": ["roc_auc 0.905 < champion 0.912", EVIL],
            "candidate": {"name": "lightgbm", "metric": 0.905, "version": 4},
            "champion": {"version": 3, "metric": 0.912},
            "links": {
                "airflow_run": f"/dags/retrain_churn/runs/{quote(RUN_ID, safe='')}",
                "mlflow_run": "http://mlflow.local/#/experiments/1/runs/abc",
                "mlflow_version": "http://mlflow.local/#/models/churn/versions/4",
                "data_docs": f"models/churn/runs/{quote(RUN_ID, safe='')}/data-docs",
                "evaluation": None,
            },
        }
    ],
    "aliases": [
        {
            "at": "2026-11-25T09:00:00+00:00",
            "alias": "champion",
            "from_version": 3,
            "to_version": 2,
            "actor": "alice",
            "reason": "bad calibration",
            "run_id": "manual__2026-11-25T09:00:00+00:00",
            "rollback": True,
        },
        {
            "at": "2026-11-20T08:00:00+00:00",
            "alias": "champion",
            "from_version": 2,
            "to_version": 3,
            "actor": "retrain_churn",
            "reason": "promoted",
            "run_id": "scheduled__2026-11-20",
            "rollback": False,
        },
    ],
    "metric_by_version": [{"version": 2, "value": 0.9, "at": "2026-11-01"}, {"version": 3, "value": 0.912, "at": "x"}],
    "days": [
        {"day": "2026-12-01", "status": "ok", "prediction_drift": 0.1, "performance": 0.9, "rows": 1200},
        {"day": "2026-12-02", "status": "drift", "prediction_drift": 0.4, "performance": None, "rows": 900},
    ],
    "heatmap": {
        "features": ["tenure", "plan"],
        "days": ["2026-12-01", "2026-12-02"],
        "cells": [[0.2, 1.4], [None, 0.5]],
    },
    "dead_letters": [{"message_id": "m-1", "at": "2026-12-02T01:00:00+00:00", "reason": "bad json", "key": "raw/x"}],
    "quarantined": [
        {"key": "raw/churn/a.csv", "day": "2026-12-02", "reason": "3 expectations failed", "report": "r/a"}
    ],
}


class FakeUser:
    def __init__(self, name: str = "alice"):
        self.name = name

    def get_name(self) -> str:
        return self.name


class FakeAuthorizer:
    """Allows what ``allowed`` lists as ``(method, dag_id)``, or everything with ``"all"``."""

    def __init__(self, allowed):
        self.allowed_set = allowed

    def allowed(self, user, method, dag_id) -> bool:
        return self.allowed_set == "all" or (method, dag_id) in self.allowed_set


class FakeReads:
    def __init__(self):
        self.calls = []

    def model_names(self):
        return ["churn", "delivery_time"]

    def overview(self):
        return OVERVIEW

    def model_page(self, name, mlflow_ui):
        self.calls.append(("model_page", name, mlflow_ui))
        return {**MODEL_PAGE, "model": name}

    def report(self, model, day, kind):
        self.calls.append(("report", model, day, kind))
        if str(day) == "2026-01-01":
            raise KeyError("monitoring/churn/dt=2026-01-01/report.html")
        return (b"<html>report</html>", "text/html") if kind == "html" else (b'{"ok": true}', "application/json")

    def artifact(self, model, run_id, kind):
        self.calls.append(("artifact", model, run_id, kind))
        return b"{}", "application/json"

    def validation_report(self, model, key):
        if not key.startswith("r/"):
            raise ValueError(f"{key} is not a validation report of {model}")
        return b"<html>validation</html>", "text/html"


class FakeTrigger:
    def __init__(self):
        self.calls = []

    def __call__(self, dag_id, conf, user):
        self.calls.append((dag_id, conf, user.get_name()))
        return "manual__2026-12-03T10:00:00+00:00"


@pytest.fixture
def fakes():
    reads, trigger = FakeReads(), FakeTrigger()
    app.dependency_overrides[get_reads] = lambda: reads
    app.dependency_overrides[get_trigger] = lambda: trigger
    yield reads, trigger
    app.dependency_overrides.clear()


@pytest.fixture
def as_user(fakes):
    """``as_user(allowed)`` -> a client signed in as alice holding those permissions."""

    def client(allowed="all", user=None):
        app.dependency_overrides[auth.current_user] = lambda: user or FakeUser()
        app.dependency_overrides[auth.authorizer] = lambda: FakeAuthorizer(allowed)
        return TestClient(app, follow_redirects=False)

    return client


@pytest.fixture
def trigger(fakes):
    return fakes[1]


def soup(response) -> BeautifulSoup:
    assert response.status_code == 200, response.text
    return BeautifulSoup(response.text, "html.parser")


READ_CHURN = {("GET", "retrain_churn")}


# --- real auth: Airflow's get_user and simple auth manager -----------------------------------------


@pytest.fixture
def airflow_auth(fakes, monkeypatch):
    """Airflow's simple auth manager as the API server would hold it (no database needed)."""
    from airflow.api_fastapi import app as airflow_app

    manager = airflow_app.create_auth_manager()
    yield manager
    airflow_app._AuthManagerState.instance = None


def test_real_auth_refuses_an_api_request_without_credentials_with_401(fakes):
    response = TestClient(app).get("/api/models")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_real_auth_sends_a_page_request_without_credentials_to_airflows_login(airflow_auth):
    response = TestClient(app, follow_redirects=False).get("/models/churn")
    assert response.status_code == 303
    assert response.headers["location"] == airflow_auth.get_url_login(next_url="http://testserver/models/churn")
    assert response.headers["location"].startswith("/auth/login?next=")


def test_real_auth_refuses_a_forged_token_and_an_anonymous_action(airflow_auth, trigger):
    client = TestClient(app, follow_redirects=False)
    forged = client.get("/api/models", headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 403 and "Invalid JWT" in forged.json()["detail"]
    anonymous = client.post("/models/churn/rollback", data={"reason": "bad", "confirm": "yes"})
    assert anonymous.status_code == 401 and "/auth/login" in anonymous.text
    assert trigger.calls == []


def test_real_permissions_let_a_viewer_read_but_not_roll_back(airflow_auth, trigger, monkeypatch):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti: False))  # no database here
    token = airflow_auth.generate_jwt(SimpleAuthManagerUser(username="vera", role="viewer"))
    client = TestClient(app, follow_redirects=False, cookies={"_token": token})
    assert client.get("/api/models").json()["models"][0]["model"] == "churn"
    refused = client.post("/models/churn/rollback", data={"reason": "bad calibration", "confirm": "yes"})
    assert refused.status_code == 403
    assert "vera" in refused.text and "rollback_churn" in refused.text
    assert trigger.calls == []


# --- pages ---------------------------------------------------------------------------------------


def test_the_models_table_shows_each_model_with_its_champion(as_user):
    page = soup(as_user().get("/models"))
    rows = page.select("#models tr[data-model]")
    assert [row["data-model"] for row in rows] == ["churn", "delivery_time"]
    churn = page.select_one('#models tr[data-model="churn"]')
    assert churn.select_one(".champion").text.strip().startswith("3 since 2026-11-20 08:00")
    assert "kept_champion" in churn.text and "0.912" in churn.text and "drift" in churn.text
    assert churn.select_one(".dead-letters").text == "2" and churn.select_one(".quarantined").text == "1"
    assert "none yet" in page.select_one('tr[data-model="delivery_time"] .champion').text
    assert "target: field required" in page.select_one("#invalid").text


def test_the_models_table_and_its_json_list_only_models_the_user_may_read(as_user):
    client = as_user(READ_CHURN)
    assert [r["data-model"] for r in soup(client.get("/models")).select("#models tr[data-model]")] == ["churn"]
    assert [m["model"] for m in client.get("/api/models").json()["models"]] == ["churn"]


def test_pages_link_relatively_and_send_airflow_links_to_the_top_window(as_user):
    page = soup(as_user().get("/models/churn"))
    hrefs = [a["href"] for a in page.select("a[href]")] + [f["action"] for f in page.select("form")]
    assert hrefs and not [h for h in hrefs if h.startswith("/")]
    retrain = page.select_one("#retrain")
    assert retrain["href"] == "../../dags/retrain_churn" and retrain["target"] == "_top"
    run = page.select_one(f'#timeline tr[data-run-id="{RUN_ID}"] a[target="_top"]')
    assert run["href"] == "../../dags/retrain_churn/runs/" + quote(RUN_ID, safe="")
    assert page.select_one('link[rel="stylesheet"]')["href"] == "../static/modelops.css"


def test_the_model_page_shows_gate_reasons_heat_map_and_alias_history(as_user, fakes, monkeypatch):
    monkeypatch.setenv("MODELOPS_MLFLOW_UI_URL", "http://mlflow.example")
    page = soup(as_user().get("/models/churn"))
    row = page.select_one(f'#timeline tr[data-run-id="{RUN_ID}"]')
    assert "roc_auc 0.905 < champion 0.912" in row.select_one(".reasons").text
    assert "0.905" in row.text and "0.912" in row.text
    assert [a.text for a in row.select("a")] == ["Airflow run", "MLflow run", "MLflow version", "Data Docs"]
    assert row.select_one("a[href$=data-docs]")["href"] == f"../models/churn/runs/{quote(RUN_ID, safe='')}/data-docs"
    cells = page.select("#drift-heatmap rect.cell")
    assert len(cells) == 4 and cells[1]["title"] == "tenure 2026-12-02: 1.40 (drifted)"
    history = page.select("#alias-history tbody tr")
    assert [tr["data-rollback"] for tr in history] == ["true", "false"]
    assert "rollback" in history[0].text and "bad calibration" in history[0].text
    assert page.select_one("form#rollback") is not None
    assert fakes[0].calls == [("model_page", "churn", "http://mlflow.example")]


def test_a_script_in_a_gate_reason_is_shown_as_text(as_user):
    response = as_user().get("/models/churn")
    assert EVIL not in response.text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_a_reader_without_trigger_permission_sees_no_action_forms(as_user):
    page = soup(as_user(READ_CHURN).get("/models/churn"))
    assert page.select_one("form#rollback") is None and page.select_one("#rollback-refused")
    assert page.select("form.redrive") == []


def test_an_unknown_model_is_404_naming_it(as_user):
    client = as_user()
    page = client.get("/models/fraud")
    assert page.status_code == 404
    assert "unknown model 'fraud'" in BeautifulSoup(page.text, "html.parser").select_one("#error").text
    assert client.get("/api/models/fraud").status_code == 404
    assert "fraud" in client.get("/api/models/fraud").json()["detail"]


def test_a_reader_of_another_model_gets_403_naming_the_dag(as_user):
    response = as_user(READ_CHURN).get("/api/models/delivery_time")
    assert response.status_code == 403
    assert "GET on DAG runs of retrain_delivery_time" in response.json()["detail"]


# --- served reports ------------------------------------------------------------------------------


def test_reports_are_served_through_the_plugin_with_their_content_type(as_user, fakes):
    client = as_user()
    html = client.get("/models/churn/reports/2026-12-02.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text == "<html>report</html>" and "sandbox" in html.headers["content-security-policy"]
    as_json = client.get("/models/churn/reports/2026-12-02.json")
    assert as_json.headers["content-type"] == "application/json" and as_json.json() == {"ok": True}
    assert client.get(f"/models/churn/runs/{quote(RUN_ID, safe='')}/evaluation").status_code == 200
    assert client.get(f"/models/churn/runs/{quote(RUN_ID, safe='')}/data-docs").status_code == 200
    assert fakes[0].calls[-2:] == [
        ("artifact", "churn", RUN_ID, "evaluation"),
        ("artifact", "churn", RUN_ID, "data-docs"),
    ]


def test_a_bad_day_is_400_naming_it_and_a_missing_report_404(as_user):
    client = as_user()
    bad = client.get("/models/churn/reports/2026-13-01.html")
    assert bad.status_code == 400 and "2026-13-01" in bad.text
    missing = client.get("/models/churn/reports/2026-01-01.json")
    assert missing.status_code == 404 and "report.html" in missing.text


def test_a_refused_validation_key_is_400(as_user):
    client = as_user()
    assert client.get("/models/churn/validation", params={"key": "r/a"}).text == "<html>validation</html>"
    refused = client.get("/models/churn/validation", params={"key": "../../secrets"})
    assert refused.status_code == 400 and "../../secrets" in refused.text


# --- actions -------------------------------------------------------------------------------------

ROLLBACK = {"reason": "calibration is off since v3", "confirm": "yes"}


def test_a_user_without_trigger_permission_gets_403_and_nothing_is_triggered(as_user, trigger):
    response = as_user(READ_CHURN).post("/models/churn/rollback", data=ROLLBACK)
    assert response.status_code == 403
    assert "may not trigger runs of DAG rollback_churn" in response.text
    assert trigger.calls == []


def test_rollback_triggers_the_dag_as_the_user_and_comes_back_with_the_run_id(as_user, trigger):
    client = as_user(READ_CHURN | {("POST", "rollback_churn")})
    response = client.post("/models/churn/rollback", data={**ROLLBACK, "version": "2"})
    assert trigger.calls == [("rollback_churn", {"version": "2", "reason": ROLLBACK["reason"]}, "alice")]
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("../churn?") and "run_id=manual__2026-12-03T10%3A00%3A00%2B00%3A00" in location
    flash = soup(client.get("/models/churn?" + location.split("?", 1)[1])).select_one(".flash")
    assert "Triggered rollback_churn: run manual__2026-12-03T10:00:00+00:00" in flash.text


def test_rollback_defaults_to_the_previous_champion(as_user, trigger):
    as_user().post("/models/churn/rollback", data=ROLLBACK)
    assert trigger.calls[0][1] == {"version": "previous-champion", "reason": ROLLBACK["reason"]}


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"reason": "no", "confirm": "yes"}, "reason"),
        ({"reason": "x" * 1001, "confirm": "yes"}, "reason"),
        ({"reason": "a good reason"}, "confirm"),
        ({**ROLLBACK, "version": "v2; drop"}, "version"),
    ],
)
def test_a_bad_rollback_form_is_400_naming_the_field(as_user, trigger, form, named):
    response = as_user().post("/models/churn/rollback", data=form)
    assert response.status_code == 400 and named in response.text
    assert trigger.calls == []


def test_redrive_triggers_one_dead_letter(as_user, trigger):
    response = as_user().post("/models/churn/dead-letters/m-1/redrive")
    assert trigger.calls == [("redrive_churn", {"message_ids": ["m-1"], "all": False}, "alice")]
    assert response.status_code == 303 and response.headers["location"].startswith("../../../churn?triggered=")


def test_redrive_refuses_a_bad_message_id(as_user, trigger):
    response = as_user().post("/models/churn/dead-letters/-bad_id/redrive")
    assert response.status_code == 400 and "-bad_id" in response.text and trigger.calls == []


# --- the DAG tab ---------------------------------------------------------------------------------


def test_the_dag_tab_of_a_model_dag_redirects_to_its_model_page(as_user):
    client = as_user()
    for dag_id in ("retrain_churn", "dead_letters_delivery_time"):
        response = client.get(f"/dags/{dag_id}")
        assert response.status_code == 303
        assert response.headers["location"] == "../models/" + dag_id.split("_", 1)[1].removeprefix("letters_")


def test_the_dag_tab_of_another_dag_explains(as_user):
    page = soup(as_user().get("/dags/example_bash_operator"))
    assert "not one of a declared model" in page.select_one("#not-a-model").text


# --- the DAG kinds the tab recognises are the ones dags/ builds ---------------------------------------


def test_the_dag_kinds_are_the_ones_the_dag_files_build():
    built = {
        m for path in (REPO / "dags").glob("*.py") for m in re.findall(r'globals\(\)\[f"(\w+)_\{', path.read_text())
    }
    assert built == set(dagkit.DAG_KINDS)


# --- inside Airflow: mounted under /modelops, declared by the plugin --------------------------------


def test_mounted_under_modelops_links_and_redirects_stay_inside_the_prefix(as_user):
    from fastapi import FastAPI

    as_user()  # overrides in place
    parent = FastAPI()
    parent.mount("/modelops", app)
    client = TestClient(parent, follow_redirects=False)
    page = soup(client.get("/modelops/models/churn"))
    assert page.select_one('link[rel="stylesheet"]')["href"] == "../static/modelops.css"  # -> /modelops/static/
    assert page.select_one("#retrain")["href"] == "../../dags/retrain_churn"  # -> /dags/retrain_churn
    assert client.get("/modelops/dags/retrain_churn").headers["location"] == "../models/churn"
    icon = client.get("/modelops/static/models.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/modelops/static/modelops.css").headers["content-type"].startswith("text/css")


def test_the_plugin_declares_the_app_and_views_airflow_accepts():
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    from modelops_ui import ModelopsUi

    assert ModelopsUi.fastapi_apps == [{"app": app, "url_prefix": "/modelops", "name": "modelops models"}]
    views = {view["url_route"]: ExternalViewResponse(**view) for view in ModelopsUi.external_views}
    assert views["models"].destination == "nav" and views["models"].href == "modelops/models"
    assert views["model"].destination == "dag" and views["model"].href == "modelops/dags/{DAG_ID}"
    icon = views["models"].icon
    assert not icon.startswith("/") and (REPO / "include/modelops/ui" / icon.removeprefix("modelops/")).is_file()


def test_importing_the_app_loads_no_heavy_library():
    code = (
        "import sys, modelops.ui.app\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'pandas', 'sklearn', 'mlflow', 'boto3'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_default_trigger_runs_the_dag_in_airflow_as_the_user_from_the_ui(monkeypatch):
    from airflow.api.common import trigger_dag as module
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    seen = {}

    class Run:
        run_id = "manual__2026-12-03T10:00:00+00:00"

    def fake_trigger_dag(dag_id, **kwargs):
        seen.update(kwargs, dag_id=dag_id)
        return Run()

    monkeypatch.setattr(module, "trigger_dag", fake_trigger_dag)
    conf = {"version": "2", "reason": "bad calibration"}
    assert actions.trigger_in_airflow("rollback_churn", conf, FakeUser("alice")) == Run.run_id
    assert seen == {
        "dag_id": "rollback_churn",
        "triggered_by": DagRunTriggeredByType.UI,
        "triggering_user_name": "alice",
        "conf": conf,
    }

    def not_found(dag_id, **kwargs):
        raise DagNotFound(f"Dag id {dag_id} not found in DagModel")

    monkeypatch.setattr(module, "trigger_dag", not_found)
    with pytest.raises(actions.TriggerError, match="rollback_churn is not in Airflow") as refused:
        actions.trigger_in_airflow("rollback_churn", conf, FakeUser())
    assert refused.value.status_code == 404


def test_a_run_airflow_refuses_is_answered_with_its_reason(as_user, fakes):
    def refuse(dag_id, conf, user):
        raise actions.TriggerError(f"a run of {dag_id} with this id already exists; try again", 409)

    app.dependency_overrides[get_trigger] = lambda: refuse
    response = as_user().post("/models/churn/rollback", data=ROLLBACK)
    assert response.status_code == 409 and "rollback_churn" in response.text
