"""One model's page: its versions and gate verdicts, alias history, charts, reports, failed
inputs, and the actions (retrain in Airflow, roll back, redrive). Shapes: ``modelops.ui``."""

from __future__ import annotations

from dataclasses import dataclass

from modelops.dagkit import dag_id
from modelops.ui import charts
from modelops.ui.pages import (
    OUTCOMES,
    STATUSES,
    Links,
    anchor,
    attr,
    badge,
    layout,
    links_run_path,
    metric,
    segment,
    text,
    when,
)


@dataclass(frozen=True)
class Actions:
    """What the caller may trigger from this page (the server checks again on submit)."""

    rollback: bool = False
    redrive: bool = False


def _reasons(reasons) -> str:
    items = "".join(f"<li>{text(r)}</li>" for r in reasons or [])
    return f'<ul class="reasons">{items}</ul>' if items else '<ul class="reasons"></ul>'


def _timeline_links(model: str, entry: dict, links: Links) -> str:
    given = entry.get("links") or {}
    found = [
        anchor(given.get("airflow_run") or links_run_path(model, entry.get("run_id")), "Airflow run", links),
        anchor(given.get("mlflow_run"), "MLflow run", links),
        anchor(given.get("mlflow_version"), "MLflow version", links),
        anchor(given.get("data_docs"), "Data Docs", links),
        anchor(given.get("evaluation"), "evaluation", links),
    ]
    return " ".join(link for link in found if link)


def _timeline_row(model: str, entry: dict, links: Links) -> str:
    candidate = entry.get("candidate") or {}
    champion = entry.get("champion") or {}
    version = f"v{text(candidate.get('version'))}" if candidate.get("version") is not None else "not registered"
    return (
        f'<tr data-run-id="{attr(entry.get("run_id"))}">'
        f"<td>{when(entry.get('at'))}</td>"
        f'<td class="outcome">{badge(entry.get("outcome"), OUTCOMES)}{_reasons(entry.get("reasons"))}</td>'
        f'<td class="candidate">{text(candidate.get("name"))} {version}'
        f'<div class="metric">{metric(candidate.get("metric"))}</div></td>'
        f'<td class="champion-then">v{text(champion.get("version"))}'
        f'<div class="metric">{metric(champion.get("metric"))}</div></td>'
        f'<td class="links">{_timeline_links(model, entry, links)}</td>'
        "</tr>"
    )


