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

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.config import ModelConfig
from modelops.jsonsafe import finite
from modelops.metrics import higher_is_better

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
        "higher_is_better": higher_is_better(config.metrics.primary),
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


@dataclass(frozen=True)
class GatePolicy:
    """The thresholds the gate applies (:func:`policy_from_config` builds its JSON-safe dict form)."""

    primary_metric: str
    higher_is_better: bool
    min_primary: float | None
    tolerance: float
    min_improvement: float
    force_promote: bool
    max_slice_regression: float
    max_latency_ms_per_1k: float
    max_model_size_mb: float

    @classmethod
    def of(cls, policy: GatePolicy | Mapping[str, Any]) -> GatePolicy:
        if isinstance(policy, GatePolicy):
            return policy
        metric = policy["primary_metric"]
        return cls(
            primary_metric=metric,
            higher_is_better=higher_is_better(metric),
            min_primary=finite(policy.get("min_primary")),
            tolerance=float(policy.get("tolerance") or 0.0),
            min_improvement=float(policy.get("min_improvement") or 0.0),
            force_promote=bool(policy.get("force_promote")),
            max_slice_regression=float(policy.get("max_slice_regression") or 0.0),
            max_latency_ms_per_1k=float(policy["max_latency_ms_per_1k"]),
            max_model_size_mb=float(policy["max_model_size_mb"]),
        )


@dataclass(frozen=True)
class ChampionEvidence:
    """A model's held-out evaluation (an :func:`~modelops.training.evaluation.evaluate_model` dict),
    read through the fields the gate compares."""

    evaluation: Mapping[str, Any]

    @classmethod
    def of(cls, evaluation: ChampionEvidence | Mapping[str, Any] | None) -> ChampionEvidence | None:
        if evaluation is None or isinstance(evaluation, ChampionEvidence):
            return evaluation
        return cls(evaluation=evaluation)

    def primary(self, metric: str) -> float | None:
        """The test value of ``metric``: from ``metrics``, else ``primary`` if it is that metric."""
        value = (self.evaluation.get("metrics") or {}).get(metric)
        if value is None and self.evaluation.get("primary_metric", metric) == metric:
            value = self.evaluation.get("primary")
        return finite(value)

    @property
    def slices(self) -> dict[str, Any] | None:
        return self.evaluation.get("slices")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.evaluation)


@dataclass(frozen=True)
class CandidateEvidence(ChampionEvidence):
    """The candidate's evaluation plus its training-rule verdict (None: no verdict was recorded)."""

    training_passed: bool | None = None
    failure_reasons: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, evaluation: CandidateEvidence | Mapping[str, Any], training_passed: Any = None, failure_reasons=None
    ) -> CandidateEvidence:
        """From an evaluation and the verdict; a mapping that carries ``training_passed`` (and
        ``failure_reasons``) itself, as older callers pass it, gives its own verdict."""
        if isinstance(evaluation, CandidateEvidence):
            return evaluation
        if training_passed is None and "training_passed" in evaluation:
            training_passed, failure_reasons = evaluation["training_passed"], evaluation.get("failure_reasons")
        return cls(evaluation=evaluation, training_passed=training_passed, failure_reasons=tuple(failure_reasons or ()))

    @property
    def name(self) -> str:
        return self.evaluation.get("candidate") or "the candidate"

    def to_dict(self) -> dict[str, Any]:
        """The evaluation with ``training_passed`` and ``failure_reasons``: what the record keeps."""
        out = dict(self.evaluation)
        if self.training_passed is not None:
            out |= {"training_passed": self.training_passed, "failure_reasons": list(self.failure_reasons)}
        return out


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


