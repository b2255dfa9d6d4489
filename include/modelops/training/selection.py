"""Choosing the candidate that goes to the gate: the best passing CV primary, near-ties to the
cheaper model, with the ranking and the reason recorded in words.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from modelops.config import ModelConfig
from modelops.metrics import higher_is_better
from modelops.training.search_spaces import RELATIVE_COST

log = logging.getLogger(__name__)


class NoViableCandidate(RuntimeError):
    """Every candidate failed its training rules; ``failures`` maps candidate -> reasons."""

    def __init__(self, message: str, failures: dict[str, list[str]]):
        super().__init__(message)
        self.failures = failures


#: Two CV primaries closer than this are a tie, and the cheaper model wins it.
TIE_TOLERANCE = 1e-3


def select_best(results: list[dict[str, Any]], config: ModelConfig) -> dict[str, Any]:
    """The passed candidate with the best CV primary; near-ties go to the cheaper model.

    Returns a copy of the winner's ``CandidateResult.to_dict()`` with a ``selection`` entry
    (ranking and the reason in words). Raises :class:`NoViableCandidate` when none passed.
    """
    primary = config.metrics.primary
    if not results:
        raise NoViableCandidate(f"{config.name}: no candidate results to select from", {})

    def cost(r: dict[str, Any]) -> float:
        return float(r.get("relative_cost", RELATIVE_COST.get(r["candidate"], math.inf)))

    def value(r: dict[str, Any]) -> float | None:
        v = r.get("cv_primary")
        if v is None:
            v = r.get("cv_metrics", {}).get(primary, {}).get("mean")
        return v

    viable = [r for r in results if r.get("passed") and value(r) is not None]
    if not viable:
        failures = {r["candidate"]: list(r.get("failure_reasons") or ["no CV score"]) for r in results}
        lines = [f"  - {name}: {' '.join(reasons)}" for name, reasons in failures.items()]
        raise NoViableCandidate(
            f"{config.name}: no candidate passed the training rules:\n" + "\n".join(lines), failures
        )
    sign = 1.0 if higher_is_better(primary) else -1.0
    best_value = max(sign * value(r) for r in viable)
    tied = [r for r in viable if best_value - sign * value(r) <= TIE_TOLERANCE]
    winner = min(tied, key=lambda r: (cost(r), -sign * value(r)))

    def rank(r: dict[str, Any]) -> tuple[bool, bool, float]:
        v = value(r)
        return (not r.get("passed"), v is None, -sign * v if v is not None else 0.0)

    ranking = sorted(results, key=rank)
    if len(tied) > 1:
        reason = (
            f"{winner['candidate']} selected: CV {primary} {value(winner):.4f} ties (within {TIE_TOLERANCE:g}) with "
            f"{', '.join(r['candidate'] for r in tied if r is not winner)} and it is the cheapest."
        )
    else:
        reason = f"{winner['candidate']} selected: best CV {primary} {value(winner):.4f} among {len(viable)} passing candidate(s)."
    skipped = [r["candidate"] for r in results if not r.get("passed")]
    if skipped:
        reason += f" Skipped for failed training rules: {', '.join(skipped)}."
    out = dict(winner)
    out["selection"] = {
        "primary_metric": primary,
        "reason": reason,
        "ranking": [
            {
                "candidate": r["candidate"],
                "cv_primary": value(r),
                "passed": bool(r.get("passed")),
                "relative_cost": cost(r),
            }
            for r in ranking
        ],
    }
    if winner.get("training_rows"):  # what the search and the final fit read of the window
        out["selection"]["training_rows"] = dict(winner["training_rows"])
    log.info(reason)
    return out
