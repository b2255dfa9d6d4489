"""A validation result as a self-contained HTML page, stored next to the JSON result.

GX's own Data Docs renderer loads Bootstrap, jQuery and Vega from CDNs; this page keeps the same
content (statistics, then every expectation with its observed value) inline, so it opens offline
and as an artifact.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

from modelops.data.failures import describe_failure, expected_text, observed_text, short_text

if TYPE_CHECKING:
    from modelops.data.validation import ValidationOutcome

log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.meta{color:#59636e;font-size:.9rem}.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;width:100%;font-size:.88rem}th,td{border:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.failed td{background:#fff5f5}td.status{font-weight:600;white-space:nowrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-word}
.stats td{width:auto}.note{color:#59636e;font-size:.82rem}
"""


def render_data_docs_html(outcome: ValidationOutcome) -> str:
    """A self-contained HTML report of the result (no CDN assets, so it opens offline and as an artifact).

    GX's own Data Docs renderer loads Bootstrap, jQuery and Vega from CDNs; this page keeps the
    same content (statistics, then every expectation with its observed value) inline.
    """
    esc = html.escape
    result = outcome.result_json
    stats = outcome.statistics
    meta = result.get("meta") or {}
    status = '<span class="badge pass">passed</span>' if outcome.success else '<span class="badge fail">failed</span>'
    rows = []
    for item in sorted(result.get("results", []), key=lambda r: (bool(r.get("success")), _column_of(r) or "")):
        failure = describe_failure(item)
        ok = bool(item.get("success"))
        observed = observed_text(failure) if not ok or failure.get("exception") else _passing_observation(failure)
        rows.append(
            f'<tr class="{"passed" if ok else "failed"}"><td class="status">{"&#10003; pass" if ok else "&#10007; fail"}</td>'
            f"<td>{esc(failure['column'] or '(table)')}</td><td><code>{esc(str(failure['expectation_type']))}</code>"
            f"{'<div class=note>' + esc(failure['notes']) + '</div>' if failure.get('notes') else ''}</td>"
            f"<td>{esc(expected_text(failure))}</td><td>{esc(observed)}</td></tr>"
        )
    stat_rows = "".join(
        f"<tr><th>{esc(k.replace('_', ' '))}</th><td>{esc(f'{v:.1f}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in stats.items()
    )
    info = {
        "suite": outcome.suite_name,
        "data": outcome.data_name,
        "great_expectations_version": meta.get("great_expectations_version"),
        "batch loaded at": (meta.get("batch_markers") or {}).get("ge_load_time"),
        "data fingerprint": (meta.get("batch_markers") or {}).get("pandas_data_fingerprint"),
    }
    info_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in info.items() if v)
    title = f"Validation of {outcome.data_name} against suite {outcome.suite_name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)} {status}</h1>"
        f'<p class="meta">{esc(str(stats.get("successful_expectations", "?")))} of '
        f"{esc(str(stats.get('evaluated_expectations', '?')))} expectations met.</p>"
        f'<h2>Statistics</h2><table class="stats">{stat_rows}</table>'
        f"<h2>Expectations</h2><table><thead><tr><th>Status</th><th>Column</th><th>Expectation</th>"
        f"<th>Expected</th><th>Observed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<h2>Run</h2><table class="stats">{info_rows}</table>'
        "</body></html>\n"
    )


def _column_of(item: dict[str, Any]) -> str | None:
    return ((item.get("expectation_config") or {}).get("kwargs") or {}).get("column")


def _passing_observation(failure: dict[str, Any]) -> str:
    if failure.get("unexpected_count") is not None:
        return f"{failure['unexpected_count']} of {failure.get('element_count')} values unexpected"
    return f"observed {short_text(failure.get('observed_value'))}"
