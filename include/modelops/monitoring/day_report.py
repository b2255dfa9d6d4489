"""One monitored day, end to end: collect the traffic, run the checks, build and store the report.

:func:`monitor_day` only reads (tests and the demo call it on any store); :func:`report_and_store`
adds the registry's references, the HTML page and the writes, for the monitor DAG's step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.drift import detect as _drift
from modelops.layout import shadow_evidence_key
from modelops.monitoring.capture_format import capture_partition
from modelops.monitoring.estimation import estimate_performance
from modelops.monitoring.live_data import BaselineSource, DayData, collect
from modelops.monitoring.performance import MIN_LABELS, performance
from modelops.monitoring.quality import data_quality
from modelops.monitoring.references import registry_baselines, registry_evaluations
from modelops.monitoring.report import build_report
from modelops.monitoring.report_html import render_report_html
from modelops.monitoring.sample import QUALITY_SAMPLE_ROWS
from modelops.monitoring.shadow_compare import compare_shadow
from modelops.monitoring.storage import presigned_url, report_keys, write_report
from modelops.records import Record

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modelops.store import Store

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MonitorSummary(Record):
    """What ``build_report`` hands on: the day judged, its status and where the report is."""

    day: str
    status: str
    rows: int | None
    drifted_features: list[str]
    report_uri: str
    report_url: str


def _evaluation_for(evaluations: Any, version: str) -> Mapping[str, Any] | None:
    if evaluations is None:
        return None
    if callable(evaluations):
        return evaluations(version)
    if "primary_metric" in evaluations or "primary" in evaluations:
        return evaluations  # one evaluation: the main version's
    return {str(k): v for k, v in evaluations.items()}.get(version)


def monitor_day(
    store: Store,
    config: ModelConfig,
    day: dt.date | str,
    baselines: BaselineSource,
    *,
    evaluations: Mapping[str, Any] | Callable[[str], Mapping[str, Any] | None] | None = None,
    baseline_uris: Mapping[str, str] | None = None,
    generated_at: dt.datetime | str | None = None,
    gx_context: Any = None,
    min_labels: int = MIN_LABELS,
    **collect_options: Any,
) -> tuple[dict[str, Any], DayData]:
    """Collect, judge and report one day (reads only). Returns ``(report, day_data)``.

    ``evaluations``: the main version's evaluation dict, a mapping version -> evaluation, or a
    callable; ``None`` reports realised metrics without a verdict.
    """
    data = collect(store, config.name, day, baselines, **collect_options)
    drift_results: dict[str, dict[str, Any]] = {}
    quality_results: dict[str, dict[str, Any]] = {}
    context = gx_context
    for version, vd in sorted(data.versions.items()):
        if vd.profile is None or vd.rows == 0:
            continue
        drift_results[version] = _drift.compare(vd.baseline, vd.profile, config.drift)
        if context is None:
            from modelops.data.validation import make_context

            context = make_context()
        quality_results[version] = data_quality(
            vd.baseline,
            [vd.quality_sample],
            max_rows=vd.sample.max_rows if vd.sample else QUALITY_SAMPLE_ROWS,
            data_name=f"{capture_partition(config.name, data.day)} (version {version})",
            context=context,
        )
    main = data.main_version
    perf = estimate = None
    if main is not None:
        vd = data.versions[main]
        perf = performance(
            config, vd.labelled, _evaluation_for(evaluations, main), classes=vd.classes, min_labels=min_labels
        )
        estimate = estimate_performance(config, vd.baseline, vd.scores, vd.classes, perf)
    report = build_report(
        data,
        drift=drift_results,
        quality=quality_results,
        performance=perf,
        estimated_performance=estimate,
        baseline_uris=baseline_uris,
        generated_at=generated_at,
    )
    # Champion vs shadow on the same requests (None: no shadow scored that day). Reported, never
    # part of the verdict: the shadow answered nobody.
    report["shadow"] = compare_shadow(store, config, data.day, min_labels=min_labels, labels=data.label_lookup)
    log.info("%s %s: monitoring status %s", config.name, data.day, report["status"])
    return report, data


def report_and_store(
    config: ModelConfig, day: dt.date, generated_at: dt.datetime, store: Store | None = None
) -> MonitorSummary:
    """One day's report, written to S3 (JSON and HTML); the summary names it and links to the page."""
    from modelops.store import Store

    store = store or Store()
    baselines = registry_baselines(store, config.name)
    report, _ = monitor_day(
        store, config, day, baselines, evaluations=registry_evaluations(store, config.name), generated_at=generated_at
    )
    uris = write_report(store, config.name, day, report, render_report_html(report))
    if report.get("shadow"):  # one day of the gate's shadow evidence (overwritten by a re-run)
        store.put_json(shadow_evidence_key(config.name, day), report["shadow"])
    summary = MonitorSummary(
        day=str(day),
        status=report["status"],
        rows=(report.get("rows") or {}).get("captured"),
        drifted_features=(report.get("verdict") or {}).get("drifted_features") or [],
        report_uri=uris["report_json"],
        report_url=presigned_url(store, report_keys(config.name, day)["report_html"]),
    )
    log.info("monitoring report for %s on %s: %s\nopen: %s", config.name, day, summary.status, summary.report_url)
    return summary
