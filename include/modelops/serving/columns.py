"""The request path's fast lane: parsed JSON records to checked, typed columns, and the model input.

A clean request (the common case) is recognised column by column and never builds a dict per
row; anything unusual takes the row-by-row path of :mod:`.validation`, which words the 422.
Several checked requests for one model become one DataFrame (see :mod:`.scoring`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelops.config import ModelConfig
from modelops.serving.validation import category_text, text_in_numeric_category, validate_records

log = logging.getLogger(__name__)

_NULL = type(None)
_NUMBER = frozenset({float, int})
_NUMBER_OR_NULL = _NUMBER | {_NULL}
_CATEGORY = frozenset({str, int, float, bool})  # validate_records accepts bools as categories (bool is an int)
_CATEGORY_OR_NULL = _CATEGORY | {_NULL}
_PASSTHROUGH = frozenset({str, int, _NULL})  # floats (NaN) and bools take the slow path
_TEXT_OR_NULL = frozenset({str, _NULL})


@dataclass(frozen=True)
class InputSpec:
    """What a request row may hold, precomputed from the config for :func:`fast_columns`."""

    numeric: tuple[tuple[str, bool], ...]  # (name, nullable)
    categorical: tuple[tuple[str, bool], ...]
    passthrough: tuple[str, ...]
    allowed: frozenset[str]
    required: frozenset[str]

    @classmethod
    def of(cls, config: ModelConfig) -> InputSpec:
        passthrough = tuple(c for c in (config.data.id_column, config.data.timestamp_column) if c)
        return cls(
            numeric=tuple((f.name, f.nullable) for f in config.features if f.type == "numeric"),
            categorical=tuple((f.name, f.nullable) for f in config.features if f.type != "numeric"),
            passthrough=passthrough,
            allowed=frozenset(config.feature_names) | frozenset(passthrough),
            required=frozenset(f.name for f in config.features if not f.nullable),
        )


@dataclass(frozen=True)
class RequestColumns:
    """A checked request as columns. Numeric: float64 arrays, NaN = missing; categorical and
    pass-through: the values as sent (None = missing). A pass-through column no record carries
    is left out."""

    length: int
    numeric: dict[str, np.ndarray]
    categorical: dict[str, list]
    passthrough: dict[str, list]


def fast_columns(spec: InputSpec, records: list[dict]) -> RequestColumns | None:
    """The columns of ``records`` if every value is plainly valid, else None.

    None sends the request to :func:`validate_records`, which names every problem; the fast path
    only has to recognise the common case of a clean request, column by column.
    """
    allowed, required = spec.allowed, spec.required
    for record in records:
        keys = record.keys()
        if not (keys <= allowed and keys >= required):
            return None
    numeric: dict[str, np.ndarray] = {}
    for name, nullable in spec.numeric:
        values = [record.get(name) for record in records]
        if not set(map(type, values)) <= (_NUMBER_OR_NULL if nullable else _NUMBER):
            return None
        try:
            array = np.array(values, dtype=np.float64)  # None -> NaN
        except (OverflowError, ValueError, TypeError):
            return None
        if not np.isfinite(array).all() and (not nullable or np.isinf(array).any()):
            return None
        numeric[name] = array
    categorical: dict[str, list] = {}
    for name, nullable in spec.categorical:
        values = [record.get(name) for record in records]
        types = set(map(type, values))
        if not types <= (_CATEGORY_OR_NULL if nullable else _CATEGORY):
            return None
        if float in types and any(v != v for v in values):  # NaN means null: the slow path decides
            return None
        categorical[name] = values
    passthrough: dict[str, list] = {}
    for name in spec.passthrough:
        values = [record.get(name) for record in records]
        types = set(map(type, values))
        if types == {_NULL}:
            continue
        if not types <= _PASSTHROUGH:
            return None
        passthrough[name] = values
    return RequestColumns(len(records), numeric, categorical, passthrough)


def columns_of_rows(spec: InputSpec, rows: list[dict]) -> RequestColumns:
    """:class:`RequestColumns` of rows checked by :func:`validate_records`."""
    passthrough = {}
    for name in spec.passthrough:
        values = [row.get(name) for row in rows]
        if any(v is not None for v in values):
            passthrough[name] = values
    return RequestColumns(
        length=len(rows),
        numeric={name: np.array([row.get(name) for row in rows], dtype=np.float64) for name, _ in spec.numeric},
        categorical={name: [row.get(name) for row in rows] for name, _ in spec.categorical},
        passthrough=passthrough,
    )


def check_records(config: ModelConfig, spec: InputSpec, records: list[dict], location: tuple) -> RequestColumns:
    """Checked columns of ``records``, or :class:`RequestInvalid` exactly as :func:`validate_records` words it."""
    columns = fast_columns(spec, records)
    if columns is None:
        columns = columns_of_rows(spec, validate_records(config, records, location))
    return columns


def kind_problems(
    config: ModelConfig, columns: RequestColumns, categorical_kinds: Mapping[str, str], location: tuple
) -> list[dict]:
    """What :func:`build_frame` refuses: a string for a category the loaded model learned as a number."""
    single = location[-1] == "record"
    problems = []
    for name, values in columns.categorical.items():
        if categorical_kinds.get(name) in ("number", "boolean"):
            problems += text_in_numeric_category(name, values, location, single, categorical_kinds[name])
    return problems


def _texts(values: list) -> list:
    """Categories as the capture files spell them (None stays None)."""
    if set(map(type, values)) <= _TEXT_OR_NULL:
        return values
    return [category_text(v) for v in values]


def _object_column(values: list) -> pd.Series:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    array[array == None] = np.nan  # noqa: E711 - elementwise on an object array
    return pd.Series(array, dtype=object, copy=False)


def model_columns(
    config: ModelConfig, categorical_kinds: Mapping[str, str], parts: list[RequestColumns]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's input columns for several checked requests (concatenated in order), and the
    feature columns as captured. Numeric: float64 arrays; categorical: lists of values (as text
    for a category learned as text; None = missing), what the compiled scorer takes."""
    inputs: dict[str, Any] = {}
    captured: dict[str, Any] = {}
    single = len(parts) == 1
    for feature in config.features:
        name = feature.name
        if feature.type == "numeric":
            array = parts[0].numeric[name] if single else np.concatenate([p.numeric[name] for p in parts])
            inputs[name] = captured[name] = array
            continue
        values = parts[0].categorical[name] if single else [v for p in parts for v in p.categorical[name]]
        texts = _texts(values)
        captured[name] = texts
        inputs[name] = texts if categorical_kinds.get(name) == "string" else values
    for name in {n for p in parts for n in p.passthrough}:
        captured[name] = _texts([v for p in parts for v in (p.passthrough.get(name) or [None] * p.length)])
    return inputs, captured


def frame_of_columns(
    config: ModelConfig, categorical_kinds: Mapping[str, str], parts: list[RequestColumns]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One model input for several checked requests (concatenated in order), and the feature
    columns as captured. The frame is what :func:`build_frame` makes of the same rows."""
    inputs, captured = model_columns(config, categorical_kinds, parts)
    numeric = set(config.numeric_features)
    frame_columns = {name: values if name in numeric else _object_column(values) for name, values in inputs.items()}
    return pd.DataFrame(frame_columns, columns=config.feature_names), captured
