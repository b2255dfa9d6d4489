"""Inline SVG charts for the Models pages: a line per series, bars for traffic, the drift heat map.

Plain strings, no JavaScript and no external resources, so they render inside Airflow's iframe
with nothing loaded from outside the plugin. Every label that comes from data is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 40, 16, 40

#: Heat map colours: no data, no effect, an effect close to the threshold, drifted (>= 1).
GREY, NEUTRAL, AMBER, RED = "#d9d9d9", "#f4f1e8", "#f0a020", "#c62828"

Point = tuple[str, float | None]


def number(value) -> float | None:
    """A finite float, or None for anything else (missing, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _scale(values: Sequence[float], zero: bool = False) -> tuple[float, float]:
    """Low and high of the y axis; a constant series gets a band around it (no division by zero)."""
    low, high = min(values), max(values)
    if zero:
        low = min(low, 0.0)
    if high - low == 0:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    return low, high


def _frame(
    title: str,
    chart_id: str | None,
    body: list[str],
    labels: Sequence[str],
    low: float,
    high: float,
    band: bool = False,
) -> str:
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    id_attr = f' id="{escape(chart_id)}"' if chart_id else ""
    axis = [
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{PAD_LEFT + plot_w}" y2="{PAD_TOP + plot_h}"/>',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + plot_h}"/>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end">{_fmt(high)}</text>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end">{_fmt(low)}</text>',
    ]
    if labels:
        step = max(1, math.ceil(len(labels) / 8))
        for i in range(0, len(labels), step):
            x = _x(i, len(labels), band)
            axis.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle">'
                f"{escape(labels[i])}</text>"
            )
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg"{id_attr}>'
        f"<title>{escape(title)}</title>{''.join(axis)}{''.join(body)}</svg>"
    )


def _x(i: int, n: int, band: bool = False) -> float:
    """Points run edge to edge; bars sit in the middle of equal bands."""
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    if band:
        return PAD_LEFT + plot_w * (i + 0.5) / n
    return PAD_LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))


def _y(value: float, low: float, high: float) -> float:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    return PAD_TOP + plot_h * (1 - (value - low) / (high - low))


def empty(title: str, message: str = "no data yet", chart_id: str | None = None) -> str:
    id_attr = f' id="{escape(chart_id)}"' if chart_id else ""
    return f'<p class="chart-empty"{id_attr}>{escape(title)}: {escape(message)}</p>'


def line_chart(points: Sequence[Point], title: str, chart_id: str | None = None) -> str:
    """One series over ordered labels; a missing value breaks the line rather than dropping to 0."""
    values = [v for _, v in points if number(v) is not None]
    if not values:
        return empty(title, chart_id=chart_id)
    low, high = _scale(values)
    segments, current, dots = [], [], []
    for i, (label, value) in enumerate(points):
        value = number(value)
        if value is None:
            segments, current = segments + [current], []
            continue
        x, y = _x(i, len(points)), _y(value, low, high)
        current.append(f"{x:.1f},{y:.1f}")
        dots.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{escape(label)}: {_fmt(value)}</title></circle>"
        )
    body = [f'<polyline class="series" points="{" ".join(s)}"/>' for s in [*segments, current] if len(s) > 1]
    return _frame(title, chart_id, body + dots, [label for label, _ in points], low, high)


def bar_chart(points: Sequence[Point], title: str, chart_id: str | None = None) -> str:
    """Counts per label (traffic per day), from zero."""
    values = [v for _, v in points if number(v) is not None]
    if not values:
        return empty(title, chart_id=chart_id)
    low, high = _scale(values, zero=True)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    width = max(2.0, min(40.0, plot_w / max(len(points), 1) * 0.7))
    bars = []
    for i, (label, value) in enumerate(points):
        value = number(value)
        if value is None:
            continue
        x, y, base = _x(i, len(points), band=True), _y(value, low, high), _y(max(low, 0.0), low, high)
        bars.append(
            f'<rect class="bar" x="{x - width / 2:.1f}" y="{min(y, base):.1f}" width="{width:.1f}"'
            f' height="{abs(base - y):.1f}"><title>{escape(label)}: {_fmt(value)}</title></rect>'
        )
    return _frame(title, chart_id, bars, [label for label, _ in points], low, high, band=True)


