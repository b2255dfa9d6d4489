"""How closely the reported Wasserstein effect size tracks the exact one, before and after fine bins.

The oracle: ``scipy.stats.wasserstein_distance`` on every value of the two samples, divided by
the reference's std (ddof=1), which is how :func:`modelops.drift.wasserstein.reference_scale`
normalises our effect size. "Before" is the same data judged against the baseline without its
``fine_bins`` (what a baseline written before them stores): the 12-bin representative-point
estimate, which the unit tests show gives today's numbers. "After" is the baseline as written now.

Cases: four reference shapes (the benchmark's normal, lognormal, uniform and exponential
features), each shifted by 0.1 to 8 reference std, rescaled about its mean by x0.2 to x5, and
two shift-and-scale mixes; plus the benchmark's planted drifts on its own files.
"""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("bench.drift")

SAMPLE_ROWS = 100_000
SHIFTS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SCALES = (0.2, 0.5, 0.8, 1.25, 2.0, 5.0)
MIXES = ((1.0, 2.0), (-0.5, 0.5))
SHAPES = {
    "normal": ("normal", (50.0, 10.0)),
    "lognormal": ("lognormal", (3.0, 0.5)),
    "uniform": ("uniform", (0.0, 100.0)),
    "exponential": ("exponential", (2.0,)),
}
#: The target: |ours / exact - 1| within this wherever the exact effect is at least RELATIVE_FROM
#: (half the default threshold). Below, both read sampling noise (a few thousandths for two
#: samples of 100k rows from one population), and the absolute gap is reported instead.
TOLERANCE = 0.10
RELATIVE_FROM = 0.05


def _config():
    from modelops.config import ModelConfig

    return ModelConfig.model_validate(
        {
            "name": "accuracy_bench",
            "problem_type": "regression",
            "target": "y",
            "features": [{"name": "x", "type": "numeric"}],
            "metrics": {"primary": "rmse"},
        }
    )


def _without_fine_bins(baseline: dict) -> dict:
    old = json.loads(json.dumps(baseline))
    for profile in old["features"].values():
        profile.pop("fine_bins", None)
    return old


def _judge(baseline: dict, values, name: str = "x") -> dict:
    import pandas as pd

    from modelops.drift.detect import drift_dataframe

    result = drift_dataframe(baseline, pd.DataFrame({name: values}))["features"][0]
    return {"effect_size": result["effect_size"], "drifted": result["drifted"]}


def _draw(rng, shape: str, rows: int):
    kind, params = SHAPES[shape]
    return getattr(rng, kind)(*params, rows)


def _case(reference, current, baseline: dict, old: dict, std: float, label: dict) -> dict:
    from scipy.stats import wasserstein_distance

    exact = float(wasserstein_distance(reference, current)) / std
    after, before = _judge(baseline, current), _judge(old, current)
    return {
        **label,
        "exact": round(exact, 4),
        "before": round(before["effect_size"], 4),
        "after": round(after["effect_size"], 4),
        "error_before": round(before["effect_size"] / exact - 1, 4),
        "error_after": round(after["effect_size"] / exact - 1, 4),
        "drifted_before": before["drifted"],
        "drifted_after": after["drifted"],
    }


def effect_size_table(seed: int = 20261206) -> list[dict]:
    """Exact vs ours (before and after) for every shape x (shift, scale, mix)."""
    import numpy as np
    import pandas as pd

    from modelops.data.baseline import profile_baseline

    config = _config()
    rows = []
    for index, shape in enumerate(SHAPES):
        rng = np.random.default_rng([seed, index])
        reference = _draw(rng, shape, SAMPLE_ROWS)
        baseline = profile_baseline(pd.DataFrame({"x": reference, "y": 0.0}), config)
        old = _without_fine_bins(baseline)
        std, mean = baseline["features"]["x"]["std"], float(reference.mean())
        cases = [("shift", s, 1.0) for s in SHIFTS] + [("scale", 0.0, c) for c in SCALES]
        cases += [("shift+scale", s, c) for s, c in MIXES]
        for kind, shift, scale in cases:
            current = (_draw(rng, shape, SAMPLE_ROWS) - mean) * scale + mean + shift * std
            label = {"shape": shape, "change": kind, "shift_std": shift, "scale": scale}
            rows.append(_case(reference, current, baseline, old, std, label))
    return rows


