"""The day's monitoring report: one JSON-safe document assembled from what the checks returned.

Collecting (:mod:`live_data`), checking (:mod:`quality`, :mod:`modelops.drift.detect`,
:mod:`performance`) and rendering (:mod:`report_html`) live elsewhere; this module only names
the verdict and lays out the schema that the decision, the HTML page, the integration tests and
the UI read. The schema is documented in docs/ARCHITECTURE.md and below.

Report schema (``schema_version`` 1; every value JSON-safe, ``null`` instead of NaN)::

    schema_version    1
    model, day        "churn", "2024-05-01"
    generated_at      ISO-8601 string passed by the caller, or null (the clock is never read here)
    status            ok | drift | quality | performance | no_data; precedence
                      no_data > performance > drift > quality > ok (an estimated drop is "performance")
    verdict           {status, findings: [performance|estimated_performance|drift|quality|prediction_drift],
                       messages: [str], drifted_features: [str], prediction_drifted: bool,
                       quality_violations: int, performance_status: str | null}
    main_version      the version the verdict is about, or null
    served_versions   [{version, rows, share, first_captured_at, last_captured_at,
                        has_baseline, labels}]  (by rows, descending)
    rows              {captured, files, by_version: {v: n}, without_baseline: n,
                       versions_without_baseline: [v], missing_columns: {v: [column]}}
    labels            {partitions: [prefix], files, received, duplicates, joined,
                       joined_by_version: {v: n}}
    data_quality      {status: ok | violations | no_data, violations: [{version, expectation,
                       column, expected, observed, unexpected_count, unexpected_percent,
                       element_count, sample_values}], by_version: {v: data_quality() without
                       its violations (listed above, tagged by version) + violation_count}}
    drift             drift.compare() output for main_version (see modelops.drift.detect), or null
    drift_by_version  {v: {status, message, regime, drifted_features, dataset_drift}}
    prediction_drift  compare()'s prediction result for main_version, or {status: no_reference |
                      no_data, message} when the baseline has no prediction profile
    performance       performance() output for main_version, or null on a day without data
    estimated_performance  estimation.estimate_performance() for main_version (CBPE: estimate, band,
                      realised beside it, the no-concept-shift assumption), or null without data
    histograms        [{feature, kind, labels, reference, current, note}]: shares per bin (numeric:
                      the baseline's bins) or per category (the largest changes), drifted features
    links             {baseline_uri, baseline_uris: {v: uri}, report_json_key, report_html_key}
    shadow            champion vs shadow on the same requests (modelops.monitoring.shadow_compare),
                      or null on a day without shadow rows; added by day_report.monitor_day

Which version the verdict is about (``main_version``): the version that served the most rows,
ties to the one that served last; drift on a handful of rows is noise, and a promotion's tail is
judged the next day. Data-quality violations count for every version.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from modelops.jsonsafe import finite, json_safe
from modelops.layout import monitoring_report_keys
from modelops.monitoring.dates import utc
from modelops.monitoring.live_data import DayData

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATUSES = ("ok", "drift", "quality", "performance", "no_data")


def _bin_labels(edges: list[float]) -> list[str]:
    def fmt(x: float) -> str:
        return f"{x:.4g}"

    if not edges:
        return ["all"]
    labels = [f"< {fmt(edges[0])}"]
    labels += [f"{fmt(a)} to {fmt(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f">= {fmt(edges[-1])}")
    return labels


def _shares(counts: list[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def _histograms(baseline: Mapping[str, Any] | None, drift_result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Reference vs live shares for each drifted feature, for the HTML (and any other reader)."""
    if not baseline or not drift_result:
        return []
    out = []
    for item in drift_result.get("features") or []:
        if not item.get("drifted") or item.get("status") != "ok":
            continue
        details = item.get("details") or {}
        name = item["feature"]
        if item.get("kind") == "numeric" and "reference_bin_counts" in details:
            edges = (baseline["features"].get(name) or {}).get("bins", {}).get("edges") or []
            reference, current = details["reference_bin_counts"], details["current_bin_counts"]
            labels = _bin_labels(edges) if len(edges) + 1 == len(reference) else [str(i) for i in range(len(reference))]
            out.append(
                {
                    "feature": name,
                    "kind": "numeric",
                    "labels": labels,
                    "reference": _shares(reference),
                    "current": _shares(current),
                    "note": "share of rows per training-baseline bin",
                }
            )
        elif item.get("kind") == "categorical":
            changes = details.get("largest_changes") or []
            out.append(
                {
                    "feature": name,
                    "kind": "categorical",
                    "labels": [c["category"] for c in changes],
                    "reference": [c["reference_share"] for c in changes],
                    "current": [c["current_share"] for c in changes],
                    "note": f"the {len(changes)} categories whose share changed most",
                }
            )
    return out


