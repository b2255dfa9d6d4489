"""Validate a batch against its model's Great Expectations suite and explain any failure.

Suites are reviewed JSON files in ``expectations/<model>.json``, in the format GX 1.x writes
(``ExpectationSuite.to_json_dict()``), so people review them like code and GX can load them
unchanged. Validation runs in an ephemeral GX context: no project directory, no stores, nothing
written to disk; the result comes back as a plain :class:`ValidationOutcome` whose summary is the
message a failing task raises (what failed, where, with sample bad values).

``great_expectations`` takes seconds to import, so it is imported inside functions only.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
import math
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

#: Per-expectation detail GX returns: counts, percentages and up to 10 sample unexpected values.
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
MAX_SAMPLES = 10
_SUITE_KEYS = {"name", "id", "expectations", "meta", "notes", "suite_parameters"}
_EXPECTATION_KEYS = {"type", "kwargs", "meta", "notes", "description", "severity", "id", "rendered_content"}


class SuiteError(ValueError):
    """A suite file is unreadable or holds an expectation GX does not know; names file and entry."""


@dataclass
class ValidationOutcome:
    """What a validation found, in plain JSON-safe values (safe for XCom, logs and reports)."""

    suite_name: str
    data_name: str
    success: bool
    #: ``evaluated_expectations``, ``successful_expectations``, ``unsuccessful_expectations``, ``success_percent``.
    statistics: dict[str, Any]
    #: One dict per failed expectation; see :func:`_describe_failure`.
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


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------


def load_suite(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a suite file and check its shape; GX-level checks happen in :func:`build_suite`."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read expectation suite: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: expected a JSON object with 'name' and 'expectations', got {type(raw).__name__}")
    unknown = sorted(set(raw) - _SUITE_KEYS)
    if unknown:
        raise SuiteError(f"{path}: unknown top-level key(s) {unknown}; a GX 1.x suite has {sorted(_SUITE_KEYS)}")
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise SuiteError(f"{path}: field 'name' must be a non-empty string")
    expectations = raw.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise SuiteError(f"{path}: field 'expectations' must be a non-empty list")
    for index, item in enumerate(expectations):
        where = f"{path}: expectations[{index}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("kwargs"), dict)
        ):
            raise SuiteError(f"{where}: each expectation needs a string 'type' and an object 'kwargs'")
        if "expectation_type" in item:
            raise SuiteError(f"{where}: 'expectation_type' is the GX 0.x spelling; GX 1.x uses 'type'")
        extra = sorted(set(item) - _EXPECTATION_KEYS)
        if extra:
            raise SuiteError(f"{where} ({item['type']}): unknown key(s) {extra}")
    return raw


def build_suite(suite_json: dict[str, Any], *, source: str = "<suite>") -> ExpectationSuite:
    """A GX suite from its JSON, refusing unknown or invalid expectations.

    ``ExpectationSuite(**json)`` logs and silently drops an expectation it cannot build; a
    dropped check would let bad data through, so each one is built here first.
    """
    import great_expectations as gx
    from great_expectations.exceptions import GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built = []
    problems = []
    for index, item in enumerate(suite_json["expectations"]):
        config = {k: v for k, v in item.items() if k != "rendered_content"}
        try:
            built.append(ExpectationConfiguration(**config).to_domain_obj())
        except (GreatExpectationsError, TypeError, ValueError) as exc:  # pydantic errors are ValueErrors
            message = getattr(exc, "message", None) or str(exc)
            problems.append(f"  - expectations[{index}] {item.get('type')}: {message.splitlines()[0]}")
    if problems:
        raise SuiteError(f"{source}: invalid expectation(s):\n" + "\n".join(problems))
    return gx.ExpectationSuite(
        name=suite_json["name"],
        expectations=built,
        suite_parameters=suite_json.get("suite_parameters") or {},
        meta=suite_json.get("meta") or {},
        notes=suite_json.get("notes"),
    )


def make_context() -> AbstractDataContext:
    """An in-memory GX context with progress bars off (they would litter task logs)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


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
    result_json = _json_safe(result.to_json_dict())
    failures = [_describe_failure(item) for item in result_json.get("results", []) if not item.get("success")]
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