def _fmt(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


def _training_check(candidate: CandidateEvidence) -> dict[str, Any]:
    reasons = list(candidate.failure_reasons)
    passed = candidate.training_passed is True
    if passed:
        message = "The candidate passed every training rule."
    elif candidate.training_passed is None:
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


def _forced_comparison(value: float | None, champ: float | None, delta: float | None, policy: GatePolicy) -> dict:
    """force_promote: the comparison is skipped, and the record says how it would have gone."""
    tolerance, min_improvement = policy.tolerance, policy.min_improvement
    if delta is None:
        would = "could not be computed"
    else:
        would = (
            "would have passed"
            if delta >= -tolerance - _EPS and (min_improvement == 0 or delta >= min_improvement - _EPS)
            else "would have failed"
        )
    return _check(
        "champion_comparison",
        True,
        delta,
        None,
        f"force_promote is set: the comparison with the champion is skipped (test {policy.primary_metric} "
        f"{_fmt(value)} vs champion {_fmt(champ)}; it {would}).",
        skipped=True,
    )


def _improvement_check(delta: float, head: str, min_improvement: float) -> dict[str, Any]:
    if min_improvement == 0:
        return _check(
            "min_improvement", True, delta, 0.0, "No minimum improvement over the champion is required.", skipped=True
        )
    improved = delta >= min_improvement - _EPS
    return _check(
        "min_improvement",
        improved,
        delta,
        min_improvement,
        f"{head}: improvement {delta:.4g} {'meets' if improved else 'falls short of'} the required {min_improvement:g}.",
    )


def _champion_checks(
    value: float | None, champion: ChampionEvidence | None, policy: GatePolicy
) -> list[dict[str, Any]]:
    metric, higher, tolerance = policy.primary_metric, policy.higher_is_better, policy.tolerance
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
    champ = champion.primary(metric)
    delta = None if value is None or champ is None else (value - champ if higher else champ - value)
    if policy.force_promote:
        return [_forced_comparison(value, champ, delta, policy)]
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
    return [
        _check("not_worse_than_champion", not_worse, delta, -tolerance, f"{head}: {tail}"),
        _improvement_check(delta, head, policy.min_improvement),
    ]


def _skipped_slices(limit: float, message: str) -> list[dict[str, Any]]:
    return [_check("slice_regression", True, None, limit, message, skipped=True)]


def _slice_group_checks(cand_slices: dict, champ_slices: dict, policy: GatePolicy) -> list[dict[str, Any]]:
    """One check per slice value large enough in both evaluations."""
    metric, higher, limit = policy.primary_metric, policy.higher_is_better, policy.max_slice_regression
    column = cand_slices.get("column")
    cand_groups, champ_groups = cand_slices.get("groups") or {}, champ_slices.get("groups") or {}
    checks = []
    for key in sorted(set(cand_groups) & set(champ_groups)):
        a, b = cand_groups[key], champ_groups[key]
        if a.get("small") or b.get("small"):
            continue
        cand_value, champ_value = finite(a.get("primary")), finite(b.get("primary"))
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
    return checks


def _slice_checks(
    candidate: CandidateEvidence, champion: ChampionEvidence | None, policy: GatePolicy
) -> list[dict[str, Any]]:
    limit = policy.max_slice_regression
    if champion is None:
        return []  # the champion_comparison note already says there is no champion
    cand_slices, champ_slices = candidate.slices, champion.slices
    if not cand_slices or not champ_slices:
        return _skipped_slices(limit, "Slices were not evaluated for both models: the slice comparison is skipped.")
    if cand_slices.get("column") != champ_slices.get("column"):
        return _skipped_slices(
            limit,
            f"Candidate slices by '{cand_slices.get('column')}' but the champion by "
            f"'{champ_slices.get('column')}': the slice comparison is skipped.",
        )
    checks = _slice_group_checks(cand_slices, champ_slices, policy)
    if not checks:
        return _skipped_slices(
            limit, f"No slice of '{cand_slices.get('column')}' is large enough in both evaluations to compare."
        )
    return checks


def _budget_check(name: str, observed: Any, budget: float, what: str, unit: str) -> dict[str, Any]:
    value = finite(observed)
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


def _reasons(checks: list[dict[str, Any]], name: str, metric: str, value: float | None) -> list[str]:
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return [f"Promote {name}: all {len(checks)} checks passed on test {metric} {_fmt(value)}."] + [
            c["message"] for c in checks
        ]
    reasons = [
        f"Do not promote {name}: {len(failed)} of {len(checks)} checks failed ({', '.join(c['name'] for c in failed)})."
    ]
    reasons += [c["message"] for c in failed]
    reasons += [c["message"] for c in checks if c["skipped"]]
    return reasons


def decide_promotion(
    candidate: CandidateEvidence | Mapping[str, Any],
    champion: ChampionEvidence | Mapping[str, Any] | None,
    policy: GatePolicy | Mapping[str, Any],
) -> Decision:
    """Should the candidate replace the champion? Every check is kept, and the reasons say why.

    ``candidate`` and ``champion`` are the models' evidence: :func:`~modelops.training.evaluation.evaluate_model`
    dicts, the candidate's with its training-rule verdict (``training_passed``, ``failure_reasons``);
    plain dicts are read as such. ``force_promote`` skips only the primary-metric comparison with
    the champion (and says so); the training rules, the floor, the slice bounds and the budgets still apply.
    """
    cand, champ, rules = CandidateEvidence.of(candidate), ChampionEvidence.of(champion), GatePolicy.of(policy)
    metric, higher = rules.primary_metric, rules.higher_is_better
    value = cand.primary(metric)
    checks = [_training_check(cand), _floor_check(value, metric, rules.min_primary, higher)]
    checks += _champion_checks(value, champ, rules)
    checks += _slice_checks(cand, champ, rules)
    checks.append(
        _budget_check(
            "latency_budget",
            cand.evaluation.get("latency_ms_per_1k"),
            rules.max_latency_ms_per_1k,
            "prediction latency",
            "ms per 1,000 rows",
        )
    )
    checks.append(
        _budget_check("size_budget", cand.evaluation.get("model_size_mb"), rules.max_model_size_mb, "model size", "MB")
    )
    promote = all(c["passed"] for c in checks)
    reasons = _reasons(checks, cand.name, metric, value)
    log.info("%s", reasons[0])
    return Decision(
        promote=promote,
        reasons=reasons,
        checks=checks,
        policy=dataclasses.asdict(policy) if isinstance(policy, GatePolicy) else dict(policy),
        candidate=cand.to_dict(),
        champion=champ.to_dict() if champ is not None else None,
    )