def _drift_summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": result.get("status"),
        "message": result.get("message"),
        "regime": result.get("regime"),
        "drifted_features": list(result.get("drifted_features") or []),
        "dataset_drift": result.get("dataset_drift"),
    }


def prediction_drift_text(prediction: Mapping[str, Any]) -> str:
    """``chi_square p = 0.45 (drift below p 0.05)``: the p-value beside its threshold, the
    effect size beside its floor; never a statistic beside a p-value threshold."""
    method, parts = prediction.get("method"), []
    p_value, threshold = finite(prediction.get("p_value")), finite(prediction.get("threshold"))
    if p_value is not None:
        parts.append(f"p = {p_value:.4g}" + (f" (drift below p {threshold:.4g})" if threshold is not None else ""))
    effect, floor = finite(prediction.get("effect_size")), finite(prediction.get("effect_threshold"))
    if effect is not None:
        measure = prediction.get("effect_measure") or "effect"
        parts.append(f"{measure} {effect:.4g}" + (f" (floor {floor:.4g})" if floor is not None else ""))
    if not parts and finite(prediction.get("statistic")) is not None:
        parts.append(f"statistic {finite(prediction.get('statistic')):.4g}")
    return f"{method} " + ", ".join(parts) if parts else str(method)


def _feature_reason(item: Mapping[str, Any]) -> str:
    """``monthly_charges (wasserstein_normalised 0.48 >= 0.1)``, plus the test's p-value if any."""
    measure = item.get("effect_measure") or item.get("method")
    effect, threshold = finite(item.get("effect_size")), finite(item.get("effect_threshold"))
    details = []
    if effect is not None and threshold is not None:
        details.append(f"{measure} {effect:.3g} >= {threshold:.3g}")
    if item.get("p_value_adjusted") is not None:
        details.append(f"{item.get('method')} adjusted p {item['p_value_adjusted']:.2g}")
    return f"{item['feature']} ({', '.join(details) or item.get('method')})"


def _served_versions(data: DayData) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "rows": v.rows,
            "share": v.rows / data.rows if data.rows else None,
            "first_captured_at": v.first_captured_at,
            "last_captured_at": v.last_captured_at,
            "has_baseline": v.profile is not None,
            "labels": len(v.labelled),
        }
        for v in _by_rows(data)
    ]


def _by_rows(data: DayData) -> list:
    return sorted(data.versions.values(), key=lambda v: (-v.rows, v.version))


