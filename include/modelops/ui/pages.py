"""Server-rendered HTML of the Models pages: the shared layout, the Models table, small pages.

Every value that comes from data (model names, reasons, actors, keys) goes through :func:`text`
or :func:`attr`; markup is only ever built here. Links are relative (no leading slash) so the
pages work under ``/modelops`` inside Airflow's iframe and behind a base URL; a link to an
Airflow page opens in the main window (``target="_top"``), one to MLflow in a new tab.
One model's page is in ``pages_model.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlsplit

OUTCOMES = {"promoted", "kept_champion", "failed", "running", "dry_run"}
STATUSES = {"ok", "drift", "quality", "performance", "no_data"}


def text(value) -> str:
    """Escaped text of any value; ``—`` for a missing one."""
    return "—" if value is None or value == "" else escape(str(value))


def attr(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def segment(value) -> str:
    """One URL path segment (run ids carry ``:`` and ``+``)."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Links:
    """Relative hrefs from the page being rendered; ``up`` climbs back to the plugin's root."""

    up: str = ""

    def plugin(self, path: str) -> str:
        return self.up + path

    def airflow(self, path: str) -> str:
        """An Airflow UI page: the plugin is mounted one level below Airflow's root."""
        return self.up + "../" + path.lstrip("/")

    def airflow_dag(self, dag_id: str) -> str:
        return self.airflow(f"dags/{segment(dag_id)}")

    def airflow_run(self, dag_id: str, run_id: str) -> str:
        return self.airflow(f"dags/{segment(dag_id)}/runs/{segment(run_id)}")

    def model(self, name: str) -> str:
        return self.plugin(f"models/{segment(name)}")


def anchor(href: str | None, label: str, links: Links, *, css: str = "") -> str:
    """A link from data: http(s) opens in a new tab, ``/path`` is an Airflow page (top window),
    anything else is relative to the plugin. Other schemes (``javascript:``) are dropped."""
    if not href:
        return ""
    href = str(href)
    scheme = urlsplit(href).scheme.lower()
    cls = f' class="{attr(css)}"' if css else ""
    if scheme in {"http", "https"}:
        return f'<a{cls} href="{attr(href)}" target="_blank" rel="noopener noreferrer">{text(label)}</a>'
    if scheme or href.startswith("//"):
        return ""
    if href.startswith("/"):
        return f'<a{cls} href="{attr(links.airflow(href))}" target="_top">{text(label)}</a>'
    return f'<a{cls} href="{attr(links.plugin(href))}">{text(label)}</a>'


def when(value) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM`` (UTC) in a ``<time>`` element; the raw text otherwise."""
    if not value:
        return text(None)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return text(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC)
    return f'<time datetime="{attr(value)}">{parsed:%Y-%m-%d %H:%M}</time>'


def metric(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return text(value)
    return f"{value:.4g}"


def badge(value, known: set[str]) -> str:
    css = value if value in known else "unknown"
    return f'<span class="badge badge-{css}">{text(value)}</span>'


def layout(title: str, body: str, links: Links, flash: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(title)}</title>
<link rel="stylesheet" href="{attr(links.plugin("static/modelops.css"))}">
</head>
<body>
<nav class="crumbs"><a href="{attr(links.plugin("models"))}">Models</a></nav>
{flash}
<main>
{body}
</main>
</body>
</html>
"""


def flash_message(message: str | None, link: str = "") -> str:
    if not message:
        return ""
    return f'<p class="flash" role="status">{text(message)} {link}</p>'


def error_page(status_code: int, message: str, links: Links) -> str:
    body = f'<h1>{status_code}</h1><p class="error" id="error">{text(message)}</p>'
    return layout(f"Error {status_code}", body, links)


def login_needed_page(login: str, links: Links) -> str:
    body = f'<h1>Sign in needed</h1><p>Sign in to Airflow first: <a href="{attr(login)}" target="_top">sign in</a>.</p>'
    return layout("Sign in needed", body, links)


def not_a_model_dag_page(dag_id: str, models: list[str], links: Links) -> str:
    known = ", ".join(text(m) for m in models) or "none declared"
    body = (
        f"<h1>{text(dag_id)}</h1>"
        f'<p id="not-a-model">This DAG is not one of a declared model\'s DAGs, so it has no Model page. '
        f"Declared models: {known}.</p>"
        f'<p><a href="{attr(links.plugin("models"))}">All models</a></p>'
    )
    return layout(dag_id, body, links)


# --- the Models page -----------------------------------------------------------------------------


def _champion_cell(champion: dict | None) -> str:
    if not champion:
        return '<td class="champion">none yet</td>'
    return (
        f'<td class="champion"><span class="version">{text(champion.get("version"))}</span>'
        f' <span class="since">since {when(champion.get("since"))}</span></td>'
    )


def _retrain_cell(last: dict | None, model: str, links: Links) -> str:
    if not last:
        return "<td>never</td>"
    run = anchor(links_run_path(model, last.get("run_id")), "run", links) if last.get("run_id") else ""
    return (
        f"<td>{badge(last.get('outcome'), OUTCOMES)} {when(last.get('at'))} {run}"
        f'<div class="reasons">{text(last.get("reason"))}</div></td>'
    )


def links_run_path(model: str, run_id) -> str:
    """Airflow's page of one retrain run (absolute in Airflow, made relative by :func:`anchor`)."""
    return f"/dags/retrain_{segment(model)}/runs/{segment(run_id)}"


def _model_row(row: dict, links: Links) -> str:
    name = str(row.get("model"))
    champion = row.get("champion") or {}
    monitoring = row.get("monitoring")
    status = (
        f"{badge(monitoring.get('status'), STATUSES)} {text(monitoring.get('day'))}" if monitoring else "not yet run"
    )
    return (
        f'<tr data-model="{attr(name)}">'
        f'<td class="model"><a href="{attr(links.model(name))}">{text(name)}</a>'
        f'<div class="sub">{text(row.get("problem_type"))}</div></td>'
        f"{_champion_cell(row.get('champion'))}"
        f'<td class="metric">{text(row.get("primary_metric"))}: {metric(champion.get("metric"))}</td>'
        f"{_retrain_cell(row.get('last_retrain'), name, links)}"
        f'<td class="monitoring">{status}</td>'
        f'<td class="num dead-letters">{text(row.get("dead_letters", 0))}</td>'
        f'<td class="num quarantined">{text(row.get("quarantined_7d", 0))}</td>'
        "</tr>"
    )


def _invalid(invalid: list[dict]) -> str:
    if not invalid:
        return ""
    rows = "".join(
        f'<tr><td class="file">{text(item.get("file"))}</td><td><pre class="error">{text(item.get("error"))}</pre></td></tr>'
        for item in invalid
    )
    return (
        "<h2>Invalid declarations</h2><p>These files are skipped: their models have no DAGs until fixed.</p>"
        f'<table id="invalid"><thead><tr><th>File</th><th>Error</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def models_page(overview: dict, links: Links) -> str:
    rows = "".join(_model_row(row, links) for row in overview.get("models", []))
    if not rows:
        rows = '<tr><td colspan="7" class="empty">No model you may read is declared.</td></tr>'
    body = (
        "<h1>Models</h1>"
        '<table id="models"><thead><tr><th>Model</th><th>Champion version</th><th>Primary metric</th>'
        "<th>Last retrain</th><th>Monitoring</th><th>Dead letters</th><th>Quarantined (7 d)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"{_invalid(overview.get('invalid', []))}"
    )
    return layout("Models", body, links)
