"""The report page: self-contained, shows the verdict, escapes what served traffic put in it."""

from __future__ import annotations

from tests.unit.monitoring.monitoring_helpers import (
    drifted,
)

from modelops.monitoring.report_html import render_report_html


def test_html_is_self_contained_shows_the_verdict_and_escapes_values(reports):
    report, _ = reports["script"]
    assert "region" in drifted(report)
    page = render_report_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert 'class="badge s-drift">drift</span>' in page
    assert page.index("badge") < page.index("<h2>Drift</h2>")  # verdict first
    assert "<svg" in page and "monthly_charges" not in drifted(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "<link" not in page and "src=" not in page  # no external assets
    covariate = render_report_html(reports["covariate_shift"][0])
    assert covariate.count("<svg") == len(reports["covariate_shift"][0]["histograms"]) >= 1
    assert covariate.index("monthly_charges") < covariate.index("support_calls")  # sorted by drift
