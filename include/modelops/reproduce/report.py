"""The outcome of a reproduction: a verdict, the reasons naming what differs, every input compared,
and the comparison of the rebuilt model with the registered one; as text for a person, as JSON
for a program, and as an exit status for a script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelops.reproduce.inputs import SAME, UNKNOWN, InputCheck

MATCH = "match"
MISMATCH = "mismatch"
NOT_REPRODUCIBLE = "not reproducible"
#: Exit status per verdict (2 is argparse's own for bad arguments).
EXIT_STATUS = {MATCH: 0, MISMATCH: 1, NOT_REPRODUCIBLE: 3}


@dataclass
class Report:
    model: str
    version: str
    verdict: str
    reasons: list[str]
    inputs: list[InputCheck] = field(default_factory=list)
    lineage: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]

    @property
    def changed_inputs(self) -> list[InputCheck]:
        return [check for check in self.inputs if check.status not in (SAME, UNKNOWN)]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "verdict": self.verdict,
            "reproduced": self.verdict == MATCH,
            "reasons": list(self.reasons),
            "changed_inputs": [c.subject for c in self.changed_inputs],
            "inputs": [c.to_json() for c in self.inputs],
            "lineage": self.lineage,
            "comparison": self.comparison,
        }

    def to_text(self) -> str:
        head = {MATCH: "REPRODUCED", MISMATCH: "NOT REPRODUCED", NOT_REPRODUCIBLE: "CANNOT BE REBUILT"}[self.verdict]
        lines = [f"{self.model} version {self.version}: {head}"]
        lines += [f"  - {reason}" for reason in self.reasons]
        if self.lineage:
            lin = self.lineage
            lines += [
                "",
                "lineage:",
                f"  candidate {lin['candidate']} with params {lin['params']} (seed {lin['random_seed']}, "
                f"OpenMP threads {lin.get('openmp_threads') or 'not recorded'})",
                f"  training run {lin['mlflow_run_id']} (Airflow run {lin['airflow_run_id']})",
                f"  snapshot {lin['manifest_uri']} (dataset hash {str(lin['dataset_hash'])[:16]}…)",
                f"  declaration: {lin['declaration_source']}",
            ]
        if self.comparison:
            lines += ["", "comparison on the evaluation split:", *_comparison_lines(self.comparison)]
        if self.inputs:
            lines += ["", "inputs, then versus now:"]
            lines += [f"  {'!' if c.blocks else '*' if c.status not in (SAME, UNKNOWN) else ' '} {c.describe()}"
                      for c in self.inputs]  # fmt: skip
        return "\n".join(lines)


def _comparison_lines(comparison: dict[str, Any]) -> list[str]:
    predictions, digest = comparison["predictions"], comparison["model_digest"]
    lines = [
        f"  predictions: {'identical' if predictions['identical'] else 'DIFFER'} on {predictions['rows']} rows"
        + ("" if predictions["identical"] else f" ({predictions['rows_differing']} differ)")
    ]
    probabilities = comparison.get("probabilities")
    if probabilities is not None:
        lines.append(f"  probabilities: {'identical' if probabilities['identical'] else 'DIFFER'}"
                     f" (max |difference| {probabilities['max_abs_difference']})")  # fmt: skip
    if comparison["deterministic"]:
        lines.append(f"  model bytes (canonical digest): {'identical' if digest['identical'] else 'DIFFER'} "
                     f"({digest['registered'][:16]}… registered, {digest['rebuilt'][:16]}… rebuilt)")  # fmt: skip
    else:
        lines.append(
            f"  model bytes: not compared, the estimator is not deterministic ({comparison['random_parameters']})"
        )
    return lines


def judge(model: str, version: str, inputs: list[InputCheck], lineage: dict, comparison: dict) -> Report:
    """The verdict of a rebuild: a match needs identical predictions and probabilities, and identical
    model bytes where the estimator is deterministic; each difference is a reason, followed by the
    inputs that changed since (the likely causes)."""
    reasons = []
    predictions, probabilities = comparison["predictions"], comparison.get("probabilities")
    if not predictions["identical"]:
        reasons.append(
            f"predictions differ on {predictions['rows_differing']} of {predictions['rows']} evaluation rows"
        )
    if probabilities is not None and not probabilities["identical"]:
        reasons.append(f"probabilities differ (max |difference| {probabilities['max_abs_difference']})")
    if comparison["deterministic"] and not comparison["model_digest"]["identical"]:
        reasons.append("model bytes differ (canonical digest of the fitted pipeline)")
    verdict = MISMATCH if reasons else MATCH
    if not reasons:
        bytes_note = (
            "identical model bytes" if comparison["deterministic"] else "model bytes not compared (not deterministic)"
        )
        reasons.append(f"identical predictions on {predictions['rows']} evaluation rows, {bytes_note}")
    changed = [c for c in inputs if c.status not in (SAME, UNKNOWN)]
    if changed:
        prefix = "changed since training (likely cause)" if verdict == MISMATCH else "changed since training"
        reasons.append(f"{prefix}: " + "; ".join(c.describe() for c in changed))
    return Report(model, version, verdict, reasons, inputs, lineage, comparison)
