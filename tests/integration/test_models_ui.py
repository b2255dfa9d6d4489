"""The Models pages (plugins/modelops_ui.py) on the running stack, as a person uses them.

Through Airflow's REST auth: an anonymous request is refused, a viewer reads but cannot act, an
admin acts. In a real browser (Debian's chromium through Playwright): log in to Airflow, open
Models from the navigation, see churn's champion, open its page, see a refused run's gate reasons
and the drift heat map, open a day's report, roll back and see the alias history change.
Screenshots go to MODELOPS_SCREENSHOTS (docs/ui/ refreshes the README's), else a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import requests
from tests.support.polling import wait_until

from modelops import registry
from modelops.local import demo

MODEL = "churn"
MONITORED_DAYS = (dt.date(2026, 11, 12), dt.date(2026, 11, 13))
CHROMIUM = os.environ.get("MODELOPS_CHROMIUM", "/usr/bin/chromium")


def _token(stack, user: str, password: str) -> str:
    answer = requests.post(
        f"{stack.config.airflow_url}/auth/token", json={"username": user, "password": password}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


@pytest.fixture(scope="module")
def ui_data(first_promotion, stack, airflow, store, today):
    """What the pages show: a second champion (so there is one to roll back to), a run the gate
    refused, two monitored days."""
    dag = f"retrain_{MODEL}"
    runs = {}
    # The second champion is the first one's family on the same data: force_promote skips only the
    # primary-metric comparison, and the gate's other checks (slices, latency, size) pass for an equal model.
    family = registry.version_for_alias(MODEL, registry.CHAMPION).tags["candidate"]
    plans = [
        (1, "promoted", {"candidates": [family], "force_promote": True}),
        (2, "refused", {"candidates": ["linear"], "min_primary": 0.999}),
    ]
    for hour, name, conf in plans:
        as_of = dt.datetime.combine(today, dt.time(hour), dt.UTC)
        run = airflow.trigger(dag, conf=conf, logical_date=as_of.isoformat())
        finished = airflow.wait_for_run(dag, run["dag_run_id"], timeout=900)
        assert finished["state"] == "success", airflow.failure_logs(dag, run["dag_run_id"])
        runs[name] = run["dag_run_id"]
    assert airflow.xcom(dag, runs["refused"], "gate")["promote"] is False
    gate = airflow.xcom(dag, runs["promoted"], "gate")
    assert gate["promote"] is True, gate["reasons"]
    assert registry.version_for_alias(MODEL, registry.PREVIOUS) is not None, registry.alias_history(MODEL)
    cfg = stack.config
    loop = demo.Demo(airflow, store, cfg.serving_url, cfg.serving_token, cfg.mlflow_url, MODEL, out=lambda _: None)
    for day in MONITORED_DAYS:
        loop.send_day(day, 400, None)
        loop.wait_for_capture(day, 400)  # capture is batched: monitor the day once all of it is in S3
        assert loop.monitor_day(day)["summary"]["status"] != "no_data"
    return {"refused_run": runs["refused"], "promoted_run": runs["promoted"]}


def test_every_route_needs_airflow_auth_and_actions_need_trigger_permission(ui_data, stack):
    base = f"{stack.config.airflow_url}/modelops"
    assert requests.get(f"{base}/api/models", timeout=30).status_code == 401
    assert requests.get(f"{base}/api/models", headers={"Authorization": "Bearer nonsense"}, timeout=30).status_code in (
        401,
        403,
    )
    viewer = {"Authorization": f"Bearer {_token(stack, stack.config.viewer_user, stack.config.viewer_password)}"}
    models = requests.get(f"{base}/api/models", headers=viewer, timeout=30)
    assert models.status_code == 200, models.text
    assert MODEL in {row["model"] for row in models.json()["models"]}
    before = len(registry.alias_history(MODEL))
    refused = requests.post(
        f"{base}/models/{MODEL}/rollback",
        data={"reason": "a viewer tries", "confirm": "yes"},
        headers=viewer,
        allow_redirects=False,
        timeout=30,
    )
    assert refused.status_code == 403 and f"rollback_{MODEL}" in refused.text
    assert len(registry.alias_history(MODEL)) == before


@pytest.fixture(scope="module")
def browser_page(stack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MODELOPS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_person_logs_in_reads_the_models_and_rolls_back(ui_data, stack, airflow, browser_page, screenshots):
    page, cfg = browser_page, stack.config
    champion = str(registry.version_for_alias(MODEL, registry.CHAMPION).version)

    page.goto(cfg.airflow_url)
    page.get_by_label("Username").fill(cfg.admin_user)
    page.get_by_label("Password").fill(cfg.admin_password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Models").first.click()
    frame = page.frame_locator("iframe").first
    row = frame.locator(f"#models tr[data-model='{MODEL}']")
    assert row.locator(".champion").inner_text().strip().startswith(champion)
    page.screenshot(path=str(screenshots / "models.png"), full_page=True)

    page.goto(f"{cfg.airflow_url}/modelops/models/{MODEL}")
    refused = page.locator(f"#timeline [data-run-id='{ui_data['refused_run']}']")
    assert "primary_floor" in refused.locator(".reasons").inner_text()  # min_primary 0.999 is not met
    cells = page.locator("#drift-heatmap rect[data-feature]")
    assert cells.count() >= len(MONITORED_DAYS)
    page.screenshot(path=str(screenshots / "model.png"), full_page=True)

    with page.expect_navigation():
        page.locator(f"a[href*='reports/{MONITORED_DAYS[-1]}']").first.click()
    assert str(MONITORED_DAYS[-1]) in page.content()
    page.screenshot(path=str(screenshots / "report.png"), full_page=True)

    airflow.unpause(f"rollback_{MODEL}")
    before = registry.alias_history(MODEL)
    page.goto(f"{cfg.airflow_url}/modelops/models/{MODEL}")
    form = page.locator("#rollback")
    form.locator("[name=reason]").fill("browser test: back to the previous champion")
    form.locator("[name=confirm]").check()
    with page.expect_navigation():
        form.locator("[type=submit]").click()
    wait_until(lambda: len(registry.alias_history(MODEL)) > len(before), "the rollback to move the alias", 300)
    page.reload()
    history = page.locator("#alias-history")
    assert "browser test: back to the previous champion" in history.inner_text()
    page.screenshot(path=str(screenshots / "rollback.png"), full_page=True)
