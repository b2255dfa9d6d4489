"""Serving guard: no answer for inputs far outside the training data, never a non-finite answer.

Each loaded version gets :class:`InputRanges` from its training baseline (``baseline/baseline.json``
logged with the training run, see :mod:`modelops.data.baseline`). A numeric value outside
``[min - tolerance*span, max + tolerance*span]`` (span = max - min, or max(|max|, 1) for a constant
feature) is handled by the model's ``serving.out_of_range.policy``:

- ``refuse`` (default): 422 naming the field, the value and the trained range;
- ``clip``: the value is clipped to the allowed range (the model and the capture see the clipped value);
- ``flag``: the value is served as sent and a warning is logged.

Without a baseline (none logged, or it cannot be loaded) every numeric feature is refused beyond
``|x| > ABSURD`` whatever the policy. Independently of inputs, a non-finite prediction or
probability makes the request a 422 (:class:`NonFinitePrediction`), never a 200.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops.config import ModelConfig
from modelops.serving.problems import problem

log = logging.getLogger(__name__)

#: Where the training run keeps its baseline (modelops.training.steps.register logs it there).
BASELINE_ARTIFACT = "baseline/baseline.json"
#: Without a training baseline, numeric values beyond this magnitude are refused.
ABSURD = 1e15


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    trained: tuple[float, float] | None  # (min, max) of the training data; None without a baseline


@dataclass(frozen=True)
class InputRanges:
    """Per numeric feature, the range served as is, and what to do outside it."""

    bounds: Mapping[str, Bound]
    policy: str
    tolerance: float
    from_baseline: bool


class NonFinitePrediction(ValueError):
    """The model answered inf/NaN for record ``index`` of the scored rows."""

    def __init__(self, index: int):
        super().__init__(f"model produced a non-finite prediction for record {index}")
        self.index = index


def fallback_ranges(config: ModelConfig) -> InputRanges:
    bound = Bound(-ABSURD, ABSURD, None)
    names = [f.name for f in config.features if f.type == "numeric"]
    return InputRanges({n: bound for n in names}, "refuse", config.serving.out_of_range.tolerance, False)


def ranges_of_baseline(config: ModelConfig, baseline: Mapping[str, Any] | None) -> InputRanges:
    """The ranges a baseline profile allows; features it lacks a min/max for fall back to ``ABSURD``."""
    if not baseline:
        return fallback_ranges(config)
    spec = config.serving.out_of_range
    profiles = baseline.get("features") or {}
    bounds = dict(fallback_ranges(config).bounds)
    for name in bounds:
        profile = profiles.get(name) or {}
        low, high = profile.get("min"), profile.get("max")
        if low is None or high is None:
            continue
        span = (high - low) or max(abs(high), 1.0)
        bounds[name] = Bound(low - spec.tolerance * span, high + spec.tolerance * span, (low, high))
    return InputRanges(bounds, spec.policy, spec.tolerance, True)


def load_ranges(config: ModelConfig, run_id: str | None, version: str) -> InputRanges:
    """The ranges of the baseline logged with ``run_id``; :func:`fallback_ranges` (logged) if there is none."""
    if run_id:
        import mlflow

        try:
            return ranges_of_baseline(config, mlflow.artifacts.load_dict(f"runs:/{run_id}/{BASELINE_ARTIFACT}"))
        except Exception as exc:  # noqa: BLE001 - no baseline is served with the fallback guard, not refused
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        reason = "the version has no training run"
    log.warning(
        "%s version %s: no training baseline (%s); refusing only numeric values beyond +/-%g and non-finite predictions",
        config.name, version, reason, ABSURD,
    )  # fmt: skip
    return fallback_ranges(config)


def _message(name: str, value: float, bound: Bound, ranges: InputRanges, version: str) -> str:
    if bound.trained is None:
        return (
            f"'{name}' = {value:g} is beyond +/-{ABSURD:g}, which is refused (model version {version} has no "
            f"training baseline to compare with): check the value and its units"
        )
    return (
        f"'{name}' = {value:g} is far outside what model version {version} was trained on "
        f"([{bound.trained[0]:g}, {bound.trained[1]:g}]; served: [{bound.low:g}, {bound.high:g}], "
        f"tolerance {ranges.tolerance:g} x the span): check the value and its units, or set "
        f"serving.out_of_range (policy refuse|clip|flag, tolerance) in the model config"
    )


def check_inputs(
    ranges: InputRanges, numeric: dict[str, np.ndarray], location: tuple, version: str, model: str = ""
) -> list[dict]:
    """422 problems for out-of-range values (policy ``refuse``); clips ``numeric`` in place for ``clip``.

    Vectorised: one comparison per feature column; only the offending rows are visited.
    """
    single = location[-1] == "record"
    problems: list[dict] = []
    for name, array in numeric.items():
        bound = ranges.bounds.get(name)
        if bound is None:
            continue
        outside = (array < bound.low) | (array > bound.high)  # NaN (missing) compares False
        if not outside.any():
            continue
        policy = ranges.policy if bound.trained is not None else "refuse"
        if policy == "clip":
            numeric[name] = np.clip(array, bound.low, bound.high)
            continue
        indices = np.flatnonzero(outside)
        if policy == "flag":
            log.warning(
                "%s version %s served %d value(s) of '%s' outside [%g, %g], e.g. %g",
                model, version, len(indices), name, bound.low, bound.high, array[indices[0]],
            )  # fmt: skip
            continue
        for index in indices.tolist():
            problems.append(
                problem(
                    "out_of_range",
                    [*location, name] if single else [*location, index, name],
                    _message(name, float(array[index]), bound, ranges, version),
                    field=name,
                    index=index,
                )
            )
    return problems


def check_outputs(values: np.ndarray) -> None:
    """Raise :class:`NonFinitePrediction` for the first row of ``values`` (1-d or rows x classes) with inf/NaN."""
    finite = np.isfinite(values)
    if finite.ndim > 1:
        finite = finite.all(axis=1)
    if not finite.all():
        raise NonFinitePrediction(int(np.flatnonzero(~finite)[0]))
