"""Expectation suites: the reviewed JSON files in ``expectations/<model>.json``, read and built strictly.

Suites are in the format GX 1.x writes (``ExpectationSuite.to_json_dict()``), so people review
them like code and GX loads them unchanged. Both readers refuse what GX would silently drop (an
unknown key, an expectation it cannot build): a dropped check would let bad data through.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

log = logging.getLogger(__name__)

_SUITE_KEYS = {"name", "id", "expectations", "meta", "notes", "suite_parameters"}
_EXPECTATION_KEYS = {"type", "kwargs", "meta", "notes", "description", "severity", "id", "rendered_content"}


class SuiteError(ValueError):
    """A suite file is unreadable or holds an expectation GX does not know; names file and entry."""


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
