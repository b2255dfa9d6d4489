"""Drift of one day of serving traffic against the training baseline: the comparison and its report.

Live data is first folded into a bounded :class:`~modelops.drift.streaming.StreamingProfile`;
:func:`compare` then judges every feature against the baseline, in one of two regimes chosen by
the size of the reference (``DriftSpec.large_sample_rows``):

* small reference ("test"): a hypothesis test per feature (two-sample KS for numeric, chi-square
  for categorical), p-values corrected with Benjamini-Hochberg across features, AND an effect-size
  floor (normalised Wasserstein, Jensen-Shannon distance), so a significant but tiny change is
  not called drift;
* large reference ("distance"): distances only, against fixed thresholds. With a million rows
  every p-value is tiny and would flag noise; a distance does not grow with the sample size.

Each method is its own module, registered in :mod:`modelops.drift.stattest` with the feature kinds
it allows and its threshold. PSI is reported for every feature (it is what dashboards and risk
teams know), with its own flag, but it does not decide: one rule per regime keeps a verdict
explainable. Everything returned is JSON-safe (``None`` instead of NaN) with a fixed
``schema_version``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from modelops.config import DriftSpec
from modelops.drift.ks import ks_drift
from modelops.drift.multiple_testing import benjamini_hochberg
from modelops.drift.psi import PSI_EPSILON, psi
from modelops.drift.stattest import Regime, aligned, feature_result, stattest_for
from modelops.drift.streaming import Accumulator, CategoricalAccumulator, NumericAccumulator, StreamingProfile
from modelops.drift.wasserstein import reference_scale, wasserstein_drift
from modelops.jsonsafe import finite, json_safe

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Categories listed in a result's details (largest changes, unseen names).
DETAIL_CATEGORIES = 5

Method = Literal["auto", "test", "distance"]


def _regime(reference_rows: int, spec: DriftSpec, method: Method) -> Regime:
    if method == "auto":
        return "test" if reference_rows < spec.large_sample_rows else "distance"
    if method not in ("test", "distance"):
        raise ValueError(f"method must be 'auto', 'test' or 'distance', got {method!r}")
    return method


def _numeric_result(
    name: str, reference: Mapping[str, Any], live: NumericAccumulator, regime: Regime, spec: DriftSpec
) -> dict[str, Any]:
    edges = reference["bins"]["edges"]
    ref_counts = reference["bins"]["counts"]
    cur_counts = live.counts.tolist()
    scale, scale_source = reference_scale(reference)
    bounds = {"reference_min": finite(reference.get("min")), "reference_max": finite(reference.get("max"))}
    # The binned distance is the distance regime's verdict and the KS test's effect-size floor.
    fine = reference.get("fine_bins")
    if fine and live.fine_edges is not None:
        distance = wasserstein_drift(
            live.fine_edges,
            fine["counts"],
            live.bin_counts.tolist(),
            scale=scale,
            spec=spec,
            reference_sums=fine["sums"],
            current_sums=live.bin_sums.tolist(),
        )
        wasserstein_bins = "fine_bin_means"
    else:  # a baseline written before fine bins: the coarse bins' representative points, as then
        distance = wasserstein_drift(edges, ref_counts, cur_counts, scale=scale, spec=spec, **bounds)
        wasserstein_bins = "bin_points"
    if stattest_for("numeric", regime).func is ks_drift:
        result = ks_drift(reference["sample"], live.sample, effect_size=distance["statistic"], spec=spec)
    else:
        result = distance
    ref_mean = finite(reference.get("mean"))
    result["details"] = {
        "reference_mean": ref_mean,
        "current_mean": finite(live.mean),
        "mean_shift_scaled": finite((live.mean - ref_mean) / scale) if ref_mean is not None else None,
        "reference_std": finite(reference.get("std")),
        "current_std": finite(live.std),
        "current_min": finite(live.min),
        "current_max": finite(live.max),
        "wasserstein": finite(distance["statistic"] * scale),
        "wasserstein_bins": wasserstein_bins,
        "scale": scale,
        "scale_source": scale_source,
        "sample_size": int(live.sample.size),
        "reference_bin_counts": [int(c) for c in ref_counts],
        "current_bin_counts": [int(c) for c in cur_counts],
    }
    result["psi"] = psi(ref_counts, cur_counts)
    return result


def _categorical_result(
    name: str, reference: Mapping[str, Any], live: CategoricalAccumulator, regime: Regime, spec: DriftSpec
) -> dict[str, Any]:
    ref_counts = {str(k): float(v) for k, v in reference["counts"].items()}
    cur_counts = {**{k: float(v) for k, v in live.counts.items()}, **{k: float(v) for k, v in live.unseen.items()}}
    result = stattest_for("categorical", regime).func(ref_counts, cur_counts, spec=spec)
    names, ref, cur = aligned(ref_counts, cur_counts)
    ref_total, cur_total = sum(ref), sum(cur)
    unseen = {k: v for k, v in cur_counts.items() if k not in ref_counts}
    changes = sorted(
        (
            {"category": k, "reference_share": r / ref_total, "current_share": c / cur_total}
            for k, r, c in zip(names, ref, cur, strict=True)
        ),
        key=lambda d: (-abs(d["current_share"] - d["reference_share"]), d["category"]),
    )
    result["details"] = {
        "categories": len(names),
        "unseen_share": sum(unseen.values()) / cur_total,
        "unseen_categories": {
            k: v / cur_total for k, v in sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:DETAIL_CATEGORIES]
        },
        "largest_changes": changes[:DETAIL_CATEGORIES],
    }
    result["psi"] = psi(ref, cur)
    return result


def _judge_feature(
    name: str, reference: Mapping[str, Any], live: Accumulator, regime: Regime, spec: DriftSpec
) -> dict[str, Any]:
    ref_count = int(reference.get("count") or 0)
    common = {
        "feature": name,
        "kind": reference["kind"],
        "reference_count": ref_count,
        "current_count": int(live.n),
        "reference_null_fraction": finite(reference.get("null_fraction")),
        "current_null_fraction": live.nulls / live.rows if live.rows else None,
        "current_invalid_count": int(live.invalid),
        "psi_threshold": spec.psi_threshold,
        "drifted": False,
        "psi_drifted": False,
    }
    if reference["kind"] != live.kind:
        raise ValueError(f"{name}: baseline says {reference['kind']} but the live profile holds {live.kind} data")
    if ref_count == 0:
        return feature_result(**common, status="no_reference", message="no non-null values in the training baseline")
    if live.n == 0:
        message = "no live rows" if live.rows == 0 else f"all {live.rows} live value(s) are missing or invalid"
        return feature_result(**common, status="no_data", message=message)
    if live.kind == "numeric":
        result = _numeric_result(name, reference, live, regime, spec)  # type: ignore[arg-type]
    else:
        result = _categorical_result(name, reference, live, regime, spec)  # type: ignore[arg-type]
    result.update(common, status="ok", drifted=result["drifted"])
    result["psi_drifted"] = bool(result["psi"] >= spec.psi_threshold)
    return result


def _apply_multiple_testing(results: list[dict[str, Any]], alpha: float) -> None:
    """Re-judge test-based results on BH-adjusted p-values across all tested features."""
    tested = [r for r in results if r["status"] == "ok" and r["p_value"] is not None]
    for result, adjusted in zip(tested, benjamini_hochberg([r["p_value"] for r in tested]), strict=True):
        result["p_value_adjusted"] = adjusted
        result["drifted"] = bool(adjusted < alpha and result["effect_size"] >= result["effect_threshold"])


def _severity_order(result: Mapping[str, Any]) -> tuple[Any, ...]:
    severity = result["severity"]
    return (not result["drifted"], severity is None, -(severity or 0.0), result["feature"])


def _prediction_result(
    baseline: Mapping[str, Any], live: StreamingProfile, regime: Regime, spec: DriftSpec
) -> dict[str, Any] | None:
    if live.prediction is None or not baseline.get("predictions"):
        return None
    prediction = _judge_feature(live.prediction_column, baseline["predictions"], live.prediction, regime, spec)
    if prediction["p_value"] is not None:
        # One question, one test: not part of the features' family, so no correction.
        prediction["p_value_adjusted"] = prediction["p_value"]
    return prediction


def _overall_status(live: StreamingProfile, evaluated: list[dict[str, Any]], drifted: list[str], regime: Regime):
    if live.rows == 0:
        return "no_data", "no live rows were profiled: nothing to compare"
    if not evaluated:
        return "no_data", "no feature has both reference and live values"
    return "ok", f"{len(drifted)} of {len(evaluated)} feature(s) drifted ({regime} regime)"


def _settings(spec: DriftSpec) -> dict[str, Any]:
    """The thresholds a report was judged with, so a reader can re-judge it."""
    return {
        "p_value": spec.p_value,
        "multiple_testing": "benjamini-hochberg",
        "psi_threshold": spec.psi_threshold,
        "psi_epsilon": PSI_EPSILON,
        "wasserstein_threshold": spec.wasserstein_threshold,
        "jensen_shannon_threshold": spec.jensen_shannon_threshold,
        "dataset_drift_share": spec.dataset_drift_share,
        "large_sample_rows": spec.large_sample_rows,
    }


def compare(
    baseline: Mapping[str, Any],
    live: StreamingProfile,
    drift_spec: DriftSpec | None = None,
    *,
    method: Method = "auto",
) -> dict[str, Any]:
    """Judge every feature (and the predictions, when profiled) against the training baseline.

    ``method="auto"`` picks tests for a reference under ``large_sample_rows`` rows and distances
    otherwise; "test" or "distance" forces one. Features come back most severe first
    (drifted, then effect size / effect threshold). The dataset drifts when the share of drifted
    features among those with data reaches ``dataset_drift_share``. Empty live data gives
    ``status: "no_data"``, never an exception.
    """
    spec = drift_spec or DriftSpec()
    reference_rows = int(baseline["row_count"])
    regime = _regime(reference_rows, spec, method)
    unknown = sorted(set(baseline["features"]) ^ set(live.features))
    if unknown:
        raise ValueError(f"the live profile and the baseline disagree on feature(s) {unknown}: build it from_baseline")

    results = [
        _judge_feature(name, reference, live.features[name], regime, spec)
        for name, reference in baseline["features"].items()
    ]
    _apply_multiple_testing(results, spec.p_value)
    results.sort(key=_severity_order)

    evaluated = [r for r in results if r["status"] == "ok"]
    drifted = [r["feature"] for r in evaluated if r["drifted"]]
    share = len(drifted) / len(evaluated) if evaluated else None
    status, message = _overall_status(live, evaluated, drifted, regime)
    report = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "message": message,
        "model": baseline.get("model"),
        "baseline_schema_version": baseline.get("schema_version"),
        "regime": regime,
        "reference_rows": reference_rows,
        "current_rows": int(live.rows),
        "settings": _settings(spec),
        "dataset_drift": {
            "share": share,
            "threshold": spec.dataset_drift_share,
            "drifted": bool(share is not None and share >= spec.dataset_drift_share),
            "drifted_count": len(drifted),
            "evaluated_count": len(evaluated),
        },
        "drifted_features": drifted,
        "features": results,
        "prediction_drift": _prediction_result(baseline, live, regime, spec),
    }
    log.info(
        "%s: drift over %d live rows vs %d reference rows: %s",
        baseline.get("model"),
        live.rows,
        reference_rows,
        message,
    )
    return json_safe(report)


def drift_dataframe(
    baseline: Mapping[str, Any],
    df: pd.DataFrame,
    drift_spec: DriftSpec | None = None,
    *,
    chunk_rows: int = 100_000,
    method: Method = "auto",
    prediction_column: str = "prediction",
) -> dict[str, Any]:
    """Stream an in-memory frame through :class:`StreamingProfile` and :func:`compare` it."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    profile = StreamingProfile.from_baseline(baseline, prediction_column=prediction_column)
    for start in range(0, len(df), chunk_rows):
        profile.update(df.iloc[start : start + chunk_rows])
    return compare(baseline, profile, drift_spec, method=method)
