"""Validate a batch against its model's Great Expectations suite and explain any failure.

Suites are reviewed JSON files in ``expectations/<model>.json`` (see :mod:`modelops.data.suites`).
Validation runs in an ephemeral GX context: no project directory, no stores, nothing
written to disk; the result comes back as a plain :class:`ValidationOutcome` whose summary is the
message a failing task raises (what failed, where, with sample bad values).

GX spends most of a small file's validation on work that depends only on the suite: building the
suite, adding a data source (which re-serialises the context's config), the asset and batch
definition, and, inside every validation, the metric dependency graph of each expectation (about
half of a warm 2,000-row validation). Each process keeps all of that per suite file *content*
(:func:`prepared_suite`, keyed by the file's SHA-256, read on every call): the second validation
against the same suite only loads the batch, computes the metrics and judges them, and an edited
suite file is prepared afresh on its next use, never served stale. ``reuse=False`` builds
everything per call; the unit tests hold both paths to the same result.

``great_expectations`` takes seconds to import, so it is imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
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
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.batch_definition import BatchDefinition
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
    "prepared_suite",
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
    #: Seconds per step where the caller measured them (``parse``, ``validate``); not part of the verdict.
    timings: dict[str, float] = field(default_factory=dict)

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


@dataclass
class PreparedSuite:
    """What GX reuses between validations against one suite file content, in one process."""

    suite_sha256: str
    suite_json: dict[str, Any]
    suite: ExpectationSuite
    context: AbstractDataContext
    batch_definition: BatchDefinition
    #: GX objects are not thread-safe: one validation at a time per prepared suite.
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Metric dependency graphs per (batch id, runtime configuration): see :func:`_reuse_metric_graphs`.
    metric_graphs: dict[tuple, tuple[list, list]] = field(default_factory=dict)


#: Prepared suites of this process, most recently used last; a few suites per process at most.
_PREPARED: OrderedDict[tuple[str, str], PreparedSuite] = OrderedDict()
_PREPARED_LOCK = threading.Lock()
PREPARED_CACHE_SIZE = 8
#: How many suites (and metric graphs) this process built (tests count constructions, not time).
PREPARE_COUNT = {"prepared": 0, "reused": 0, "metric_graphs": 0}
#: The GX 1.x Validator method that builds every expectation's metric dependency graph.
_GRAPH_BUILDER = "_generate_metric_dependency_subgraphs_for_each_expectation_configuration"


def _suite_bytes(suite_path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(suite_path).read_bytes()
    except OSError as exc:
        raise SuiteError(f"{suite_path}: cannot read expectation suite: {exc}") from exc


def prepared_suite(suite_path: str | os.PathLike[str]) -> PreparedSuite:
    """This process's GX context, suite and batch definition for the suite file's current content.

    Keyed by (path, SHA-256 of the file's bytes), re-read on every call (a few KB): editing the
    suite file makes the next validation prepare the new content.
    """
    sha = hashlib.sha256(_suite_bytes(suite_path)).hexdigest()
    key = (str(Path(suite_path).resolve()), sha)
    with _PREPARED_LOCK:
        prepared = _PREPARED.get(key)
        if prepared is not None:
            _PREPARED.move_to_end(key)
            PREPARE_COUNT["reused"] += 1
            return prepared
        suite_json = load_suite(suite_path)
        suite = build_suite(suite_json, source=str(suite_path))
        context = make_context()
        source = context.data_sources.add_pandas(name=f"modelops_{sha[:12]}")
        definition = source.add_dataframe_asset(name="batch").add_batch_definition_whole_dataframe("whole_dataframe")
        prepared = PreparedSuite(sha, suite_json, suite, context, definition)
        _PREPARED[key] = prepared
        while len(_PREPARED) > PREPARED_CACHE_SIZE:
            _PREPARED.popitem(last=False)
        PREPARE_COUNT["prepared"] += 1
        log.info("prepared GX suite %s (%s) for reuse in this process", suite_path, sha[:12])
        return prepared


def validate_dataframe(
    df: pd.DataFrame,
    suite_path: str | os.PathLike[str],
    *,
    data_name: str,
    context: AbstractDataContext | None = None,
    reuse: bool = True,
) -> ValidationOutcome:
    """Validate ``df`` against the suite file; ``data_name`` (e.g. the S3 key) labels every message.

    By default GX's set-up is reused from :func:`prepared_suite`. With ``context`` (or
    ``reuse=False``) everything is built for this call in that context (or a fresh one), as
    before the reuse existed; the verdict and result are the same either way.
    """
    if context is None and reuse:
        prepared = prepared_suite(suite_path)
        suite_json = prepared.suite_json
        with prepared.lock:
            result = _validate_prepared(df, prepared)
    else:
        suite_json = load_suite(suite_path)
        result = _validate_fresh(df, build_suite(suite_json, source=str(suite_path)), context or make_context())
    return _outcome(result, suite_json, data_name)


def _validate_prepared(df: pd.DataFrame, prepared: PreparedSuite):
    """What ``ValidationDefinition.run`` does (a v1 Validator on the batch definition), with the
    suite's metric dependency graphs reused."""
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=prepared.batch_definition,
        batch_parameters={"dataframe": df},
        result_format=RESULT_FORMAT,
    )
    _reuse_metric_graphs(validator._wrapped_validator, prepared)
    return validator.validate_expectation_suite(prepared.suite)