def _json_safe(value: Any) -> Any:
    """Plain JSON types only (GX leaves numpy scalars and NaN in places)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if hasattr(value, "item"):  # numpy scalar
        return _json_safe(value.item())
    if isinstance(value, (datetime.date, datetime.datetime, pd.Timestamp)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _exception_message(item: dict[str, Any]) -> str | None:
    """GX reports errors either flat or keyed by metric id; return the first message."""
    info = item.get("exception_info") or {}
    if info.get("raised_exception"):
        return info.get("exception_message")
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return nested.get("exception_message")
    return None


def _samples(result: dict[str, Any]) -> list[Any]:
    """Distinct sample unexpected values, most frequent first when GX counted them."""
    counted = [entry.get("value") for entry in result.get("partial_unexpected_counts") or []]
    values: list[Any] = []
    for value in counted + list(result.get("partial_unexpected_list") or []):
        if value not in values:
            values.append(value)
    return values[:MAX_SAMPLES]


def _describe_failure(item: dict[str, Any]) -> dict[str, Any]:
    """One failed expectation as the fields a person needs: where, what was expected, what was seen."""
    config = item.get("expectation_config") or {}
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k not in {"batch_id", "column"}}
    result = item.get("result") or {}
    failure: dict[str, Any] = {
        "expectation_type": config.get("type"),
        "column": (config.get("kwargs") or {}).get("column"),
        "kwargs": kwargs,
        "observed_value": result.get("observed_value"),
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": result.get("unexpected_percent"),
        "element_count": result.get("element_count"),
        "sample_unexpected_values": _samples(result),
        "exception": _exception_message(item),
        "notes": config.get("notes"),
    }
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        failure["mismatched"] = mismatched
    return failure


# --------------------------------------------------------------------------------------------
# Messages and reports
# --------------------------------------------------------------------------------------------


def display_number(value: Any) -> Any:
    """Floats rounded for display to 4 significant digits (31.380000000000003 -> 31.38)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, list | tuple):
        return [display_number(v) for v in value]
    return value


def unexpected_text(failure: dict[str, Any]) -> str:
    """``1926 of 2000 values unexpected (96.3%)``: the share of all rows checked, not of non-nulls."""
    count, total = failure["unexpected_count"], failure.get("element_count")
    share = f" ({display_number(100.0 * count / total)}%)" if total else ""
    return f"{count} of {total} values unexpected{share}"


def exception_text(failure: dict[str, Any]) -> str:
    """The plain problem behind a GX evaluation error (a missing column, a changed type), then GX's words."""
    message = str(failure.get("exception") or "").strip()
    detail = message.splitlines()[-1] if message else "unknown error"
    column = failure.get("column")
    if column and "does not exist" in message.lower():
        return f"column '{column}' is missing from the data (GX: {_short(detail, 120)})"
    if column:
        return f"column '{column}' could not be checked, its type may have changed (GX: {_short(detail, 120)})"
    return f"could not be evaluated: {_short(detail, 160)}"


def _short(value: Any, limit: int = 80) -> str:
    value = display_number(value)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected_text(failure: dict[str, Any]) -> str:
    kwargs = failure["kwargs"]
    if "column_set" in kwargs:
        return (
            f"exactly {len(kwargs['column_set'])} declared columns"
            if kwargs.get("exact_match", True)
            else "the declared columns"
        )
    kind = failure.get("expectation_type") or ""
    if kind == "expect_column_values_to_not_be_null":
        mostly = kwargs.get("mostly")
        return f"at most {1 - mostly:.0%} nulls" if mostly is not None else "no nulls"
    if kind == "expect_column_values_to_be_unique":
        return "unique values"
    if "min_value" in kwargs or "max_value" in kwargs:
        text = f"between {display_number(kwargs.get('min_value'))} and {display_number(kwargs.get('max_value'))}"
    elif "value_set" in kwargs:
        text = f"in {_short(kwargs['value_set'])}"
    elif "type_list" in kwargs:
        text = f"type in {_short(kwargs['type_list'])}"
    elif "regex" in kwargs:
        text = f"matching {kwargs['regex']!r}"
    else:
        text = ", ".join(f"{k}={_short(v, 40)}" for k, v in kwargs.items() if k != "mostly") or "to hold"
    if kwargs.get("mostly") is not None:
        text += f" for at least {kwargs['mostly']:.0%} of rows"
    return text


def _observed_text(failure: dict[str, Any]) -> str:
    if failure.get("exception"):
        return exception_text(failure)
    if failure.get("mismatched"):
        parts = [f"{k}: {sorted(v)}" for k, v in failure["mismatched"].items() if v]
        return "; ".join(parts)
    if failure.get("unexpected_count") is not None:
        text = unexpected_text(failure)
        if failure["sample_unexpected_values"]:
            text += "; e.g. " + ", ".join(_short(v, 30) for v in failure["sample_unexpected_values"])
        return text
    return f"observed {_short(failure.get('observed_value'))}"


