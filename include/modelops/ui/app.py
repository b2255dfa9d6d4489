"""The Models pages' FastAPI app, mounted by ``plugins/modelops_ui.py`` under ``/modelops``.

HTML pages at the top, the same data as JSON under ``/api``. Every route depends on Airflow's
authentication (``auth.access``) and checks the caller's permission on the DAG behind what it
shows or triggers. Data comes only from ``modelops.ui.reads``, through :class:`Reads`, imported
on the first request so the plugin imports quickly; actions trigger DAGs through an injectable
``trigger(dag_id, conf, user) -> run_id``. Routes are plain ``def``: FastAPI runs them in its
thread pool, so blocking S3, MLflow and database reads never stall the API server's event loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelops import dagkit
from modelops.settings import env_str
from modelops.ui import actions, auth, pages, pages_model
from modelops.ui.pages import Links

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Our own pages load nothing from elsewhere; Airflow's UI may frame them.
PAGE_CSP = "default-src 'self'; img-src 'self' data:; script-src 'self'; frame-ancestors 'self'; form-action 'self'"
#: Stored reports are rendered from data: they run in an opaque origin, away from Airflow's session.
ARTIFACT_CSP = "sandbox allow-scripts allow-popups"

Trigger = Callable[[str, dict, Any], str]


class Reads:
    """The pages' data source: ``modelops.ui.reads`` (imported on first use) and the declarations.

    Runs come from this API server's own metadata database (``reads.airflow_runs``)."""

    def model_names(self) -> list[str]:
        from modelops.config import load_models_and_errors

        models, _ = load_models_and_errors()
        return sorted(model.name for model in models)

    def overview(self) -> dict:
        from modelops.ui import reads

        return reads.overview(runs=reads.airflow_runs)

    def model_page(self, name: str, mlflow_ui: str | None) -> dict:
        from modelops.ui import reads

        return reads.model_page(name, runs=reads.airflow_runs, mlflow_ui=mlflow_ui)

    def report(self, model: str, day: dt.date, kind: str) -> tuple[bytes, str]:
        from modelops.ui import reads

        return reads.report(model, day, kind)

    def artifact(self, model: str, run_id: str, kind: str) -> tuple[bytes, str]:
        from modelops.ui import reads

        return reads.artifact(model, run_id, kind)

    def validation_report(self, model: str, key: str) -> tuple[bytes, str]:
        from modelops.ui import reads

        return reads.validation_report(model, key)


_READS = Reads()


def get_reads() -> Reads:
    return _READS


def get_trigger() -> Trigger:
    return actions.trigger_in_airflow


def mlflow_ui_url() -> str | None:
    """Where people open MLflow: ``MODELOPS_MLFLOW_UI_URL``, else the tracking server's own URL."""
    return env_str("MODELOPS_MLFLOW_UI_URL") or env_str("MLFLOW_TRACKING_URI")


AccessDep = Annotated[auth.Access, Depends(auth.access)]
ReadsDep = Annotated[Reads, Depends(get_reads)]
TriggerDep = Annotated[Trigger, Depends(get_trigger)]

app = FastAPI(
    title="modelops models",
    description="The Models pages inside Airflow: champions, gate verdicts, drift, actions.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
app.mount("/static", StaticFiles(directory=STATIC), name="static")


# --- helpers -------------------------------------------------------------------------------------


def _relative_path(request: Request) -> str:
    """The path inside this app (``/models/churn``), wherever it is mounted."""
    path, root = request.url.path, request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def links_for(request: Request) -> Links:
    return Links(up="../" * max(0, _relative_path(request).count("/") - 1))


def _is_api(request: Request) -> bool:
    return _relative_path(request).startswith("/api/")


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers={"Content-Security-Policy": PAGE_CSP})


def _served(content: bytes, content_type: str) -> Response:
    headers = {"Content-Security-Policy": ARTIFACT_CSP, "X-Content-Type-Options": "nosniff"}
    return Response(content, media_type=content_type, headers=headers)


def _readable(acc: auth.Access, reads: Reads, model: str) -> None:
    """403 unless the caller may read the model's retrain runs; 404 for an undeclared model."""
    acc.require("GET", dagkit.dag_id("retrain", model))
    _known(reads, model)


