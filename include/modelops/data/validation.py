"""Validate a batch against its model's Great Expectations suite and explain any failure.

Suites are reviewed JSON files in ``expectations/<model>.json`` (see :mod:`modelops.data.suites`).
Validation runs in an ephemeral GX context: no project directory, no stores, nothing
written to disk; the result comes back as a plain :class:`ValidationOutcome` whose summary is the
message a failing task raises (what failed, where, with sample bad values).

``great_expectations`` takes seconds to import, so it is imported inside functions only.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelops.data.data_docs import render_data_docs_html
from modelops.data.failures import (
    MAX_SAMPLES,
    describe_failure,
    display_number,
    exception_text,
    summarize_failures,
    unexpected_text,
)
from modelops.data.suites import SuiteError, build_suite, load_suite
from modelops.jsonsafe import json_safe

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

#: What callers import from here: validation is the stage's entry point, suites, failure messages
#: and the HTML page are its parts.
__all__ = [
    "MAX_SAMPLES",
    "RESULT_FORMAT",
    "SuiteError",
    "ValidationFailed",
    "ValidationOutcome",
    "build_suite",
    "display_number",
    "exception_text",
    "load_suite",
    "make_context",
    "render_data_docs_html",
    "summarize_failures",
    "unexpected_text",
    "validate_dataframe",
]

#: Per-expectation detail GX returns: counts, percentages and up to 10 sample unexpected values.
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}


@dataclass
class ValidationOutcome:
    """What a validation found, in plain JSON-safe values (safe for XCom, logs and reports)."""

    suite_name: str
    data_name: str
    success: bool
    #: ``evaluated_expectations``, ``successful_expectations``, ``unsuccessful_expectations``, ``success_percent``.
    statistics: dict[str, Any]
    #: One dict per failed expectation; see :func:`describe_failure`.
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: The full GX result (``ExpectationSuiteValidationResult.to_json_dict()``).
    result_json: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A small summary for XCom: the full result belongs in a report file, not the metadata DB."""
        return {
            "suite_name": self.suite_name,
            "data_name": self.data_name,
            "success": self.success,
            "statistics": self.statistics,
            "failures": self.failures,
        }


class ValidationFailed(Exception):
    """Raised by callers that must stop on bad data; the message is :func:`summarize_failures`."""

    def __init__(self, outcome: ValidationOutcome) -> None:
        super().__init__(summarize_failures(outcome))
        self.outcome = outcome


def make_context() -> AbstractDataContext:
    """An in-memory GX context with progress bars off (they would litter task logs)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def validate_dataframe(
    df: pd.DataFrame,
    suite_path: str | os.PathLike[str],
    *,
    data_name: str,
    context: AbstractDataContext | None = None,
) -> ValidationOutcome:
    """Validate ``df`` against the suite file; ``data_name`` (e.g. the S3 key) labels every message.

    Pass ``context`` to reuse one GX context across calls (tests, loops); by default each call
    gets a fresh ephemeral one, which costs little next to the import.
    """
    suite_json = load_suite(suite_path)
    suite = build_suite(suite_json, source=str(suite_path))
    context = context if context is not None else make_context()
    source_name = f"modelops_{uuid.uuid4().hex[:12]}"  # unique, so a shared context never clashes
    source = context.data_sources.add_pandas(name=source_name)
    try:
        asset = source.add_dataframe_asset(name="batch", batch_metadata={"data_name": data_name})
        batch = asset.add_batch_definition_whole_dataframe("whole_dataframe").get_batch(
            batch_parameters={"dataframe": df}
        )
        result = batch.validate(suite, result_format=RESULT_FORMAT)
    finally:
        context.data_sources.delete(source_name)
    result_json = json_safe(result.to_json_dict())
    failures = [describe_failure(item) for item in result_json.get("results", []) if not item.get("success")]
    outcome = ValidationOutcome(
        suite_name=suite_json["name"],
        data_name=data_name,
        success=bool(result_json.get("success")),
        statistics=dict(result_json.get("statistics", {})),
        failures=failures,
        result_json=result_json,
    )
    log.info(
        "validated %s against suite %s: %s of %s expectations failed",
        data_name,
        outcome.suite_name,
        len(failures),
        outcome.statistics.get("evaluated_expectations"),
    )
    return outcome
