"""The report as one self-contained HTML page: inline CSS and SVG charts, no external assets.

The page is opened from a presigned S3 link printed in the task log, so it cannot load anything
else; every text taken from the report (feature names, categories, messages) is escaped, since
served traffic is untrusted input.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from typing import Any

from modelops.monitoring.report import STATUSES, prediction_drift_text
from modelops.monitoring.shadow_html import shadow_section_html

log = logging.getLogger(__name__)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;background:#fff;max-width:1100px}
h1{font-size:1.4rem;margin:0 0 .4rem}h2{font-size:1.1rem;margin:1.8rem 0 .5rem}h3{font-size:.95rem;margin:1rem 0 .3rem}
.meta{color:#59636e;font-size:.9rem}.badge{display:inline-block;padding:.15rem .7rem;border-radius:1rem;font-weight:600;color:#fff}
.s-ok{background:#1a7f37}.s-drift{background:#bc4c00}.s-quality{background:#8250df}.s-performance{background:#cf222e}.s-no_data{background:#6e7781}
ul.verdict{margin:.6rem 0;padding-left:1.2rem}ul.verdict li{margin:.2rem 0}
table{border-collapse:collapse;width:100%;font-size:.86rem;margin:.3rem 0}th,td{border:1px solid #d1d9e0;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.bad td{background:#fff5f5}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-word}
.hist{display:inline-block;margin:.3rem 1rem .8rem 0;vertical-align:top}.note{color:#59636e;font-size:.8rem}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _esc(f"{value:.{digits}g}")
    return _esc(value)


def _svg_histogram(hist: Mapping[str, Any]) -> str:
    """Grouped bars (reference grey, live blue) per bin or category, as inline SVG."""
    labels = [str(x) for x in hist.get("labels") or []]
    reference = [float(x or 0.0) for x in hist.get("reference") or []]
    current = [float(x or 0.0) for x in hist.get("current") or []]
    n = len(labels)
    if n == 0 or len(reference) != n or len(current) != n:
        return ""
    left, top, plot_h, bottom = 44, 22, 140, 78
    group = 36 if n <= 12 else 24
    width = max(320, left + group * n + 16)
    height = top + plot_h + bottom
    peak = max(reference + current) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_esc("reference vs live distribution of " + str(hist.get("feature")))}">',
        f'<text x="4" y="14" font-size="12" font-weight="600">{_esc(hist.get("feature"))}</text>',
        f'<rect x="{width - 130}" y="5" width="10" height="10" fill="#8c959f"/>'
        f'<text x="{width - 116}" y="14" font-size="11">reference</text>'
        f'<rect x="{width - 60}" y="5" width="10" height="10" fill="#0969da"/>'
        f'<text x="{width - 46}" y="14" font-size="11">live</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{_esc(f"{peak:.0%}")}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0%</text>',
    ]
    bar = (group - 6) / 2
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=True)):
        x = left + i * group + 3
        for offset, value, colour, name in ((0.0, ref, "#8c959f", "reference"), (bar, cur, "#0969da", "live")):
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{_esc(f"{label}: {name} {value:.1%}")}</title></rect>'
            )
        short = label if len(label) <= 16 else label[:15] + "\u2026"
        cx, cy = x + bar, top + plot_h + 10
        parts.append(
            f'<text x="{cx:.1f}" y="{cy}" font-size="10" text-anchor="end" '
            f'transform="rotate(-45 {cx:.1f} {cy})">{_esc(short)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _drift_table(result: Mapping[str, Any]) -> str:
    rows = []
    for item in result.get("features") or []:
        verdict = "drifted" if item.get("drifted") else ("ok" if item.get("status") == "ok" else item.get("status"))
        p_value = item.get("p_value_adjusted") if item.get("p_value_adjusted") is not None else item.get("p_value")
        rows.append(
            f'<tr class="{"bad" if item.get("drifted") else ""}"><td>{_esc(item.get("feature"))}</td>'
            f"<td>{_esc(item.get('kind'))}</td><td>{_esc(item.get('method'))}</td>"
            f'<td class="num">{_num(item.get("statistic"))}</td><td class="num">{_num(p_value, 3)}</td>'
            f'<td class="num">{_num(item.get("threshold"))}</td>'
            f'<td class="num">{_num(item.get("effect_size"))} / {_num(item.get("effect_threshold"))}</td>'
            f'<td class="num">{_num(item.get("psi"), 3)}</td><td><strong>{_esc(verdict)}</strong>'
            f"{'<div class=note>' + _esc(item.get('message')) + '</div>' if item.get('message') else ''}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Feature</th><th>Kind</th><th>Method</th><th>Statistic</th>"
        "<th>p-value (adj.)</th><th>Threshold</th><th>Effect / floor</th><th>PSI</th><th>Verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _quality_section(quality: Mapping[str, Any]) -> str:
    violations = quality.get("violations") or []
    samples = [
        f"version {_esc(v)}: {_esc((r.get('sample') or {}).get('rows'))} of {_esc((r.get('sample') or {}).get('seen_rows'))} "
        f"rows sampled ({_esc((r.get('sample') or {}).get('method'))})"
        for v, r in (quality.get("by_version") or {}).items()
    ]
    head = f'<p class="meta">{"; ".join(samples) or "no sample"}</p>'
    if not violations:
        return head + f"<p>{_esc('No violations.' if quality.get('status') == 'ok' else 'Nothing validated.')}</p>"
    rows = "".join(
        f'<tr class="bad"><td>{_esc(v.get("version"))}</td><td>{_esc(v.get("column") or "(table)")}</td>'
        f"<td><code>{_esc(v.get('expectation'))}</code></td><td><code>{_esc(json.dumps(v.get('expected'), default=str)[:300])}</code></td>"
        f"<td>{_esc(v.get('observed'))}</td><td>{_esc(', '.join(repr(s) for s in v.get('sample_values') or []))}</td></tr>"
        for v in violations
    )
    return (
        head + "<table><thead><tr><th>Version</th><th>Column</th><th>Expectation</th><th>Expected</th>"
        f"<th>Observed</th><th>Sample values</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _performance_section(perf: Mapping[str, Any] | None) -> str:
    if not perf:
        return "<p>No performance computed.</p>"
    head = f"<p><strong>{_esc(perf.get('status'))}</strong>: {_esc(perf.get('message'))}</p>"
    reference = (perf.get("reference") or {}).get("metrics") or {}
    if perf.get("reference"):
        reference = {**reference, perf["primary_metric"]: perf["reference"].get("primary")}
    rows = "".join(
        f'<tr class="{"bad" if name == perf.get("primary_metric") and perf.get("degraded") else ""}">'
        f"<td>{_esc(name)}{' (primary)' if name == perf.get('primary_metric') else ''}</td>"
        f'<td class="num">{_num(reference.get(name))}</td><td class="num">{_num(value)}</td>'
        f'<td class="num">{_num((perf.get("drop") or {}).get(name))}</td></tr>'
        for name, value in (perf.get("metrics") or {}).items()
    )
    foot = (
        f'<p class="meta">{_esc(perf.get("labels"))} labels (minimum {_esc(perf.get("min_labels"))}); '
        f"tolerance {_num(perf.get('tolerance'))} = {_esc(perf.get('tolerance_source'))}; a positive drop is worse.</p>"
    )
    return (
        head + "<table><thead><tr><th>Metric</th><th>Reference (test)</th><th>Live</th><th>Drop</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>" + foot
    )


def _estimation_section(estimate: Mapping[str, Any] | None) -> str:
    """The label-free estimate (CBPE) beside the realised value, with what it cannot see."""
    if not estimate:
        return "<p>No estimate computed.</p>"
    head = f"<p><strong>{_esc(estimate.get('status'))}</strong>: {_esc(estimate.get('message'))}</p>"
    band, realised = estimate.get("band") or {}, estimate.get("realised") or {}
    table = ""
    if estimate.get("estimated") is not None:
        table = (
            "<table><thead><tr><th>Metric</th><th>Reference (test)</th><th>Estimated</th><th>Band</th>"
            "<th>Realised</th><th>Estimate &minus; realised</th></tr></thead><tbody>"
            f'<tr class="{"bad" if estimate.get("degraded") else ""}"><td>{_esc(estimate.get("primary_metric"))}</td>'
            f'<td class="num">{_num(estimate.get("reference"))}</td><td class="num">{_num(estimate.get("estimated"))}</td>'
            f'<td class="num">{_num(band.get("lower"))} &ndash; {_num(band.get("upper"))}</td>'
            f'<td class="num">{_num(realised.get("primary"))}</td><td class="num">{_num(realised.get("error"))}</td></tr>'
            "</tbody></table>"
        )
    return head + table + f'<p class="meta">{_esc(estimate.get("assumption"))}.</p>'


def render_report_html(report: Mapping[str, Any]) -> str:
    """A self-contained page (inline CSS and SVG, no external assets); every text is escaped."""
    status = str(report.get("status"))
    verdict = report.get("verdict") or {}
    title = f"Monitoring of {report.get('model')} for {report.get('day')}"
    versions = "".join(
        f"<tr><td>{_esc(v['version'])}</td><td class=num>{_num(v['rows'])}</td><td class=num>{_num(v.get('share'), 3)}</td>"
        f"<td>{_esc(v.get('first_captured_at'))} &ndash; {_esc(v.get('last_captured_at'))}</td>"
        f"<td>{'yes' if v.get('has_baseline') else 'no'}</td><td class=num>{_num(v.get('labels'))}</td></tr>"
        for v in report.get("served_versions") or []
    )
    labels = report.get("labels") or {}
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_esc(title)}</title>'
        f"<style>{_CSS}</style></head><body>",
        f'<h1>{_esc(title)} <span class="badge s-{_esc(status if status in STATUSES else "no_data")}">{_esc(status)}</span></h1>',
        f'<p class="meta">main version {_esc(report.get("main_version") or "none")}; '
        f"{_esc((report.get('rows') or {}).get('captured'))} rows in {_esc((report.get('rows') or {}).get('files'))} file(s); "
        f"{_esc(labels.get('joined'))} of {_esc(labels.get('received'))} label(s) joined"
        + (f"; generated {_esc(report.get('generated_at'))}" if report.get("generated_at") else "")
        + "</p>",
        '<ul class="verdict">' + "".join(f"<li>{_esc(m)}</li>" for m in verdict.get("messages") or []) + "</ul>",
    ]
    if versions:
        parts.append(
            "<h2>Served versions</h2><table><thead><tr><th>Version</th><th>Rows</th><th>Share</th><th>Captured</th>"
            f"<th>Baseline</th><th>Labels</th></tr></thead><tbody>{versions}</tbody></table>"
        )
    drift_result = report.get("drift")
    parts.append("<h2>Drift</h2>")
    if drift_result:
        parts.append(f'<p class="meta">{_esc(drift_result.get("message"))}; dataset drift share '
                     f"{_num((drift_result.get('dataset_drift') or {}).get('share'), 3)} (threshold "
                     f"{_num((drift_result.get('dataset_drift') or {}).get('threshold'), 3)})</p>")  # fmt: skip
        parts.append(_drift_table(drift_result))
        histograms = report.get("histograms") or []
        if histograms:
            parts.append("<h3>Reference vs live, drifted features</h3>")
            parts.extend(
                f'<div class="hist">{_svg_histogram(h)}<div class="note">{_esc(h.get("note"))}</div></div>'
                for h in histograms
            )
        prediction = report.get("prediction_drift") or {}
        parts.append(
            "<h3>Prediction drift</h3><p>"
            + (
                f"{'drifted' if prediction.get('drifted') else _esc(prediction.get('status'))}: "
                f"{_esc(prediction_drift_text(prediction))}"
                if prediction.get("status") == "ok"
                else _esc(prediction.get("message"))
            )
            + "</p>"
        )
        others = {v: s for v, s in (report.get("drift_by_version") or {}).items() if v != report.get("main_version")}
        if others:
            parts.append(
                "<h3>Other versions</h3><ul>"
                + "".join(f"<li>version {_esc(v)}: {_esc(s.get('message'))}</li>" for v, s in others.items())
                + "</ul>"
            )
    else:
        parts.append("<p>No drift computed.</p>")
    parts.append("<h2>Data quality</h2>" + _quality_section(report.get("data_quality") or {}))
    parts.append("<h2>Performance</h2>" + _performance_section(report.get("performance")))
    parts.append(
        "<h2>Estimated performance (no labels)</h2>" + _estimation_section(report.get("estimated_performance"))
    )
    parts.append(shadow_section_html(report.get("shadow")))
    links = report.get("links") or {}
    link_rows = "".join(
        f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>"
        for k, v in links.items()
        if v and not isinstance(v, Mapping)
    )
    parts.append(f"<h2>Links</h2><table>{link_rows}</table>")
    parts.append(f'<p class="note">report schema version {_esc(report.get("schema_version"))}</p></body></html>\n')
    return "".join(parts)