def _known(reads: Reads, model: str) -> None:
    if model not in reads.model_names():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"unknown model '{model}': no valid declaration include/models/{model}.yaml",
        )


def _missing(what: str, exc: KeyError) -> HTTPException:
    """404 with what ``reads`` says is missing (it names the object), else ``what``."""
    detail = str(exc.args[0]) if exc.args else f"no {what}"
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=detail)


def _day(value: str) -> dt.date:
    try:
        if DAY_PATTERN.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"day '{value}' is not a date: use YYYY-MM-DD")


def _overview(acc: auth.Access, reads: Reads) -> dict:
    data = reads.overview()
    rows = [row for row in data.get("models", []) if acc.can("GET", dagkit.dag_id("retrain", str(row.get("model"))))]
    return {**data, "models": rows}


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """JSON for ``/api``; for pages, the sign-in page when anonymous and a readable error otherwise."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if _is_api(request):
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
    links = links_for(request)
    if exc.status_code == status.HTTP_401_UNAUTHORIZED:
        try:
            login = auth.login_url(str(request.url))
        except RuntimeError:  # no auth manager: not running inside Airflow's API server
            log.warning("no Airflow auth manager to send %s to", request.url.path)
            return _html(pages.login_needed_page(links.airflow(""), links), status.HTTP_401_UNAUTHORIZED)
        if request.method == "GET":
            return RedirectResponse(login, status_code=status.HTTP_303_SEE_OTHER)
        return _html(pages.login_needed_page(login, links), status.HTTP_401_UNAUTHORIZED)
    return _html(pages.error_page(exc.status_code, detail, links), exc.status_code)


# --- pages ---------------------------------------------------------------------------------------


@app.get("/models", response_class=HTMLResponse)
def models_page(request: Request, acc: AccessDep, reads: ReadsDep) -> HTMLResponse:
    return _html(pages.models_page(_overview(acc, reads), links_for(request)))


@app.get("/api/models")
def models_json(acc: AccessDep, reads: ReadsDep) -> dict:
    return _overview(acc, reads)


def _flash(model: str, triggered: str | None, run_id: str | None, links: Links) -> str:
    """The notice after an action, only for this model's action DAGs (the query string is anyone's)."""
    if not run_id or triggered not in {dagkit.dag_id("rollback", model), dagkit.dag_id("redrive", model)}:
        return ""
    follow = f'<a href="{pages.attr(links.airflow_run(triggered, run_id))}" target="_top">Follow it in Airflow</a>'
    return pages.flash_message(f"Triggered {triggered}: run {run_id}.", follow)


@app.get("/models/{model}", response_class=HTMLResponse)
def model_page(
    model: str,
    request: Request,
    acc: AccessDep,
    reads: ReadsDep,
    triggered: str | None = None,
    run_id: str | None = None,
) -> HTMLResponse:
    _readable(acc, reads, model)
    data = reads.model_page(model, mlflow_ui_url())
    allowed = pages_model.Actions(
        rollback=acc.can("POST", dagkit.dag_id("rollback", model)),
        redrive=acc.can("POST", dagkit.dag_id("redrive", model)),
    )
    links = links_for(request)
    flash = _flash(model, triggered, run_id, links)
    return _html(pages_model.model_page(data, links, allowed, actions.VERSION_PATTERN, flash))


@app.get("/api/models/{model}")
def model_json(model: str, acc: AccessDep, reads: ReadsDep) -> dict:
    _readable(acc, reads, model)
    return reads.model_page(model, mlflow_ui_url())


@app.get("/models/{model}/reports/{name}")
def report(model: str, name: str, acc: AccessDep, reads: ReadsDep) -> Response:
    """A day's monitoring report, ``<day>.html`` or ``<day>.json``, served through the plugin."""
    _readable(acc, reads, model)
    day, _, kind = name.rpartition(".")
    if kind not in {"html", "json"}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no report '{name}': ask for <day>.html or <day>.json")
    parsed = _day(day)
    return _stored(lambda: reads.report(model, parsed, kind), f"{kind} report of {model} for {day}")


