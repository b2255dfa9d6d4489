"""The gate's decision record: what was decided, on what evidence, by which run.

``decisions/<model>/<run_id>.json`` must explain itself to someone who was not there; this module
assembles it from the gate's :class:`~modelops.training.gate.Decision` and the URIs every earlier
step returned, so :func:`modelops.training.steps.gate` only gathers inputs and writes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from modelops.records import Record
from modelops.training.gate import Decision
from modelops.training.results import BestCandidate, Evaluated

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class GateEvidence(Record):
    """Where the data, its validation, its baseline, the evaluation and the candidate are."""

    manifest_uri: str
    dataset_hash: str
    validation_uri: str
    data_docs_uri: str
    baseline_uri: str
    evaluation_uri: str
    candidate_run_id: str
    parent_run_id: str
    model_uri: str
    excluded_batches: list[dict[str, Any]]

    @classmethod
    def of(cls, snapshot: dict, validation: dict, baseline: dict, evaluated: Evaluated, best: BestCandidate):
        """From the JSON forms the snapshot, validation and baseline steps returned."""
        return cls(
            manifest_uri=snapshot["manifest_uri"],
            dataset_hash=snapshot["dataset_hash"],
            validation_uri=validation["result_uri"],
            data_docs_uri=validation["data_docs_uri"],
            baseline_uri=baseline["baseline_uri"],
            evaluation_uri=evaluated.evaluation_uri,
            candidate_run_id=best.mlflow_run_id,
            parent_run_id=best.parent_run_id,
            model_uri=best.model_uri,
            excluded_batches=snapshot.get("excluded", []),
        )


def decision_record_of(
    decision: Decision,
    model: str,
    dag_id: str,
    run_id: str,
    decided_at: str,
    dry_run: bool,
    best: BestCandidate,
    evidence: GateEvidence,
    evaluated: Evaluated,
) -> dict[str, Any]:
    """The record the gate writes (before any ``earlier_decisions`` or ``attempts`` are carried over)."""
    return decision.to_dict() | {
        "model": model,
        "airflow_dag_id": dag_id,
        "airflow_run_id": run_id,
        "decided_at": decided_at,
        "dry_run": dry_run,
        "selection": best.selection,
        "evidence": dataclasses.asdict(evidence),
        "champion_version_compared": evaluated.champion_version,
    }
