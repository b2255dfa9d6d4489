"""How closely CBPE's label-free estimate tracks the realised metric, across covariate shifts.

``python -m benchmarks.cbpe_accuracy`` (no stack: pure computation, seconds). A churn model of each
family is trained on 14 generated days and calibrated on 4 later held-out days exactly as the
register step does (:func:`modelops.training.calibration.calibration_for`). Each shift is then
served for ``DAYS`` days of ``ROWS`` rows; per day the estimate (and its 3-sigma band) is compared
with the metric realised on the day's true labels.

Covariate shifts (P(y|x) unchanged): the generator's ``covariate_shift`` (prices +25%) and
``new_category`` (an unseen plan), and four re-weightings of normal days (rows resampled with
weights on one feature, so the label rule is untouched while the population moves). The
generator's ``concept_shift`` is the control: the estimate is expected to miss it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("bench.cbpe")

TRAIN_DAYS = 14
HELD_OUT_DAYS = 4
DAYS = 5
ROWS = 2000
METRICS = ("roc_auc", "accuracy", "f1")
FAMILIES = ("linear", "hist_gradient_boosting")
START = dt.date(2026, 6, 1)
SERVE = dt.date(2026, 8, 1)
#: Re-weightings of normal days: rows resampled with these weights (see _weights).
REWEIGHTS = ("month_to_month_x3", "short_tenure", "two_year_x4", "many_support_calls")
SCENARIOS = ("covariate_shift", "new_category")


def _weights(shift: str, frame):
    """Row weights of a re-weighting: the population moves, the label rule stays."""
    import numpy as np

    if shift == "month_to_month_x3":
        return 1.0 + 2.0 * (frame["contract"] == "month-to-month").to_numpy()
    if shift == "short_tenure":
        return np.exp(-frame["tenure_months"].to_numpy() / 12.0)
    if shift == "two_year_x4":
        return 1.0 + 3.0 * (frame["contract"] == "two-year").to_numpy()
    if shift == "many_support_calls":
        return 1.0 + frame["support_calls"].to_numpy(dtype=float)
    raise ValueError(f"unknown re-weighting '{shift}'; known: {REWEIGHTS}")


def _day(day: dt.date, shift: str):
    import numpy as np

    from modelops.local.datagen import generate_batch

    if shift == "none" or shift in SCENARIOS or shift == "concept_shift":
        return generate_batch("churn", day, ROWS, scenario=None if shift == "none" else shift)
    pool = generate_batch("churn", day, ROWS * 4)
    weights = np.asarray(_weights(shift, pool), dtype=float)
    rng = np.random.default_rng(day.toordinal())
    chosen = rng.choice(len(pool), size=ROWS, replace=False, p=weights / weights.sum())
    return pool.iloc[np.sort(chosen)].reset_index(drop=True)


def _realised(y, raw, predicted) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, raw[:, 1])),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
    }


def _shift_errors(config, model, calibration, shift: str) -> dict:
    import numpy as np

    from modelops.monitoring.estimation import SIGMAS, expected_metrics, sampling_std
    from modelops.training.calibration import apply_calibration

    errors = {m: [] for m in METRICS}
    inside, sigmas, realised_auc = 0, [], []
    for i in range(DAYS):
        frame = _day(SERVE + dt.timedelta(days=i), shift)
        raw = model.predict_proba(frame[config.feature_names])
        predicted = raw.argmax(axis=1)
        calibrated = apply_calibration(calibration, raw, ["0", "1"])
        estimate = expected_metrics(calibrated, raw, predicted, METRICS)
        actual = _realised(frame[config.target].to_numpy(), raw, predicted)
        sigma = sampling_std(calibrated, raw, predicted, "roc_auc")
        for m in METRICS:
            errors[m].append(estimate[m] - actual[m])
        inside += abs(estimate["roc_auc"] - actual["roc_auc"]) <= SIGMAS * sigma
        sigmas.append(sigma)
        realised_auc.append(actual["roc_auc"])
    return {
        "realised_roc_auc_mean": round(float(np.mean(realised_auc)), 4),
        "mean_abs_error": {m: round(float(np.mean(np.abs(e))), 4) for m, e in errors.items()},
        "max_abs_error": {m: round(float(np.max(np.abs(e))), 4) for m, e in errors.items()},
        "mean_error": {m: round(float(np.mean(e)), 4) for m, e in errors.items()},
        "roc_auc_sigma_mean": round(float(np.mean(sigmas)), 4),
        "roc_auc_within_band": f"{inside}/{DAYS}",
    }


def bench_cbpe() -> dict:
    import pandas as pd

    from modelops.config import get_model
    from modelops.local.datagen import generate_batch
    from modelops.training.calibration import calibration_for
    from modelops.training.pipelines import build_pipeline

    config = get_model("churn")
    days = [START + dt.timedelta(days=i) for i in range(TRAIN_DAYS + HELD_OUT_DAYS)]
    train = pd.concat([generate_batch("churn", d, ROWS) for d in days[:TRAIN_DAYS]], ignore_index=True)
    held_out = pd.concat([generate_batch("churn", d, ROWS) for d in days[TRAIN_DAYS:]], ignore_index=True)
    shifts = ["none", *SCENARIOS, *REWEIGHTS, "concept_shift"]
    result: dict = {"rows_per_day": ROWS, "days_per_shift": DAYS, "families": {}}
    for family in FAMILIES:
        model = build_pipeline(config, family).fit(train[config.feature_names], train[config.target])
        calibration = calibration_for(config, model, held_out)
        by_shift = {shift: _shift_errors(config, model, calibration, shift) for shift in shifts}
        covariate = [s for s in shifts if s not in ("none", "concept_shift")]
        errors = [by_shift[s]["mean_abs_error"]["roc_auc"] for s in covariate]
        result["families"][family] = {
            "calibration_quality": calibration["quality"],
            "covariate_shift_roc_auc_mean_abs_error": round(sum(errors) / len(errors), 4),
            "covariate_shift_roc_auc_max_abs_error": max(by_shift[s]["max_abs_error"]["roc_auc"] for s in covariate),
            "shifts": by_shift,
        }
        log.warning("%s: %s", family, json.dumps(result["families"][family]["shifts"]["concept_shift"]))
    return result


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    result = bench_cbpe()
    result["measured_at"] = dt.datetime.now(dt.UTC).isoformat()
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "cbpe.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