@app.get("/models/{model}/runs/{run_id}/data-docs")
def data_docs(model: str, run_id: str, acc: AccessDep, reads: ReadsDep) -> Response:
    return _artifact(acc, reads, model, run_id, "data-docs")


@app.get("/models/{model}/runs/{run_id}/evaluation")
def evaluation(model: str, run_id: str, acc: AccessDep, reads: ReadsDep) -> Response:
    return _artifact(acc, reads, model, run_id, "evaluation")


def _artifact(acc: auth.Access, reads: Reads, model: str, run_id: str, kind: str) -> Response:
    _readable(acc, reads, model)
    return _stored(lambda: reads.artifact(model, run_id, kind), f"{kind} of {model} run {run_id}")


def _stored(read: Callable[[], tuple[bytes, str]], what: str, refused: str = "") -> Response:
    """A stored object served through the plugin: missing is 404 naming ``what``, refused is 400."""
    try:
        return _served(*read())
    except KeyError as exc:
        raise _missing(what, exc) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{refused}{exc}") from exc


@app.get("/models/{model}/validation")
def validation(model: str, acc: AccessDep, reads: ReadsDep, key: str = "") -> Response:
    """An ingested file's validation report; ``key`` must be one of this model's report keys."""
    _readable(acc, reads, model)
    if not key:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="key: name the validation report to show")
    return _stored(lambda: reads.validation_report(model, key), f"validation report {key}", f"key {key!r} refused: ")


# --- actions -------------------------------------------------------------------------------------


def _run(trigger: Trigger, acc: auth.Access, dag_id: str, conf: dict, back: str) -> RedirectResponse:
    """Trigger ``dag_id`` as the caller, then back to the model page with the run id (303)."""
    try:
        run_id = trigger(dag_id, conf, acc.user)
    except actions.TriggerError as exc:
        raise HTTPException(exc.status_code, detail=str(exc)) from exc
    query = urlencode({"triggered": dag_id, "run_id": run_id})
    return RedirectResponse(f"{back}?{query}", status_code=status.HTTP_303_SEE_OTHER)


def _bad_request(exc: actions.RequestError) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{exc}")


@app.post("/models/{model}/rollback")
def rollback(
    model: str,
    acc: AccessDep,
    reads: ReadsDep,
    trigger: TriggerDep,
    reason: Annotated[str | None, Form()] = None,
    confirm: Annotated[str | None, Form()] = None,
    version: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    """Trigger ``rollback_<model>`` with the form's version and reason."""
    acc.require("POST", dagkit.dag_id("rollback", model))
    _known(reads, model)
    try:
        conf = actions.rollback_conf(version, reason, confirm)
    except actions.RequestError as exc:
        raise _bad_request(exc) from exc
    return _run(trigger, acc, dagkit.dag_id("rollback", model), conf, f"../{pages.segment(model)}")


@app.post("/models/{model}/dead-letters/{message_id}/redrive")
def redrive(model: str, message_id: str, acc: AccessDep, reads: ReadsDep, trigger: TriggerDep) -> RedirectResponse:
    """Trigger ``redrive_<model>`` for one dead letter."""
    acc.require("POST", dagkit.dag_id("redrive", model))
    _known(reads, model)
    try:
        conf = actions.redrive_conf(message_id)
    except actions.RequestError as exc:
        raise _bad_request(exc) from exc
    return _run(trigger, acc, dagkit.dag_id("redrive", model), conf, f"../../../{pages.segment(model)}")


# --- the DAG tab ---------------------------------------------------------------------------------


@app.get("/dags/{dag_id}", response_class=HTMLResponse)
def dag_tab(dag_id: str, request: Request, acc: AccessDep, reads: ReadsDep) -> Response:
    """The "Model" tab of a DAG's page: its model's page, or why there is none."""
    names = reads.model_names()
    model = actions.model_of_dag(dag_id, names)
    if model is not None:
        return RedirectResponse(f"../models/{pages.segment(model)}", status_code=status.HTTP_303_SEE_OTHER)
    readable = [name for name in names if acc.can("GET", dagkit.dag_id("retrain", name))]
    return _html(pages.not_a_model_dag_page(dag_id, readable, links_for(request)))