def _mix(a: str, b: str, t: float) -> str:
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def heat_colour(ratio: float | None) -> str:
    """Grey without data; neutral to amber as the effect nears its threshold; red once it is reached."""
    ratio = number(ratio)
    if ratio is None:
        return GREY
    if ratio >= 1:
        return RED
    return _mix(NEUTRAL, AMBER, max(0.0, ratio))


def cell_title(feature: str, day: str, ratio: float | None) -> str:
    ratio = number(ratio)
    if ratio is None:
        return f"{feature} {day}: no data"
    return f"{feature} {day}: {ratio:.2f}" + (" (drifted)" if ratio >= 1 else "")


CELL_W, CELL_H, LABEL_W, HEADER_H, LEGEND_H = 28, 20, 160, 64, 36


def _legend(y: int) -> str:
    items = [
        (GREY, "no data"),
        (NEUTRAL, "0"),
        (_mix(NEUTRAL, AMBER, 0.5), "0.5"),
        (AMBER, "< 1"),
        (RED, "≥ 1 drifted"),
    ]
    parts = [f'<text class="tick" x="0" y="{y + 14}">effect / threshold:</text>']
    x = 120
    for colour, label in items:
        parts.append(f'<rect class="swatch" x="{x}" y="{y + 3}" width="14" height="14" fill="{colour}"/>')
        parts.append(f'<text class="tick" x="{x + 18}" y="{y + 14}">{escape(label)}</text>')
        x += 26 + 8 * len(label)
    return f'<g class="legend">{"".join(parts)}</g>'


def heatmap(features: Sequence[str], days: Sequence[str], cells: Sequence[Sequence[float | None]]) -> str:
    """Features (rows) × days (columns), each cell its effect size over the feature's threshold."""
    if not features or not days:
        return empty("Feature drift", chart_id="drift-heatmap")
    width = LABEL_W + CELL_W * len(days) + 48  # room for the last, rotated day label
    height = HEADER_H + CELL_H * len(features) + LEGEND_H
    parts = []
    for j, day in enumerate(days):
        x = LABEL_W + CELL_W * j + CELL_W / 2
        parts.append(
            f'<text class="tick" transform="translate({x:.0f},{HEADER_H - 6}) rotate(-60)">{escape(day)}</text>'
        )
    for i, feature in enumerate(features):
        y = HEADER_H + CELL_H * i
        parts.append(f'<text class="tick" x="{LABEL_W - 6}" y="{y + 14}" text-anchor="end">{escape(feature)}</text>')
        row = cells[i] if i < len(cells) else []
        for j, day in enumerate(days):
            ratio = number(row[j]) if j < len(row) else None
            title = escape(cell_title(feature, day, ratio))
            data_ratio = "" if ratio is None else f"{ratio:.4g}"
            parts.append(
                f'<rect class="cell" x="{LABEL_W + CELL_W * j}" y="{y}" width="{CELL_W - 1}" height="{CELL_H - 1}"'
                f' fill="{heat_colour(ratio)}" data-feature="{escape(feature)}" data-day="{escape(day)}"'
                f' data-ratio="{data_ratio}" title="{title}"><title>{title}</title></rect>'
            )
    parts.append(_legend(HEADER_H + CELL_H * len(features) + 8))
    return (
        f'<svg id="drift-heatmap" class="chart heatmap" role="img" aria-label="Feature drift by day"'
        f' viewBox="0 0 {max(width, 560)} {height}" width="{max(width, 560)}" height="{height}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>Feature drift: effect size / threshold per day</title>'
        f"{''.join(parts)}</svg>"
    )
