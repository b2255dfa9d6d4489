"""The promotion gate: a pure decision on plain values, so it is tested without any service.

The DAG evaluates the candidate and the champion on the same held-out rows
(:func:`modelops.training.evaluation.evaluate_model`), builds the policy from the model's config plus the
trigger-form overrides, and only routes on the returned :class:`Decision`. Every check is
recorded, passed, failed or skipped, with what was observed and the threshold, because the
decision record in S3 must explain itself to someone who was not there.

Direction matters everywhere: for a lower-is-better metric (rmse, mae, mape, log_loss) the floor
is a ceiling, "better" means smaller and a slice regression is an increase.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from modelops.config import ModelConfig
from modelops.metrics import LOWER_IS_BETTER

log = logging.getLogger(__name__)

#: Overrides a trigger form may pass; ``None`` means "use the config's value".
OVERRIDABLE = ("min_primary", "tolerance", "force_promote")
#: Float slack for boundary comparisons (0.795 vs 0.800 with tolerance 0.005 must pass).
_EPS = 1e-9


def policy_from_config(config: ModelConfig, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The gate's thresholds: the config's ``gate`` section, then the trigger-time overrides.

    Unknown override names and ill-typed values are refused with the field named, so a typo in a
    trigger form does not silently promote with the defaults.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"gate overrides: unknown field(s) {unknown}; allowed: {list(OVERRIDABLE)}")
    gate = config.gate
    policy: dict[str, Any] = {
        "model": config.name,
        "primary_metric": config.metrics.primary,
        "higher_is_better": config.metrics.primary not in LOWER_IS_BETTER,
        "min_primary": gate.min_primary,
        "tolerance": gate.tolerance,
        "min_improvement": gate.min_improvement,
        "force_promote": False,
        "slice_column": gate.slice_column,
        "max_slice_regression": gate.max_slice_regression,
        "max_latency_ms_per_1k": gate.max_latency_ms_per_1k,
        "max_model_size_mb": gate.max_model_size_mb,
    }
    applied: dict[str, Any] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        if name == "force_promote":
            if not isinstance(value, bool):
                raise ValueError(f"gate overrides: field 'force_promote' must be true or false, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"gate overrides: field '{name}' must be a finite number, got {value!r}")
            value = float(value)
            if name == "tolerance" and value < 0:
                raise ValueError(f"gate overrides: field 'tolerance' must be >= 0, got {value}")
        policy[name] = value
        applied[name] = value
    policy["overrides"] = applied
    return policy


@dataclass
class Decision:
    promote: bool
    reasons: list[str]
    checks: list[dict[str, Any]]
    policy: dict[str, Any]
    candidate: dict[str, Any]
    champion: dict[str, Any] | None = field(default=None)

    @property
    def failed_checks(self) -> list[str]:
        return [c["name"] for c in self.checks if not c["passed"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "failed_checks": self.failed_checks,
            "checks": [dict(c) for c in self.checks],
            "policy": dict(self.policy),
            "candidate": self.candidate,
            "champion": self.champion,
        }


def _check(
    name: str, passed: bool, observed: Any, threshold: Any, message: str, *, skipped: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "passed": bool(passed),
        "skipped": skipped,
        "observed": observed,
        "threshold": threshold,
        "message": message,
    }


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _primary(evaluation: dict[str, Any], metric: str) -> float | None:
    value = (evaluation.get("metrics") or {}).get(metric)
    if value is None and evaluation.get("primary_metric", metric) == metric:
        value = evaluation.get("primary")
    return _number(value)


def _fmt(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


def _training_check(candidate: dict[str, Any]) -> dict[str, Any]:
    reasons = list(candidate.get("failure_reasons") or [])
    passed = candidate.get("training_passed") is True
    if passed:
        message = "The candidate passed every training rule."
    elif "training_passed" not in candidate:
        message = "The candidate carries no training-rule verdict ('training_passed'); it cannot be promoted blind."
    else:
        message = "The candidate failed its training rules: " + (" ".join(reasons) or "no reason recorded")
    return _check("training_rules", passed, reasons, "all rules pass", message.strip())


def _floor_check(value: float | None, metric: str, floor: float | None, higher: bool) -> dict[str, Any]:
    bound = "floor" if higher else "ceiling"
    if floor is None:
        return _check(
            "primary_floor", True, value, None, f"No absolute {bound} on {metric} is configured.", skipped=True
        )
    if value is None:
        return _check(
            "primary_floor",
            False,
            None,
            floor,
            f"Test {metric} could not be computed, so the {bound} {floor:g} cannot be met.",
        )
    passed = value >= floor - _EPS if higher else value <= floor + _EPS
    relation = ("at or above" if passed else "below") if higher else ("at or below" if passed else "above")
    return _check(
        "primary_floor", passed, value, floor, f"Test {metric} {_fmt(value)} is {relation} the {bound} {floor:g}."
    )


def _champion_checks(
    value: float | None, champion: dict[str, Any] | None, metric: str, policy: dict[str, Any], higher: bool
) -> list[dict[str, Any]]:
    tolerance = float(policy.get("tolerance") or 0.0)
    min_improvement = float(policy.get("min_improvement") or 0.0)
    if champion is None:
        return [
            _check(
                "champion_comparison",
                True,
                None,
                None,
                "No champion is serving: the comparison with a champion is skipped.",
                skipped=True,
            )
        ]
    champ = _primary(champion, metric)
    delta = None if value is None or champ is None else (value - champ if higher else champ - value)
    if policy.get("force_promote"):
        if delta is None:
            would = "could not be computed"
        else:
            would = (
                "would have passed"
                if delta >= -tolerance - _EPS and (min_improvement == 0 or delta >= min_improvement - _EPS)
                else "would have failed"
            )
        return [
            _check(
                "champion_comparison",
                True,
                delta,
                None,
                f"force_promote is set: the comparison with the champion is skipped (test {metric} {_fmt(value)} "
                f"vs champion {_fmt(champ)}; it {would}).",
                skipped=True,
            )
        ]
    if delta is None:
        which = "candidate's" if value is None else "champion's"
        return [
            _check(
                "not_worse_than_champion",
                False,
                None,
                -tolerance,
                f"The {which} test {metric} is unknown, so the candidate cannot be compared with the champion; "
                f"fix the evaluation or re-run with force_promote to promote without the comparison.",
            )
        ]
    size = abs(delta)
    direction = "better" if delta > 0 else ("worse" if delta < 0 else "equal")
    head = f"Test {metric} {_fmt(value)} vs champion {_fmt(champ)}"
    not_worse = delta >= -tolerance - _EPS
    if direction == "worse":
        tail = f"{size:.4g} worse, {'within' if not_worse else 'beyond'} the tolerance {tolerance:g}."
    elif direction == "better":
        tail = f"{size:.4g} better."
    else:
        tail = "equal."
    checks = [_check("not_worse_than_champion", not_worse, delta, -tolerance, f"{head}: {tail}")]
    if min_improvement == 0:
        checks.append(
            _check(
                "min_improvement",
                True,
                delta,
                0.0,
                "No minimum improvement over the champion is required.",
                skipped=True,
            )
        )
    else:
        improved = delta >= min_improvement - _EPS
        checks.append(
            _check(
                "min_improvement",
                improved,
                delta,
                min_improvement,
                f"{head}: improvement {delta:.4g} {'meets' if improved else 'falls short of'} the required {min_improvement:g}.",
            )
        )
    return checks


def _slice_checks(
    candidate: dict[str, Any], champion: dict[str, Any] | None, metric: str, policy: dict[str, Any], higher: bool
) -> list[dict[str, Any]]:
    limit = float(policy.get("max_slice_regression") or 0.0)
    if champion is None:
        return []  # the champion_comparison note already says there is no champion
    cand_slices, champ_slices = candidate.get("slices"), champion.get("slices")
    if not cand_slices or not champ_slices:
        return [
            _check(
                "slice_regression",
                True,
                None,
                limit,
                "Slices were not evaluated for both models: the slice comparison is skipped.",
                skipped=True,
            )
        ]
    if cand_slices.get("column") != champ_slices.get("column"):
        return [
            _check(
                "slice_regression",
                True,
                None,
                limit,
                f"Candidate slices by '{cand_slices.get('column')}' but the champion by "
                f"'{champ_slices.get('column')}': the slice comparison is skipped.",
                skipped=True,
            )
        ]
    column = cand_slices.get("column")
    cand_groups, champ_groups = cand_slices.get("groups") or {}, champ_slices.get("groups") or {}
    checks = []
    for key in sorted(set(cand_groups) & set(champ_groups)):
        a, b = cand_groups[key], champ_groups[key]
        if a.get("small") or b.get("small"):
            continue
        cand_value, champ_value = _number(a.get("primary")), _number(b.get("primary"))
        if cand_value is None or champ_value is None:
            continue
        regression = champ_value - cand_value if higher else cand_value - champ_value
        passed = regression <= limit + _EPS
        if regression > 0:
            what = f"regresses by {regression:.4g}, {'within' if passed else 'beyond'} the limit {limit:g}"
        else:
            what = "does not regress"
        checks.append(
            _check(
                f"slice_regression[{column}={key}]",
                passed,
                regression,
                limit,
                f"Slice {column}={key}: {metric} {_fmt(cand_value)} vs champion {_fmt(champ_value)} {what}.",
            )
        )
    if not checks:
        return [
            _check(
                "slice_regression",
                True,
                None,
                limit,
                f"No slice of '{column}' is large enough in both evaluations to compare.",
                skipped=True,
            )
        ]
    return checks


def _budget_check(name: str, observed: Any, budget: float, what: str, unit: str) -> dict[str, Any]:
    value = _number(observed)
    if value is None:
        return _check(
            name,
            False,
            None,
            budget,
            f"The candidate's {what} was not measured, so the budget {budget:g} {unit} cannot be verified.",
        )
    passed = value <= budget
    return _check(
        name,
        passed,
        value,
        budget,
        f"{what[0].upper() + what[1:]} {value:.4g} {unit} is {'within' if passed else 'over'} the budget {budget:g} {unit}.",
    )


def decide_promotion(candidate: dict[str, Any], champion: dict[str, Any] | None, policy: dict[str, Any]) -> Decision:
    """Should the candidate replace the champion? Every check is kept, and the reasons say why.

    ``candidate`` and ``champion`` are :func:`~modelops.training.evaluation.evaluate_model` dicts; the
    candidate also carries ``training_passed`` and ``failure_reasons``. ``force_promote`` skips
    only the primary-metric comparison with the champion (and says so); the training rules, the
    floor, the slice bounds and the budgets still apply.
    """
    metric = policy["primary_metric"]
    higher = metric not in LOWER_IS_BETTER
    value = _primary(candidate, metric)
    checks = [_training_check(candidate), _floor_check(value, metric, _number(policy.get("min_primary")), higher)]
    checks += _champion_checks(value, champion, metric, policy, higher)
    checks += _slice_checks(candidate, champion, metric, policy, higher)
    checks.append(
        _budget_check(
            "latency_budget",
            candidate.get("latency_ms_per_1k"),
            float(policy["max_latency_ms_per_1k"]),
            "prediction latency",
            "ms per 1,000 rows",
        )
    )
    checks.append(
        _budget_check(
            "size_budget", candidate.get("model_size_mb"), float(policy["max_model_size_mb"]), "model size", "MB"
        )
    )

    failed = [c for c in checks if not c["passed"]]
    promote = not failed
    name = candidate.get("candidate") or "the candidate"
    if promote:
        reasons = [f"Promote {name}: all {len(checks)} checks passed on test {metric} {_fmt(value)}."]
        reasons += [c["message"] for c in checks]
    else:
        reasons = [
            f"Do not promote {name}: {len(failed)} of {len(checks)} checks failed ({', '.join(c['name'] for c in failed)})."
        ]
        reasons += [c["message"] for c in failed]
        reasons += [c["message"] for c in checks if c["skipped"]]
    log.info("%s", reasons[0])
    return Decision(
        promote=promote, reasons=reasons, checks=checks, policy=dict(policy), candidate=candidate, champion=champion
    )
