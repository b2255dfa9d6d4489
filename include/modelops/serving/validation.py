"""Request validation: pure functions of the model's config that name every problem.

A predict body is checked against ``include/models/<model>.yaml`` (not the artifact), so a bad
request gets a 422 naming the record and the field, never a 500. This is the row-by-row path:
the request path only comes here when :func:`modelops.serving.columns.fast_columns` finds
something unusual, so the wording can take its time.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelops.config import Feature, ModelConfig
from modelops.serving.problems import RequestInvalid, describe_value, problem
from modelops.serving.schemas import PredictRequest

log = logging.getLogger(__name__)

_BODY_KEYS = ("records", "record")


# Body shape ---------------------------------------------------------------------------------------


def parse_json_body(raw: bytes, content_type: str | None) -> Any:
    """The request body as Python values, or :class:`RequestInvalid` in FastAPI's own shapes."""
    if not raw:
        raise RequestInvalid(
            [problem("missing", ["body"], "Field required: send a JSON object with 'records' or 'record'")]
        )
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise RequestInvalid(
                [problem("content_type", ["header", "content-type"], f"send the body as JSON ('Content-Type: application/json'), not {media!r}")]
            )  # fmt: skip
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        # orjson refuses what Python's json accepts: NaN/Infinity literals, integers beyond 64 bits.
        # Those are parsed the lenient way, so that validation can name the field and the value.
        return json.loads(raw)
    except ValueError as exc:
        position = getattr(exc, "pos", 0)
        return_msg = getattr(exc, "msg", str(exc))
        raise RequestInvalid(
            [problem("json_invalid", ["body", position], f"JSON decode error: {return_msg}")]
        ) from None


def records_of_body(body: Any, max_batch: int) -> tuple[list[dict], tuple]:
    """Shape check of a predict body (what :class:`PredictRequest` declares), then :func:`records_of`."""
    if not isinstance(body, dict):
        raise RequestInvalid(
            [problem("model_attributes_type", ["body"], f"the body must be a JSON object with 'records' or 'record', got {describe_value(body)}")]
        )  # fmt: skip
    problems = [
        problem("extra_forbidden", ["body", key], f"unknown key '{key}': send 'records': [{{...}}, ...] or 'record': {{...}}", field=key)
        for key in body
        if key not in _BODY_KEYS
    ]  # fmt: skip
    records, single = body.get("records"), body.get("record")
    if records is not None:
        if not isinstance(records, list):
            problems.append(
                problem("list_type", ["body", "records"], f"'records' must be a list of objects, got {describe_value(records)}", field="records")
            )  # fmt: skip
        else:
            problems += [
                problem("dict_type", ["body", "records", index], f"records[{index}] must be an object (feature -> value), got {describe_value(item)}", index=index)
                for index, item in enumerate(records)
                if not isinstance(item, dict)
            ]  # fmt: skip
    if single is not None and not isinstance(single, dict):
        problems.append(
            problem("dict_type", ["body", "record"], f"'record' must be an object (feature -> value), got {describe_value(single)}", field="record")
        )  # fmt: skip
    if problems:
        raise RequestInvalid(problems)
    return records_of(PredictRequest.model_construct(records=records, record=single), max_batch)


def records_of(body: PredictRequest, max_batch: int) -> tuple[list[dict], tuple]:
    """The rows of a predict body and their location prefix (``body.records`` or ``body.record``)."""
    if body.records is not None and body.record is not None:
        raise RequestInvalid(
            [problem("value_error", ["body"], "send either 'records' (a list) or 'record' (one object), not both")]
        )
    if body.record is not None:
        return [body.record], ("body", "record")
    if body.records is None:
        raise RequestInvalid(
            [
                problem(
                    "missing", ["body", "records"], "send 'records': [{...}, ...] or 'record': {...}", field="records"
                )
            ]
        )
    if not body.records:
        raise RequestInvalid(
            [problem("too_short", ["body", "records"], "'records' is empty: send at least one record", field="records")]
        )
    if len(body.records) > max_batch:
        raise RequestInvalid(
            [
                problem(
                    "too_long",
                    ["body", "records"],
                    f"{len(body.records)} records exceed the limit of {max_batch} per request: split the batch",
                    field="records",
                )
            ]
        )
    return body.records, ("body", "records")


# Records, row by row ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """What :func:`validate_records` needs of the config, looked up once per request."""

    config: ModelConfig
    features: Mapping[str, Feature]
    passthrough: frozenset[str]
    nullable: list[str]

    @classmethod
    def of(cls, config: ModelConfig) -> _Rules:
        return cls(
            config=config,
            features={f.name: f for f in config.features},
            passthrough=frozenset(c for c in (config.data.id_column, config.data.timestamp_column) if c),
            nullable=[f.name for f in config.features if f.nullable],
        )


