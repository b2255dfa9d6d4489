"""What the training steps hand each other across XCom: small frozen records and their JSON form.

The keys of each JSON form are what the retrain DAG, its approval message, the integration
tests and the decision record read; a record names them once so the steps use fields, not
string indexing.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from modelops.records import Record

log = logging.getLogger(__name__)

#: The XCom keys under which ``register`` (a branch: its return value names the next task) leaves
#: the registered version and the gate's decision for ``promote``, the approval's message and
#: ``python -m modelops.submit``. Taking the decision from ``register`` rather than from ``gate``
#: keeps ``promote`` downstream of ``register`` and ``approve_promotion`` only, so it is skipped
#: whenever ``register`` is.
REGISTERED, DECIDED = "registered", "decided"

#: The keys of a candidate's result that ``select_best`` passes on to evaluate, gate and register.
BEST_FIELDS = (
    "candidate",
    "cv_primary",
    "mlflow_run_id",
    "model_uri",
    "parent_run_id",
    "passed",
    "failure_reasons",
    "selection",
    "params",
)


@dataclasses.dataclass(frozen=True)
class ParentRun(Record):
    """The MLflow parent run of the retrain run: candidates nest under it."""

    parent_run_id: str
    experiment_id: str


@dataclasses.dataclass(frozen=True)
class BestCandidate(Record):
    """The candidate that goes on to evaluation and the gate (passing or, if none passed, not)."""

    candidate: str
    cv_primary: float | None
    mlflow_run_id: str
    model_uri: str
    parent_run_id: str
    passed: bool
    failure_reasons: list[str]
    selection: dict[str, Any]
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Evaluated(Record):
    """Where the held-out evaluation is, and the primary metric of candidate and champion."""

    evaluation_uri: str
    candidate_primary: float | None
    champion_primary: float | None
    champion_version: str | None


@dataclasses.dataclass(frozen=True)
class GateDecision(Record):
    """What ``gate`` returns: the verdict (``promote``), its reasons, and where the record is."""

    promote: bool
    dry_run: bool
    reasons: list[str]
    failed_checks: list[str]
    decision_uri: str
    champion_version_compared: str | None

    @property
    def allows_promotion(self) -> bool:
        """Register and promote only on a passed gate outside a dry run."""
        return bool(self.promote and not self.dry_run)


@dataclasses.dataclass(frozen=True)
class Registered(Record):
    """The registry version the run created (or found again on a re-run)."""

    version: str
    model_uri: str