def _data_quality(quality: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every version's violations in one list (tagged by version), and each version's summary."""
    violations = [
        {"version": version, **violation}
        for version, result in sorted(quality.items())
        for violation in result.get("violations") or []
    ]
    statuses = {r.get("status") for r in quality.values()}
    by_version = {
        version: {
            **{k: v for k, v in result.items() if k != "violations"},
            "violation_count": len(result.get("violations") or []),
        }
        for version, result in sorted(quality.items())
    }
    status = "violations" if violations else ("ok" if "ok" in statuses else "no_data")
    return {"status": status, "violations": violations, "by_version": by_version}


def _prediction_drift(data: DayData, main_drift: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if main_drift is not None:
        return main_drift.get("prediction_drift") or {
            "status": "no_reference",
            "message": "the baseline has no prediction profile (profile_baseline(..., predictions=...))",
        }
    if not data.no_data:
        return {"status": "no_data", "message": "no version with a baseline served traffic"}
    return None


def _verdict(
    data: DayData,
    main_drift: Mapping[str, Any] | None,
    violations: list[dict[str, Any]],
    prediction: Mapping[str, Any] | None,
    performance: Mapping[str, Any] | None,
    estimated: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The day's status, the findings behind it and one message per finding."""
    main = data.main_version
    findings: list[str] = []
    messages: list[str] = []
    drifted = list((main_drift or {}).get("drifted_features") or [])
    performance_status = (performance or {}).get("status")
    if data.no_data or main is None:
        status = "no_data"
        messages.append(
            data.message
            if data.no_data
            else f"{data.rows} rows, but no baseline for version(s) {data.versions_without_baseline}: nothing to judge"
        )
    else:
        if performance_status == "degraded":
            findings.append("performance")
            messages.append(f"performance: {performance['message']}")
        elif (estimated or {}).get("degraded") and performance_status not in ("ok", "degraded"):
            # Realised metrics on enough labels outrank the estimate; without them, it speaks.
            findings.append("estimated_performance")
            messages.append(f"estimated performance: {estimated['message']}")
        if drifted:
            findings.append("drift")
            items = [f for f in main_drift["features"] if f["drifted"]]
            messages.append(
                f"drift: {len(drifted)} of {main_drift['dataset_drift']['evaluated_count']} feature(s) of version "
                f"{main}: " + ", ".join(_feature_reason(f) for f in items)
            )
        if violations:
            findings.append("quality")
            described = [f"{v['column'] or '(table)'}: {v['expectation']} ({v['observed']})" for v in violations[:10]]
            messages.append(f"quality: {len(violations)} violation(s): " + "; ".join(described))
        if prediction and prediction.get("drifted"):
            findings.append("prediction_drift")
            messages.append(f"prediction drift: {_feature_reason(prediction)}")
        ranked = (("performance", "estimated_performance"), ("drift",), ("quality",))
        status = next((kinds[0] for kinds in ranked if set(kinds) & set(findings)), "ok")
        if status == "ok":
            messages.append(f"no drift, quality or performance finding over {data.rows} rows")
    return {
        "status": status,
        "findings": findings,
        "messages": messages,
        "drifted_features": drifted,
        "prediction_drifted": bool(prediction and prediction.get("drifted")),
        "quality_violations": len(violations),
        "performance_status": performance_status,
    }


def _counts(data: DayData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report's ``rows`` and ``labels`` sections."""
    served = _by_rows(data)
    rows = {
        "captured": data.rows,
        "files": len(data.files),
        "by_version": {v.version: v.rows for v in served},
        "without_baseline": sum(v.rows for v in served if v.profile is None),
        "versions_without_baseline": data.versions_without_baseline,
        "missing_columns": {v.version: sorted(v.missing_columns) for v in served if v.missing_columns},
    }
    labels = {
        "partitions": list(data.label_partitions),
        "files": data.label_files,
        "received": data.labels_received,
        "duplicates": data.duplicate_labels,
        "joined": sum(len(v.labelled) for v in served),
        "joined_by_version": {v.version: len(v.labelled) for v in served},
    }
    return rows, labels


def build_report(
    data: DayData,
    *,
    drift: Mapping[str, Mapping[str, Any]] | None = None,
    quality: Mapping[str, Mapping[str, Any]] | None = None,
    performance: Mapping[str, Any] | None = None,
    estimated_performance: Mapping[str, Any] | None = None,
    baseline_uris: Mapping[str, str] | None = None,
    generated_at: dt.datetime | str | None = None,
) -> dict[str, Any]:
    """The day's report (schema in the module docstring) from what the checks returned.

    ``drift`` and ``quality`` map each judged version to :func:`modelops.drift.detect.compare` and
    :func:`modelops.monitoring.quality.data_quality` results; ``performance`` is
    :func:`modelops.monitoring.performance.performance` for the main version.
    """
    drift = dict(drift or {})
    main = data.main_version
    main_drift = drift.get(main) if main else None
    baseline_uris = {str(k): v for k, v in (baseline_uris or {}).items()}
    data_quality = _data_quality(dict(quality or {}))
    prediction = _prediction_drift(data, main_drift)
    verdict = _verdict(data, main_drift, data_quality["violations"], prediction, performance, estimated_performance)
    rows, labels = _counts(data)
    keys = monitoring_report_keys(data.model, data.day)
    report = {
        "schema_version": SCHEMA_VERSION,
        "model": data.model,
        "day": data.day.isoformat(),
        "generated_at": utc(generated_at).isoformat() if generated_at is not None else None,
        "status": verdict["status"],
        "verdict": verdict,
        "main_version": main,
        "served_versions": _served_versions(data),
        "rows": rows,
        "labels": labels,
        "data_quality": data_quality,
        "drift": main_drift,
        "drift_by_version": {version: _drift_summary(result) for version, result in sorted(drift.items())},
        "prediction_drift": prediction,
        "performance": dict(performance) if performance is not None else None,
        "estimated_performance": dict(estimated_performance) if estimated_performance is not None else None,
        "histograms": _histograms(data.versions[main].baseline if main else None, main_drift),
        "links": {
            "baseline_uri": baseline_uris.get(main) if main else None,
            "baseline_uris": baseline_uris,
            "report_json_key": keys["report_json"],
            "report_html_key": keys["report_html"],
        },
    }
    return json_safe(report)
