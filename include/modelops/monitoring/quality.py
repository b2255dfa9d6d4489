"""Live traffic against the baseline's data constraints, run as a Great Expectations suite.

The suite is derived from the training baseline (``modelops.data.baseline``), so monitoring
checks served rows against exactly what training accepted; each violation is reported with what
was expected, what was observed and sample values, for the report and its HTML page.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.jsonsafe import json_safe
from modelops.monitoring.capture_format import KEYS
from modelops.monitoring.sample import QUALITY_SAMPLE_ROWS, QualitySample

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)


def data_quality(
    baseline: Mapping[str, Any],
    frame_chunks: Iterable[pd.DataFrame],
    *,
    max_rows: int = QUALITY_SAMPLE_ROWS,
    data_name: str = "live traffic",
    context: Any = None,
) -> dict[str, Any]:
    """Live data against the baseline's constraints (as a GX suite), on a bounded sample.

    The chunks are sampled with :class:`QualitySample` (at most ``max_rows`` rows, bottom-k by
    record-key hash), so any number of chunks is fine. Returns ``{status: ok | violations |
    no_data, suite_name, message, sample: {method, rows, max_rows, seen_rows},
    evaluated_expectations, violations: [...]}``; each violation names the expectation, the
    column, what was expected, what was observed and sample values.
    """
    from modelops.data.baseline import constraints_to_gx_suite
    from modelops.data.validation import summarize_failures, validate_dataframe

    features = list(baseline["features"])
    sampler = QualitySample(max_rows, columns=[*KEYS, *features])
    for chunk in frame_chunks:
        sampler.add(chunk)
    suite_name = f"{baseline.get('model') or 'model'}_monitoring"
    sample_info = {"method": sampler.method, "rows": len(sampler), "max_rows": max_rows, "seen_rows": sampler.seen}
    if len(sampler) == 0:
        return {
            "status": "no_data",
            "suite_name": suite_name,
            "message": f"{data_name}: no rows to validate",
            "sample": sample_info,
            "evaluated_expectations": 0,
            "violations": [],
        }
    sample = sampler.frame
    sample = sample[[c for c in sample.columns if c in features]]
    suite = constraints_to_gx_suite(baseline["constraints"], suite_name)
    with tempfile.TemporaryDirectory(prefix="modelops-monitor-") as folder:
        path = Path(folder) / f"{suite_name}.json"
        path.write_text(json.dumps(suite))
        outcome = validate_dataframe(sample, path, data_name=data_name, context=context)
    violations = [_violation(failure) for failure in outcome.failures]
    return json_safe(
        {
            "status": "ok" if outcome.success else "violations",
            "suite_name": suite_name,
            "message": summarize_failures(outcome),
            "sample": sample_info,
            "evaluated_expectations": outcome.statistics.get("evaluated_expectations"),
            "violations": violations,
        }
    )


def _violation(failure: Mapping[str, Any]) -> dict[str, Any]:
    from modelops.data import validation

    kwargs = {k: validation.display_number(v) for k, v in (failure.get("kwargs") or {}).items()}
    if "value_set" in kwargs and len(kwargs["value_set"]) > 20:
        kwargs["value_set"] = [*kwargs["value_set"][:20], f"... ({len(kwargs['value_set'])} values)"]
    if failure.get("exception"):
        observed = validation.exception_text(failure)
    elif failure.get("mismatched"):
        observed = "; ".join(f"{k}: {sorted(v)}" for k, v in failure["mismatched"].items() if v)
    elif failure.get("unexpected_count") is not None:
        observed = validation.unexpected_text(failure)
    else:
        observed = f"observed {validation.display_number(failure.get('observed_value'))!r}"
    return {
        "expectation": failure.get("expectation_type"),
        "column": failure.get("column"),
        "expected": kwargs,
        "observed": observed,
        "observed_value": failure.get("observed_value"),
        "unexpected_count": failure.get("unexpected_count"),
        "unexpected_percent": failure.get("unexpected_percent"),
        "element_count": failure.get("element_count"),
        "sample_values": list(failure.get("sample_unexpected_values") or []),
    }