def validate_records(config: ModelConfig, records: list[dict], location: tuple = ("body", "records")) -> list[dict]:
    """Checked and normalised rows, or :class:`RequestInvalid` listing every problem.

    Numeric features become ``float`` (or None); categorical features keep their string,
    number or bool value (or None). Nullable features may be omitted or null; the rest are
    required. The config's id and timestamp columns may be sent; they are captured, not scored.
    """
    rules = _Rules.of(config)
    problems: list[dict] = []
    rows: list[dict] = []
    single = location[-1] == "record"
    for index, record in enumerate(records):
        prefix = list(location) if single else [*location, index]
        row: dict[str, Any] = {}
        for name, value in record.items():
            checked, found = _check_value(rules, name, value, [*prefix, name], index)
            if found is not None:
                problems.append(found)
            else:
                row[name] = checked
        problems += _missing_features(config, record, prefix, index)
        rows.append(row)
    if problems:
        raise RequestInvalid(problems)
    return rows


def _check_value(rules: _Rules, name: str, value: Any, loc: list, index: int) -> tuple[Any, dict | None]:
    """The value a row keeps for ``name``, and the problem with it (None if there is none)."""
    feature = rules.features.get(name)
    if feature is None:
        if name in rules.passthrough:
            return value, _passthrough_problem(name, value, loc, index)
        return None, _unknown_field(rules, name, loc, index)
    if isinstance(value, float) and math.isnan(value):
        value = None
    if value is None:
        if feature.nullable:
            return None, None
        return None, problem(
            "null_not_allowed", loc, f"'{name}' is not nullable: send a value (nullable features: {rules.nullable})",
            field=name, index=index,
        )  # fmt: skip
    if feature.type == "numeric":
        return _check_number(name, value, loc, index)
    if not isinstance(value, str | int | float):  # bool is an int
        return None, problem(
            "wrong_type", loc, f"'{name}' is categorical: send a string or a number, got {describe_value(value)}",
            field=name, index=index,
        )  # fmt: skip
    return value, None


def _passthrough_problem(name: str, value: Any, loc: list, index: int) -> dict | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        return problem(
            "wrong_type", loc, f"'{name}' must be a string, a number or null, got {describe_value(value)}",
            field=name, index=index,
        )  # fmt: skip
    return None


def _unknown_field(rules: _Rules, name: str, loc: list, index: int) -> dict:
    config, passthrough = rules.config, rules.passthrough
    if name == config.target:
        msg = f"'{name}' is the model's target, not an input: leave it out (send it later as feedback)"
    else:
        msg = f"unknown field '{name}': model '{config.name}' takes {config.feature_names}" + (
            f" (and may carry {sorted(passthrough)})" if passthrough else ""
        )
    return problem("unknown_field", loc, msg, field=name, index=index)


def _check_number(name: str, value: Any, loc: list, index: int) -> tuple[float | None, dict | None]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, problem(
            "wrong_type", loc, f"'{name}' is numeric: send a number, got {describe_value(value)}",
            field=name, index=index,
        )  # fmt: skip
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        return None, problem(
            "not_finite", loc, f"'{name}' must be a finite number, got {value!r}", field=name, index=index
        )
    return number, None


def _missing_features(config: ModelConfig, record: Mapping[str, Any], prefix: list, index: int) -> list[dict]:
    return [
        problem(
            "missing", [*prefix, feature.name], f"required feature '{feature.name}' ({feature.type}) is missing",
            field=feature.name, index=index,
        )
        for feature in config.features
        if feature.name not in record and not feature.nullable
    ]  # fmt: skip


# Categories and the model input -------------------------------------------------------------------


def category_text(value: Any) -> str | None:
    """A category as the baseline and the capture files spell it: ``1`` and ``1.0`` are ``"1"``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_frame(
    config: ModelConfig, rows: list[dict], categorical_kinds: Mapping[str, str], location: tuple = ("body", "records")
) -> pd.DataFrame:
    """The model's input: exactly ``config.feature_names``, missing values as NaN.

    Numeric columns are float64. A categorical column is an object column whose values have the
    type the fitted encoder learned (``categorical_kinds``): a model trained on strings gets
    ``"1"`` for a request's ``1`` (else the encoder would silently treat it as unseen), a model
    trained on numbers refuses a string with a 422.
    """
    single = location[-1] == "record"
    problems: list[dict] = []
    columns: dict[str, Any] = {}
    for feature in config.features:
        name = feature.name
        values = [row.get(name) for row in rows]
        if feature.type == "numeric":
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
            continue
        kind = categorical_kinds.get(name)
        if kind == "string":
            converted = [np.nan if v is None else category_text(v) for v in values]
        else:
            converted = [np.nan if v is None else v for v in values]
            if kind in ("number", "boolean"):
                problems += text_in_numeric_category(name, values, location, single, kind)
        columns[name] = pd.Series(converted, dtype=object)
    if problems:
        raise RequestInvalid(problems)
    return pd.DataFrame(columns, columns=config.feature_names)


def text_in_numeric_category(
    name: str, values: list, location: tuple, single: bool, kind: str = "number"
) -> list[dict]:
    """One problem per string sent for a category the loaded model learned as numbers (or true/false)."""
    learned = "true/false values: send true or false" if kind == "boolean" else "numeric categories: send a number"
    return [
        problem(
            "wrong_type", [*location, name] if single else [*location, index, name],
            f"'{name}' was learned from {learned}, got {describe_value(value)}",
            field=name, index=index,
        )
        for index, value in enumerate(values)
        if isinstance(value, str)
    ]  # fmt: skip