def planted_drift_table(reference_path, current_path, numeric: list[str]) -> list[dict]:
    """Exact vs ours on the benchmark's own files, for every numeric feature (planted or not)."""
    import pyarrow.parquet as pq
    from scipy.stats import wasserstein_distance

    from benchmarks.drift import model_config
    from modelops.data.baseline import profile_baseline

    reference_frame = pq.read_table(reference_path).to_pandas()
    current_frame = pq.read_table(current_path, columns=numeric).to_pandas()
    baseline = profile_baseline(reference_frame, model_config())
    rows = []
    for name in numeric:
        one = {
            **baseline,
            "features": {name: baseline["features"][name]},
            "constraints": None,
            "predictions": None,
        }
        reference = reference_frame[name].dropna().to_numpy(dtype=float)
        current = current_frame[name].dropna().to_numpy(dtype=float)
        std = one["features"][name]["std"]
        exact = float(wasserstein_distance(reference, current)) / std
        after, before = _judge(one, current, name), _judge(_without_fine_bins(one), current, name)
        rows.append(
            {
                "feature": name,
                "exact": round(exact, 4),
                "before": round(before["effect_size"], 4),
                "after": round(after["effect_size"], 4),
                "error_before": round(before["effect_size"] / exact - 1, 4) if exact else None,
                "error_after": round(after["effect_size"] / exact - 1, 4) if exact else None,
                "drifted_before": before["drifted"],
                "drifted_after": after["drifted"],
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict:
    """Worst errors, verdict changes, and whether the target holds."""
    shifted = [r for r in rows if r["exact"] >= RELATIVE_FROM]
    noise = [r for r in rows if r["exact"] < RELATIVE_FROM]
    worst_before = max((abs(r["error_before"]) for r in shifted), default=None)
    worst_after = max((abs(r["error_after"]) for r in shifted), default=None)
    flips = [r for r in rows if r["drifted_before"] != r["drifted_after"]]
    return {
        "cases": len(rows),
        "cases_with_exact_at_least": {"value": RELATIVE_FROM, "count": len(shifted)},
        "max_abs_relative_error_before": None if worst_before is None else round(worst_before, 4),
        "max_abs_relative_error_after": None if worst_after is None else round(worst_after, 4),
        "within_tolerance_after": worst_after is not None and worst_after <= TOLERANCE,
        "tolerance": TOLERANCE,
        "noise_cases_max_abs_gap_before": round(max((abs(r["before"] - r["exact"]) for r in noise), default=0.0), 4),
        "noise_cases_max_abs_gap_after": round(max((abs(r["after"] - r["exact"]) for r in noise), default=0.0), 4),
        "verdict_changes": [
            {k: r.get(k) for k in ("shape", "change", "shift_std", "scale", "feature", "exact", "before", "after")}
            for r in flips
        ],
    }


def bench_accuracy(reference_path, current_path, numeric: list[str]) -> dict:
    started = time.perf_counter()
    shifts = effect_size_table()
    planted = planted_drift_table(reference_path, current_path, numeric)
    return {
        "oracle": "scipy.stats.wasserstein_distance on all values / reference std (ddof=1)",
        "sample_rows": SAMPLE_ROWS,
        "shifts_and_scales": shifts,
        "shifts_and_scales_summary": summarise(shifts),
        "benchmark_features": planted,
        "benchmark_features_summary": summarise(planted),
        "tolerance_rule": f"|ours / exact - 1| <= {TOLERANCE:g} where exact >= {RELATIVE_FROM:g}",
        "seconds": round(time.perf_counter() - started, 1),
    }