def summarize_failures(outcome: ValidationOutcome, *, source: str | None = None) -> str:
    """The message a failed validation task raises: what failed, where, and sample bad values.
    ``source`` (a file's name or URI) is named on every failure line when given."""
    evaluated = outcome.statistics.get("evaluated_expectations", "?")
    if outcome.success:
        return f"{outcome.data_name}: all {evaluated} expectations of suite '{outcome.suite_name}' passed"
    if isinstance(evaluated, int) and evaluated < len(outcome.failures):  # e.g. an unreadable file
        head = f"{outcome.data_name}: could not be validated against suite '{outcome.suite_name}':"
    else:
        head = f"{outcome.data_name}: {len(outcome.failures)} of {evaluated} expectations of suite '{outcome.suite_name}' failed:"
    lines = [head]
    for failure in outcome.failures:
        where = f"column '{failure['column']}'" if failure.get("column") else "table"
        if source:
            where = f"{source}: {where}"
        lines.append(
            f"  - {where}: {failure['expectation_type']}: expected {_expected_text(failure)}; {_observed_text(failure)}"
        )
    lines.append("Fix the data (or, if the data is right and the rule is wrong, the suite) and re-run.")
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.meta{color:#59636e;font-size:.9rem}.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;width:100%;font-size:.88rem}th,td{border:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.failed td{background:#fff5f5}td.status{font-weight:600;white-space:nowrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-word}
.stats td{width:auto}.note{color:#59636e;font-size:.82rem}
"""


def render_data_docs_html(outcome: ValidationOutcome) -> str:
    """A self-contained HTML report of the result (no CDN assets, so it opens offline and as an artifact).

    GX's own Data Docs renderer loads Bootstrap, jQuery and Vega from CDNs; this page keeps the
    same content (statistics, then every expectation with its observed value) inline.
    """
    esc = html.escape
    result = outcome.result_json
    stats = outcome.statistics
    meta = result.get("meta") or {}
    status = '<span class="badge pass">passed</span>' if outcome.success else '<span class="badge fail">failed</span>'
    rows = []
    for item in sorted(result.get("results", []), key=lambda r: (bool(r.get("success")), _column_of(r) or "")):
        failure = _describe_failure(item)
        ok = bool(item.get("success"))
        observed = _observed_text(failure) if not ok or failure.get("exception") else _passing_observation(failure)
        rows.append(
            f'<tr class="{"passed" if ok else "failed"}"><td class="status">{"&#10003; pass" if ok else "&#10007; fail"}</td>'
            f"<td>{esc(failure['column'] or '(table)')}</td><td><code>{esc(str(failure['expectation_type']))}</code>"
            f"{'<div class=note>' + esc(failure['notes']) + '</div>' if failure.get('notes') else ''}</td>"
            f"<td>{esc(_expected_text(failure))}</td><td>{esc(observed)}</td></tr>"
        )
    stat_rows = "".join(
        f"<tr><th>{esc(k.replace('_', ' '))}</th><td>{esc(f'{v:.1f}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in stats.items()
    )
    info = {
        "suite": outcome.suite_name,
        "data": outcome.data_name,
        "great_expectations_version": meta.get("great_expectations_version"),
        "batch loaded at": (meta.get("batch_markers") or {}).get("ge_load_time"),
        "data fingerprint": (meta.get("batch_markers") or {}).get("pandas_data_fingerprint"),
    }
    info_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in info.items() if v)
    title = f"Validation of {outcome.data_name} against suite {outcome.suite_name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)} {status}</h1>"
        f'<p class="meta">{esc(str(stats.get("successful_expectations", "?")))} of '
        f"{esc(str(stats.get('evaluated_expectations', '?')))} expectations met.</p>"
        f'<h2>Statistics</h2><table class="stats">{stat_rows}</table>'
        f"<h2>Expectations</h2><table><thead><tr><th>Status</th><th>Column</th><th>Expectation</th>"
        f"<th>Expected</th><th>Observed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<h2>Run</h2><table class="stats">{info_rows}</table>'
        "</body></html>\n"
    )


def _column_of(item: dict[str, Any]) -> str | None:
    return ((item.get("expectation_config") or {}).get("kwargs") or {}).get("column")


def _passing_observation(failure: dict[str, Any]) -> str:
    if failure.get("unexpected_count") is not None:
        return f"{failure['unexpected_count']} of {failure.get('element_count')} values unexpected"
    return f"observed {_short(failure.get('observed_value'))}"