def _reuse_metric_graphs(wrapped: Any, prepared: PreparedSuite) -> None:
    """Serve ``wrapped``'s per-expectation metric dependency graphs from ``prepared``.

    The graphs are a function of the expectation configurations (fixed by the suite content), the
    batch id (fixed by the batch definition) and the runtime configuration (the result format);
    the data only enters when the metrics are resolved. So the first validation builds them and
    the next ones reuse them; lists GX mutates are copied. A suite whose graph could not be built
    for some expectation is never cached. If GX no longer has the method (a version change),
    every validation builds its own graphs, as GX does by itself.
    """
    build = getattr(wrapped, _GRAPH_BUILDER, None)
    if build is None:
        log.warning("GX %s has no %s: metric graphs are built per validation", _gx_version(), _GRAPH_BUILDER)
        return

    def reuse(expectation_configurations, processed_configurations, catch_exceptions, runtime_configuration=None):
        key = (
            wrapped.active_batch_id,
            catch_exceptions,
            json.dumps(runtime_configuration, sort_keys=True, default=str),
        )
        cached = prepared.metric_graphs.get(key)
        if cached is None:
            graphs, errors, processed = build(
                expectation_configurations=expectation_configurations,
                processed_configurations=[],
                catch_exceptions=catch_exceptions,
                runtime_configuration=runtime_configuration,
            )
            if errors:
                processed_configurations.extend(processed)
                return graphs, errors, processed_configurations
            cached = prepared.metric_graphs[key] = (list(graphs), list(processed))
            PREPARE_COUNT["metric_graphs"] += 1
        graphs, processed = cached
        processed_configurations.extend(processed)
        return list(graphs), [], processed_configurations

    setattr(wrapped, _GRAPH_BUILDER, reuse)


def _gx_version() -> str:
    import great_expectations as gx

    return gx.__version__


def _validate_fresh(df: pd.DataFrame, suite: ExpectationSuite, context: AbstractDataContext):
    """Everything built for one call, then removed from ``context`` again."""
    source_name = f"modelops_{uuid.uuid4().hex[:12]}"  # unique, so a shared context never clashes
    source = context.data_sources.add_pandas(name=source_name)
    try:
        asset = source.add_dataframe_asset(name="batch")
        batch = asset.add_batch_definition_whole_dataframe("whole_dataframe").get_batch(
            batch_parameters={"dataframe": df}
        )
        return batch.validate(suite, result_format=RESULT_FORMAT)
    finally:
        context.data_sources.delete(source_name)


def _outcome(result, suite_json: dict[str, Any], data_name: str) -> ValidationOutcome:
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
