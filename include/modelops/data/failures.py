"""Failed expectations in words: the fields a person needs, and the message a failing task raises.

GX's result JSON is thorough but not readable; these turn one failed expectation into "where,
what was expected, what was seen, sample bad values", used by task errors, ingestion and
monitoring reports and the HTML page (:mod:`modelops.data.data_docs`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.data.validation import ValidationOutcome

log = logging.getLogger(__name__)

MAX_SAMPLES = 10


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


def describe_failure(item: dict[str, Any]) -> dict[str, Any]:
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
        return f"column '{column}' is missing from the data (GX: {short_text(detail, 120)})"
    if column:
        return f"column '{column}' could not be checked, its type may have changed (GX: {short_text(detail, 120)})"
    return f"could not be evaluated: {short_text(detail, 160)}"


def short_text(value: Any, limit: int = 80) -> str:
    value = display_number(value)
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expected_text(failure: dict[str, Any]) -> str:
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
        text = f"in {short_text(kwargs['value_set'])}"
    elif "type_list" in kwargs:
        text = f"type in {short_text(kwargs['type_list'])}"
    elif "regex" in kwargs:
        text = f"matching {kwargs['regex']!r}"
    else:
        text = ", ".join(f"{k}={short_text(v, 40)}" for k, v in kwargs.items() if k != "mostly") or "to hold"
    if kwargs.get("mostly") is not None:
        text += f" for at least {kwargs['mostly']:.0%} of rows"
    return text


def observed_text(failure: dict[str, Any]) -> str:
    if failure.get("exception"):
        return exception_text(failure)
    if failure.get("mismatched"):
        parts = [f"{k}: {sorted(v)}" for k, v in failure["mismatched"].items() if v]
        return "; ".join(parts)
    if failure.get("unexpected_count") is not None:
        text = unexpected_text(failure)
        if failure["sample_unexpected_values"]:
            text += "; e.g. " + ", ".join(short_text(v, 30) for v in failure["sample_unexpected_values"])
        return text
    return f"observed {short_text(failure.get('observed_value'))}"


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
            f"  - {where}: {failure['expectation_type']}: expected {expected_text(failure)}; {observed_text(failure)}"
        )
    lines.append("Fix the data (or, if the data is right and the rule is wrong, the suite) and re-run.")
    return "\n".join(lines)
