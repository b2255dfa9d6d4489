"""The inline SVG charts: heat map cells, colours and titles; lines and bars on awkward series."""

from __future__ import annotations

from bs4 import BeautifulSoup

from modelops.ui import charts

FEATURES = ["tenure", "plan", "<b>x</b>"]
DAYS = ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]


def _svg(markup: str) -> BeautifulSoup:
    return BeautifulSoup(markup, "html.parser")


def test_a_heat_map_of_3_features_by_4_days_has_12_coloured_titled_cells():
    cells = [[0.0, 0.5, 0.99, 1.0], [None, 2.5, 0.25, None], [0.1, 0.1, 0.1, 0.1]]
    svg = _svg(charts.heatmap(FEATURES, DAYS, cells))
    rects = svg.select("#drift-heatmap rect.cell")
    assert len(rects) == 12
    by_cell = {(r["data-feature"], r["data-day"]): r for r in rects}
    assert by_cell[("tenure", "2026-12-01")]["fill"] == charts.NEUTRAL
    assert by_cell[("tenure", "2026-12-04")]["fill"] == charts.RED
    assert by_cell[("plan", "2026-12-02")]["fill"] == charts.RED
    amber_ish = by_cell[("tenure", "2026-12-03")]["fill"]
    assert amber_ish not in {charts.NEUTRAL, charts.RED, charts.GREY}
    assert by_cell[("tenure", "2026-12-02")]["title"] == "tenure 2026-12-02: 0.50"
    assert by_cell[("plan", "2026-12-02")]["title"] == "plan 2026-12-02: 2.50 (drifted)"
    assert by_cell[("plan", "2026-12-02")].find("title").text == "plan 2026-12-02: 2.50 (drifted)"


def test_missing_cells_are_grey_and_say_so():
    svg = _svg(charts.heatmap(FEATURES, DAYS, [[None] * 4, [None, None], []]))
    rects = svg.select("rect.cell")
    assert len(rects) == 12 and {r["fill"] for r in rects} == {charts.GREY}
    assert rects[0]["title"] == "tenure 2026-12-01: no data"


def test_the_colour_scale_goes_from_neutral_through_amber_to_red():
    assert charts.heat_colour(None) == charts.heat_colour(float("nan")) == charts.GREY
    assert charts.heat_colour(0) == charts.NEUTRAL
    assert charts.heat_colour(0.999999) == charts.AMBER
    assert charts.heat_colour(1) == charts.heat_colour(7.5) == charts.RED
    red_channel = [int(charts.heat_colour(r)[5:7], 16) for r in (0, 0.3, 0.6, 0.9)]
    assert red_channel == sorted(red_channel, reverse=True)  # blue fades: neutral -> amber


def test_labels_from_data_are_escaped_and_the_legend_is_there():
    markup = charts.heatmap(FEATURES, DAYS, [[0.1] * 4] * 3)
    assert "<b>x</b>" not in markup and "&lt;b&gt;x&lt;/b&gt;" in markup
    assert "≥ 1 drifted" in _svg(markup).select_one("g.legend").text


def test_a_constant_series_draws_a_flat_line_without_dividing_by_zero():
    svg = _svg(charts.line_chart([("v1", 0.8), ("v2", 0.8), ("v3", 0.8)], "auc"))
    ys = {c["cy"] for c in svg.select("circle.point")}
    assert len(ys) == 1
    assert charts.line_chart([("v1", 0.0)], "one zero point").count("<circle") == 1


def test_a_missing_value_breaks_the_line():
    svg = _svg(charts.line_chart([("a", 1), ("b", 2), ("c", None), ("d", 3), ("e", 4)], "gaps"))
    assert len(svg.select("polyline.series")) == 2 and len(svg.select("circle.point")) == 4


def test_no_data_renders_a_note_not_an_empty_chart():
    assert "no data yet" in charts.line_chart([("a", None)], "auc")
    assert "no data yet" in charts.bar_chart([], "rows")
    assert 'id="drift-heatmap"' in charts.heatmap([], [], [])


def test_traffic_bars_start_at_zero():
    svg = _svg(charts.bar_chart([("d1", 100), ("d2", 0), ("d3", 50)], "rows", "traffic"))
    bars = svg.select("rect.bar")
    assert len(bars) == 3 and float(bars[1]["height"]) == 0
    assert float(bars[0]["height"]) == 2 * float(bars[2]["height"])
