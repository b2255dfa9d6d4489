"""The "Shadow" section of the day's HTML report: champion vs shadow on the same requests."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "&ndash;"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return html.escape(text, quote=True)


def shadow_section_html(section: Mapping[str, Any] | None) -> str:
    """Empty when the day had no shadow; else a heading and one table (no verdict: the shadow answered nobody)."""
    if not section:
        return ""
    drift = section.get("prediction_drift") or {}
    live = section.get("live") or {}
    rows = [
        ("champion version(s)", ", ".join(section.get("champion_versions") or [])),
        ("shadow version(s)", ", ".join(section.get("shadow_versions") or [])),
        ("records compared", section.get("rows_compared")),
        ("agreement rate", section.get("agreement_rate")),
        ("mean absolute difference", section.get("mean_abs_difference")),
        ("mean relative difference", section.get("mean_relative_difference")),
        (f"prediction drift ({drift.get('method', '-')})", drift.get("statistic")),
        ("labelled records", live.get("labelled_rows")),
        (
            f"champion live {live.get('primary_metric', '')}",
            (live.get("champion") or {}).get(live.get("primary_metric")),
        ),
        (f"shadow live {live.get('primary_metric', '')}", (live.get("shadow") or {}).get(live.get("primary_metric"))),
        ("shadow worse by", live.get("regression")),
    ]
    body = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{_cell(value)}</td></tr>"
        for name, value in rows
        if value is not None and value != ""
    )
    return f"<h2>Shadow</h2><table>{body}</table>"