def timeline(data: dict, links: Links) -> str:
    model = str(data.get("model"))
    rows = "".join(_timeline_row(model, entry, links) for entry in data.get("timeline", []))
    rows = rows or '<tr><td colspan="5" class="empty">No retrain run yet.</td></tr>'
    return (
        "<h2>Versions and gate verdicts</h2>"
        f'<table id="timeline"><thead><tr><th>When</th><th>Verdict and reasons</th>'
        f"<th>Candidate ({text(data.get('primary_metric'))})</th><th>Champion then</th><th>Links</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def alias_history(data: dict, links: Links) -> str:
    model = str(data.get("model"))
    rows = []
    for entry in data.get("aliases", []):
        rollback = bool(entry.get("rollback"))
        tag = ' <span class="badge badge-rollback">rollback</span>' if rollback else ""
        run = (
            anchor(f"/dags/rollback_{segment(model)}/runs/{segment(entry['run_id'])}", "run", links)
            if (rollback and entry.get("run_id"))
            else text(entry.get("run_id"))
        )
        rows.append(
            f'<tr class="{"rollback" if rollback else "move"}" data-rollback="{str(rollback).lower()}">'
            f"<td>{when(entry.get('at'))}</td><td>{text(entry.get('alias'))}{tag}</td>"
            f"<td>v{text(entry.get('from_version'))} → v{text(entry.get('to_version'))}</td>"
            f'<td class="actor">{text(entry.get("actor"))}</td><td class="reason">{text(entry.get("reason"))}</td>'
            f"<td>{run}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="6" class="empty">No alias has moved yet.</td></tr>'
    return (
        '<h2>Alias history</h2><table id="alias-history"><thead><tr><th>When</th><th>Alias</th><th>Move</th>'
        f"<th>By</th><th>Reason</th><th>Run</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _per_day(days: list[dict], key: str) -> list[charts.Point]:
    return [(str(d.get("day")), d.get(key)) for d in days]


def _figure(caption: str, svg: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<figure{cls}><figcaption>{text(caption)}</figcaption>{svg}</figure>"


def chart_section(data: dict) -> str:
    days = data.get("days", [])
    heat = data.get("heatmap") or {}
    primary = str(data.get("primary_metric"))
    by_version = [(f"v{p.get('version')}", p.get("value")) for p in data.get("metric_by_version", [])]
    figures = [
        _figure(
            "Feature drift: effect size / threshold",
            charts.heatmap(heat.get("features", []), heat.get("days", []), heat.get("cells", [])),
            "wide",
        ),
        _figure(f"{primary} per version", charts.line_chart(by_version, f"{primary} per version", "metric-by-version")),
        _figure(
            "Prediction drift per day",
            charts.line_chart(_per_day(days, "prediction_drift"), "Prediction drift", "prediction-drift"),
        ),
        _figure(
            f"Live {primary} per day",
            charts.line_chart(_per_day(days, "performance"), f"Live {primary}", "live-performance"),
        ),
        _figure("Traffic: rows per day", charts.bar_chart(_per_day(days, "rows"), "Rows per day", "traffic")),
    ]
    return f'<h2>Charts</h2><div class="charts">{"".join(figures)}</div>'


def reports(data: dict, links: Links) -> str:
    model = segment(data.get("model"))
    rows = []
    for entry in reversed(data.get("days", [])):
        day = segment(entry.get("day"))
        html_link = anchor(f"models/{model}/reports/{day}.html", "report", links)
        json_link = anchor(f"models/{model}/reports/{day}.json", "JSON", links)
        rows.append(
            f'<tr data-day="{attr(entry.get("day"))}"><td>{text(entry.get("day"))}</td>'
            f'<td>{badge(entry.get("status"), STATUSES)}</td><td class="num">{text(entry.get("rows"))}</td>'
            f"<td>{html_link} {json_link}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="4" class="empty">No monitoring report yet.</td></tr>'
    return (
        '<h2>Monitoring reports</h2><table id="reports"><thead><tr><th>Day</th><th>Status</th><th>Rows</th>'
        f"<th>Reports</th></tr></thead><tbody>{body}</tbody></table>"
    )


def dead_letters(data: dict, links: Links, actions: Actions) -> str:
    model = segment(data.get("model"))
    rows = []
    for entry in data.get("dead_letters", []):
        message_id = str(entry.get("message_id"))
        form = (
            f'<form method="post" class="redrive" action="{attr(links.plugin(f"models/{model}/dead-letters/{segment(message_id)}/redrive"))}">'
            '<button type="submit">Redrive</button></form>'
            if actions.redrive
            else '<span class="muted">no permission to redrive</span>'
        )
        rows.append(
            f'<tr data-message-id="{attr(message_id)}"><td>{when(entry.get("at"))}</td><td><code>{text(message_id)}</code></td>'
            f'<td class="reason">{text(entry.get("reason"))}</td><td><code>{text(entry.get("key"))}</code></td><td>{form}</td></tr>'
        )
    body = "".join(rows) or '<tr><td colspan="5" class="empty">No dead letter is waiting.</td></tr>'
    return (
        '<h2>Dead letters</h2><table id="dead-letters"><thead><tr><th>When</th><th>Message</th><th>Reason</th>'
        f"<th>Object</th><th></th></tr></thead><tbody>{body}</tbody></table>"
    )


def quarantined(data: dict, links: Links) -> str:
    model = segment(data.get("model"))
    rows = []
    for entry in data.get("quarantined", []):
        report = entry.get("report")
        link = anchor(f"models/{model}/validation?key={segment(report)}", "validation report", links) if report else ""
        rows.append(
            f'<tr data-key="{attr(entry.get("key"))}"><td>{text(entry.get("day"))}</td><td><code>{text(entry.get("key"))}</code></td>'
            f'<td class="reason">{text(entry.get("reason"))}</td><td>{link}</td></tr>'
        )
    body = "".join(rows) or '<tr><td colspan="4" class="empty">Nothing quarantined.</td></tr>'
    return (
        '<h2>Quarantined files</h2><table id="quarantined"><thead><tr><th>Day</th><th>File</th><th>Reason</th>'
        f"<th>Report</th></tr></thead><tbody>{body}</tbody></table>"
    )


def rollback_form(model: str, links: Links, actions: Actions, version_pattern: str) -> str:
    if not actions.rollback:
        return f'<p class="muted" id="rollback-refused">You may not trigger rollback_{text(model)}.</p>'
    return f"""<form method="post" id="rollback" action="{attr(links.plugin(f"models/{segment(model)}/rollback"))}">
<h3>Roll back</h3>
<label>Version <input name="version" value="previous-champion" pattern="{attr(version_pattern)}" required></label>
<label>Reason <textarea name="reason" minlength="3" maxlength="1000" required></textarea></label>
<label><input type="checkbox" name="confirm" value="yes" required> I confirm: move champion of {text(model)} back and reload serving</label>
<button type="submit">Roll back</button>
</form>"""


def actions_section(model: str, links: Links, actions: Actions, version_pattern: str) -> str:
    retrain = links.airflow_dag(dag_id("retrain", model))
    return (
        '<section id="actions"><h2>Actions</h2>'
        f'<p><a class="button" id="retrain" href="{attr(retrain)}" target="_top">Retrain in Airflow</a> '
        '<span class="muted">opens the DAG in Airflow; use its Trigger button to set the parameters.</span></p>'
        f"{rollback_form(model, links, actions, version_pattern)}</section>"
    )


def summary(data: dict) -> str:
    champion = data.get("champion")
    if champion:
        line = (
            f'<p class="summary">Champion <span class="champion">v{text(champion.get("version"))}</span> since '
            f"{when(champion.get('since'))}: {text(data.get('primary_metric'))} {metric(champion.get('metric'))}</p>"
        )
    else:
        line = '<p class="summary">No champion yet.</p>'
    return f'<h1>{text(data.get("model"))}</h1><p class="sub">{text(data.get("problem_type"))}</p>{line}'


def model_page(data: dict, links: Links, actions: Actions, version_pattern: str, flash: str = "") -> str:
    model = str(data.get("model"))
    body = "".join(
        [
            summary(data),
            actions_section(model, links, actions, version_pattern),
            chart_section(data),
            timeline(data, links),
            alias_history(data, links),
            reports(data, links),
            dead_letters(data, links, actions),
            quarantined(data, links),
        ]
    )
    return layout(model, body, links, flash)
