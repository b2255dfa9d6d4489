"""The serving endpoint: each configured model's champion, validated requests, hot swap, capture.

Endpoints (OpenAPI at ``/openapi.json``, docs at ``/docs``):

* ``GET /health``: liveness, and which models are loaded.
* ``GET /models``: per model: version, run id, model URI, load time, features.
* ``POST /models/{model}/predict``: ``{"records": [{...}, ...]}`` or ``{"record": {...}}``.
* ``POST /models/{model}/reload`` (bearer token): load the champion (or ``{"version": "N"}``)
  and swap it in; requests in flight finish on the model they started with.
* ``POST /models/{model}/feedback`` (bearer token): ground-truth labels by request id.
* ``GET /metrics``: Prometheus text format.

Requests are checked against the model's config (``include/models/<model>.yaml``), not the
artifact, so a bad request gets a 422 that names the record and the field, never a 500. Every
scored record and every label is captured to S3 by :mod:`modelops.serving.capture`.

Throughput: the body is parsed with orjson and checked column by column (:func:`check_records`;
only a request with a problem takes the row-by-row path that words the 422), and concurrent
requests for one model are scored in one model call (:class:`Batcher`), because a pipeline call
costs about the same for 1 row as for hundreds. Each call uses one loaded version throughout.

This module runs only in the serving process (never imported by DAG files), so it imports
pandas and numpy at the top; MLflow, which is slow to import, is imported where models load.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from modelops import registry
from modelops import settings as _settings
from modelops.config import NAME_PATTERN, ConfigError, ModelConfig, get_model, load_all_models
from modelops.serving import guard
from modelops.serving.capture import CAPTURE, FEEDBACK, CaptureOptions, CaptureWriter, ColumnBlock, Repeat
from modelops.store import Store

log = logging.getLogger(__name__)

#: Columns every capture row has besides the features and the pass-through columns.
CAPTURE_COLUMNS = (
    "request_id",
    "record_index",
    "captured_at",
    "model",
    "model_version",
    "prediction",
    "probabilities",
    "classes",
)
#: At most this many problems are listed in one 422 (the total is always given).
MAX_LISTED_PROBLEMS = 50
#: Module level: route signatures are resolved against module globals (``from __future__ import annotations``).
BEARER = HTTPBearer(auto_error=False, description="MODELOPS_SERVING_TOKEN of the server")
EVENT_TIME_HEADER = "X-Modelops-Event-Time"
EVENT_TIME_PARAM = Header(
    alias=EVENT_TIME_HEADER,
    description=(
        "Simulated traffic only: the ISO-8601 instant (e.g. 2026-11-18T12:00:00Z) to record instead of the "
        "wall clock (capture day and captured_at; feedback received_at). Honoured only when the server runs "
        "with MODELOPS_SERVING_ACCEPT_EVENT_TIME=true and the request carries the bearer token; otherwise 403. "
        "A malformed value gets a 400."
    ),
)


# ------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingOptions:
    """Serving knobs that are not addresses (those live in :mod:`modelops.settings`)."""

    #: Records per predict request at most.
    max_batch: int = 1000
    #: Labels per feedback request at most.
    max_feedback: int = 10_000
    capture_enabled: bool = True
    capture: CaptureOptions = field(default_factory=CaptureOptions)
    #: Rows one model call takes at most when concurrent requests are scored together.
    batch_max_rows: int = 2000
    #: How long a model call waits for more requests to join it (0: none, only what queued meanwhile).
    batch_wait_ms: float = 0.0
    #: Honour ``X-Modelops-Event-Time`` (with the bearer token): for simulated traffic only.
    accept_event_time: bool = False
    #: A champion that failed to load (registry or artifact store unreachable at start) is tried
    #: again after this many seconds, doubling per failure up to 5 minutes; 0 turns retrying off.
    load_retry_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingOptions:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {"capture": CaptureOptions.from_env(environ)}
        for name, variable in (
            ("max_batch", "MODELOPS_SERVING_MAX_BATCH"),
            ("max_feedback", "MODELOPS_SERVING_MAX_FEEDBACK"),
            ("batch_max_rows", "MODELOPS_SERVING_BATCH_MAX_ROWS"),
        ):
            raw = environ.get(variable)
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{variable}={raw!r} is not an integer") from None
                if values[name] < 1:
                    raise ValueError(f"{variable}={raw!r} must be at least 1")
        raw = environ.get("MODELOPS_SERVING_BATCH_WAIT_MS")
        if raw:
            try:
                values["batch_wait_ms"] = float(raw)
            except ValueError:
                raise ValueError(f"MODELOPS_SERVING_BATCH_WAIT_MS={raw!r} is not a number") from None
            if not 0 <= values["batch_wait_ms"] <= 100:
                raise ValueError(f"MODELOPS_SERVING_BATCH_WAIT_MS={raw!r} must be between 0 and 100")
        raw = environ.get("MODELOPS_SERVING_LOAD_RETRY_SECONDS")
        if raw:
            try:
                values["load_retry_seconds"] = float(raw)
            except ValueError:
                raise ValueError(f"MODELOPS_SERVING_LOAD_RETRY_SECONDS={raw!r} is not a number") from None
            if values["load_retry_seconds"] < 0:
                raise ValueError(f"MODELOPS_SERVING_LOAD_RETRY_SECONDS={raw!r} must not be negative")
        values["capture_enabled"] = _flag(environ, "MODELOPS_CAPTURE_ENABLED", True)
        values["accept_event_time"] = _flag(environ, "MODELOPS_SERVING_ACCEPT_EVENT_TIME", False)
        return cls(**values)


def _flag(environ: Mapping[str, str], variable: str, default: bool) -> bool:
    raw = environ.get(variable, "").strip().lower()
    if not raw:
        return default
    if raw not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"{variable}={raw!r}: use true or false")
    return raw in {"true", "1", "yes"}


# ------------------------------------------------------------------------------------------------
# Request and response bodies (what OpenAPI shows)
# ------------------------------------------------------------------------------------------------


class PredictRequest(BaseModel):
    """Exactly one of ``records`` (a batch) or ``record`` (one row)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"records": [{"feature_a": 1.5, "feature_b": "red"}, {"feature_a": None, "feature_b": "blue"}]},
                {"record": {"feature_a": 1.5, "feature_b": "red"}},
            ]
        },
    )

    records: list[dict[str, Any]] | None = Field(
        default=None, description="Rows to score: one object per row, feature name -> value (see GET /models)."
    )
    record: dict[str, Any] | None = Field(default=None, description="A single row to score.")


class PredictResponse(BaseModel):
    model: str
    version: str = Field(description="Registry version that scored the request.")
    request_id: str = Field(description="Id of the captured rows; send it back with feedback labels.")
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(
        default=None, description="Classifiers only: one row per record, one column per class."
    )
    classes: list[Any] | None = Field(default=None, description="Classifiers only: the column order of probabilities.")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | int | None = Field(default=None, description="Registry version to load; the champion if omitted.")


class ReloadResponse(BaseModel):
    model: str
    old_version: str | None
    new_version: str
    changed: bool
    alias: str | None
    model_uri: str
    run_id: str | None
    loaded_at: str
    load_seconds: float


class FeedbackLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    record_index: int = Field(ge=0)
    label: str | int | float | bool


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[FeedbackLabel] = Field(min_length=1)


class FeedbackResponse(BaseModel):
    model: str
    accepted: int
    received_at: str


# ------------------------------------------------------------------------------------------------
# Request validation: pure functions of the config
# ------------------------------------------------------------------------------------------------


class RequestInvalid(Exception):
    """One or more problems in a request body; each names the record and the field."""

    def __init__(self, problems: list[dict]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def problem(kind: str, loc: Iterable[Any], msg: str, *, field: str | None = None, index: int | None = None) -> dict:
    """A 422 entry shaped like FastAPI's own (``type``, ``loc``, ``msg``) plus ``field``/``record_index``."""
    entry: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg}
    if field is not None:
        entry["field"] = field
    if index is not None:
        entry["record_index"] = index
    return entry


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


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def validate_records(config: ModelConfig, records: list[dict], location: tuple = ("body", "records")) -> list[dict]:
    """Checked and normalised rows, or :class:`RequestInvalid` listing every problem.

    Numeric features become ``float`` (or None); categorical features keep their string,
    number or bool value (or None). Nullable features may be omitted or null; the rest are
    required. The config's id and timestamp columns may be sent; they are captured, not scored.
    """
    features = {f.name: f for f in config.features}
    passthrough = {c for c in (config.data.id_column, config.data.timestamp_column) if c}
    nullable = [f.name for f in config.features if f.nullable]
    problems: list[dict] = []
    rows: list[dict] = []
    single = location[-1] == "record"
    for index, record in enumerate(records):
        prefix = list(location) if single else [*location, index]
        row: dict[str, Any] = {}
        for name, value in record.items():
            loc = [*prefix, name]
            feature = features.get(name)
            if feature is None:
                if name in passthrough:
                    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
                        problems.append(
                            problem(
                                "wrong_type", loc, f"'{name}' must be a string, a number or null, got {_describe(value)}",
                                field=name, index=index,
                            )
                        )  # fmt: skip
                    row[name] = value
                    continue
                if name == config.target:
                    msg = f"'{name}' is the model's target, not an input: leave it out (send it later as feedback)"
                else:
                    msg = f"unknown field '{name}': model '{config.name}' takes {config.feature_names}" + (
                        f" (and may carry {sorted(passthrough)})" if passthrough else ""
                    )
                problems.append(problem("unknown_field", loc, msg, field=name, index=index))
                continue
            if isinstance(value, float) and math.isnan(value):
                value = None
            if value is None:
                if not feature.nullable:
                    problems.append(
                        problem(
                            "null_not_allowed", loc,
                            f"'{name}' is not nullable: send a value (nullable features: {nullable})",
                            field=name, index=index,
                        )
                    )  # fmt: skip
                row[name] = None
                continue
            if feature.type == "numeric":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    problems.append(
                        problem(
                            "wrong_type", loc, f"'{name}' is numeric: send a number, got {_describe(value)}",
                            field=name, index=index,
                        )
                    )  # fmt: skip
                    continue
                try:
                    number = float(value)
                except OverflowError:
                    number = math.inf
                if not math.isfinite(number):
                    problems.append(
                        problem(
                            "not_finite", loc, f"'{name}' must be a finite number, got {value!r}",
                            field=name, index=index,
                        )
                    )  # fmt: skip
                    continue
                row[name] = number
            else:
                if not isinstance(value, str | int | float):  # bool is an int
                    problems.append(
                        problem(
                            "wrong_type", loc,
                            f"'{name}' is categorical: send a string or a number, got {_describe(value)}",
                            field=name, index=index,
                        )
                    )  # fmt: skip
                    continue
                row[name] = value
        for feature in config.features:
            if feature.name not in record and not feature.nullable:
                problems.append(
                    problem(
                        "missing", [*prefix, feature.name],
                        f"required feature '{feature.name}' ({feature.type}) is missing",
                        field=feature.name, index=index,
                    )
                )  # fmt: skip
        rows.append(row)
    if problems:
        raise RequestInvalid(problems)
    return rows


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
                problems += _text_in_numeric_category(name, values, location, single, kind)
        columns[name] = pd.Series(converted, dtype=object)
    if problems:
        raise RequestInvalid(problems)
    return pd.DataFrame(columns, columns=config.feature_names)


# ------------------------------------------------------------------------------------------------
# The request path: JSON bytes to checked columns (no per-row models, no per-row dicts kept)
# ------------------------------------------------------------------------------------------------

_NULL = type(None)
_NUMBER = frozenset({float, int})
_NUMBER_OR_NULL = _NUMBER | {_NULL}
_CATEGORY = frozenset({str, int, float, bool})  # validate_records accepts bools as categories (bool is an int)
_CATEGORY_OR_NULL = _CATEGORY | {_NULL}
_PASSTHROUGH = frozenset({str, int, _NULL})  # floats (NaN) and bools take the slow path
_TEXT_OR_NULL = frozenset({str, _NULL})
_BODY_KEYS = ("records", "record")


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
            [problem("model_attributes_type", ["body"], f"the body must be a JSON object with 'records' or 'record', got {_describe(body)}")]
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
                problem("list_type", ["body", "records"], f"'records' must be a list of objects, got {_describe(records)}", field="records")
            )  # fmt: skip
        else:
            problems += [
                problem("dict_type", ["body", "records", index], f"records[{index}] must be an object (feature -> value), got {_describe(item)}", index=index)
                for index, item in enumerate(records)
                if not isinstance(item, dict)
            ]  # fmt: skip
    if single is not None and not isinstance(single, dict):
        problems.append(
            problem("dict_type", ["body", "record"], f"'record' must be an object (feature -> value), got {_describe(single)}", field="record")
        )  # fmt: skip
    if problems:
        raise RequestInvalid(problems)
    return records_of(PredictRequest.model_construct(records=records, record=single), max_batch)


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
            problems += _text_in_numeric_category(name, values, location, single, categorical_kinds[name])
    return problems


def _text_in_numeric_category(
    name: str, values: list, location: tuple, single: bool, kind: str = "number"
) -> list[dict]:
    """One problem per string sent for a category the loaded model learned as numbers (or true/false)."""
    learned = "true/false values: send true or false" if kind == "boolean" else "numeric categories: send a number"
    return [
        problem(
            "wrong_type", [*location, name] if single else [*location, index, name],
            f"'{name}' was learned from {learned}, got {_describe(value)}",
            field=name, index=index,
        )
        for index, value in enumerate(values)
        if isinstance(value, str)
    ]  # fmt: skip


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


def frame_of_columns(
    config: ModelConfig, categorical_kinds: Mapping[str, str], parts: list[RequestColumns]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One model input for several checked requests (concatenated in order), and the feature
    columns as captured. The frame is what :func:`build_frame` makes of the same rows."""
    model_columns: dict[str, Any] = {}
    captured: dict[str, Any] = {}
    for feature in config.features:
        name = feature.name
        if feature.type == "numeric":
            array = parts[0].numeric[name] if len(parts) == 1 else np.concatenate([p.numeric[name] for p in parts])
            model_columns[name] = captured[name] = array
            continue
        values = parts[0].categorical[name] if len(parts) == 1 else [v for p in parts for v in p.categorical[name]]
        texts = _texts(values)
        captured[name] = texts
        model_columns[name] = _object_column(texts if categorical_kinds.get(name) == "string" else values)
    for name in {n for p in parts for n in p.passthrough}:
        captured[name] = _texts([v for p in parts for v in (p.passthrough.get(name) or [None] * p.length)])
    return pd.DataFrame(model_columns, columns=config.feature_names), captured


# ------------------------------------------------------------------------------------------------
# Models: loading and the swappable slot
# ------------------------------------------------------------------------------------------------


class NoChampion(LookupError):
    pass


class VersionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class LoadedModel:
    """One loaded registry version. Immutable: a swap replaces the whole object."""

    name: str
    version: str
    run_id: str | None
    model_uri: str
    alias: str | None
    loaded_at: dt.datetime
    pipeline: Any
    classes: list | None
    has_probabilities: bool
    categorical_kinds: dict[str, str]
    #: Allowed numeric input ranges (serving/guard.py); None: the no-baseline fallback.
    input_ranges: guard.InputRanges | None = None


def categorical_kinds(estimator: Any) -> dict[str, str]:
    """Feature -> ``"string"``, ``"boolean"`` or ``"number"``: what each fitted encoder inside ``estimator`` learned.

    Walks Pipelines and ColumnTransformers; features no encoder names are left out (sent as is).
    """
    kinds: dict[str, str] = {}

    def visit(node: Any) -> None:
        if node is None or isinstance(node, str):
            return
        categories = getattr(node, "categories_", None)
        names = getattr(node, "feature_names_in_", None)
        if categories is not None and names is not None and not isinstance(categories, str):
            for name, values in zip(names, categories, strict=False):
                present = [v for v in values.tolist() if not (isinstance(v, float) and math.isnan(v)) and v is not None]
                if present and all(isinstance(v, str) for v in present):
                    kinds[str(name)] = "string"
                elif present and all(isinstance(v, bool) for v in present):
                    kinds[str(name)] = "boolean"
                elif present and all(isinstance(v, int | float) for v in present):
                    kinds[str(name)] = "number"
        for _, child in getattr(node, "steps", None) or []:
            visit(child)
        for item in getattr(node, "transformers_", None) or []:
            visit(item[1])

    visit(estimator)
    return kinds


def load_model_version(
    config: ModelConfig, tracking_uri: str, version: str | None = None, mlflow_client: Any = None
) -> LoadedModel:
    """Load ``models:/<name>/<version>``, the champion's version when ``version`` is None.

    The alias is resolved to a version first, and that version is loaded: what is reported is
    exactly what serves, even if the alias moves during the load.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_client = mlflow_client or MlflowClient(tracking_uri=tracking_uri)
    if version is None:
        model_version = registry.version_for_alias(config.name, registry.CHAMPION, mlflow_client)
        if model_version is None:
            raise NoChampion(
                f"model '{config.name}' has no champion registered yet: train and promote one "
                f"(retrain_{config.name}), then POST /models/{config.name}/reload"
            )
        alias: str | None = registry.CHAMPION
    else:
        try:
            model_version = mlflow_client.get_model_version(config.name, str(version))
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
                raise VersionNotFound(f"model '{config.name}' has no registered version {version}") from None
            raise
        alias = None
    model_uri = f"models:/{config.name}/{model_version.version}"
    mlflow.set_tracking_uri(tracking_uri)
    pipeline = mlflow.sklearn.load_model(model_uri)
    classes = None
    if config.is_classifier and getattr(pipeline, "classes_", None) is not None:
        classes = np.asarray(pipeline.classes_).tolist()
    return LoadedModel(
        name=config.name,
        version=str(model_version.version),
        run_id=model_version.run_id,
        model_uri=model_uri,
        alias=alias,
        loaded_at=dt.datetime.now(dt.UTC),
        pipeline=pipeline,
        classes=classes,
        has_probabilities=classes is not None and hasattr(pipeline, "predict_proba"),
        categorical_kinds=categorical_kinds(pipeline),
        input_ranges=guard.load_ranges(config, model_version.run_id, str(model_version.version)),
    )


class ModelSlot:
    """A configured model and the version serving it. ``current`` is swapped, never mutated.

    A request reads ``current`` once and uses that object to the end, so a swap (a single
    reference assignment, atomic in Python) lets in-flight requests finish on the old model.
    """

    def __init__(self, config: ModelConfig):
        self.config = config
        self.current: LoadedModel | None = None
        self.reason: str | None = "not loaded yet"
        #: Set when loading the champion failed for a reason other than "no champion": retried in the background.
        self.retry_at: float | None = None
        self.retry_delay = 0.0
        self.reload_lock = threading.Lock()
        self.capture_schema = capture_schema(config)
        self.feedback_schema = feedback_schema(config)
        self.spec = InputSpec.of(config)
        self.batcher: Batcher | None = None  # set by ServingState

    def unavailable(self) -> str:
        return f"model '{self.config.name}' is not loaded: {self.reason}"

    def describe(self) -> dict:
        loaded = self.current
        config = self.config
        return {
            "name": config.name,
            "problem_type": config.problem_type,
            "loaded": loaded is not None,
            "version": loaded.version if loaded else None,
            "alias": loaded.alias if loaded else None,
            "loaded_at": loaded.loaded_at.isoformat() if loaded else None,
            "run_id": loaded.run_id if loaded else None,
            "model_uri": loaded.model_uri if loaded else None,
            "classes": loaded.classes if loaded else None,
            "reason": None if loaded else self.reason,
            "features": [{"name": f.name, "type": f.type, "nullable": f.nullable} for f in config.features],
            "passthrough": [c for c in (config.data.id_column, config.data.timestamp_column) if c],
        }


# ------------------------------------------------------------------------------------------------
# Capture rows
# ------------------------------------------------------------------------------------------------


def capture_schema(config: ModelConfig):
    """Parquet schema of ``capture/<model>/``: one row per scored record.

    Categorical features, pass-through columns and class labels are strings (as the baseline
    spells categories), so a day of traffic compares and joins without type games.
    """
    import pyarrow as pa

    clash = sorted(set(CAPTURE_COLUMNS) & {*config.feature_names, config.data.id_column, config.data.timestamp_column})
    if clash:
        raise ValueError(
            f"model '{config.name}': column(s) {clash} clash with capture columns {list(CAPTURE_COLUMNS)}; rename them"
        )
    fields = [
        pa.field("request_id", pa.string()),
        pa.field("record_index", pa.int32()),
        pa.field("captured_at", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
    ]
    for feature in config.features:
        fields.append(pa.field(feature.name, pa.float64() if feature.type == "numeric" else pa.string()))
    for column in (config.data.id_column, config.data.timestamp_column):
        if column:
            fields.append(pa.field(column, pa.string()))
    if config.is_classifier:
        fields += [
            pa.field("prediction", pa.string()),
            pa.field("probabilities", pa.list_(pa.float64())),
            pa.field("classes", pa.list_(pa.string())),
        ]
    else:
        fields.append(pa.field("prediction", pa.float64()))
    return pa.schema(fields)


def feedback_schema(config: ModelConfig):
    """Parquet schema of ``feedback/<model>/``: labels as strings for classifiers (like predictions)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("request_id", pa.string()),
            pa.field("record_index", pa.int64()),
            pa.field("label", pa.string() if config.is_classifier else pa.float64()),
            pa.field("received_at", pa.timestamp("us", tz="UTC")),
            pa.field("model", pa.string()),
        ]
    )


def capture_rows(
    config: ModelConfig,
    loaded: LoadedModel,
    rows: list[dict],
    predictions: list,
    probabilities: list | None,
    request_id: str,
    captured_at: dt.datetime,
) -> list[dict]:
    passthrough = [c for c in (config.data.id_column, config.data.timestamp_column) if c]
    categorical = config.categorical_features
    classes = [category_text(c) for c in loaded.classes] if loaded.classes is not None else None
    out = []
    for index, row in enumerate(rows):
        item = dict(row)
        for name in categorical:
            item[name] = category_text(row.get(name))
        for name in passthrough:
            if name in item:
                item[name] = category_text(item[name])
        item.update(
            request_id=request_id,
            record_index=index,
            captured_at=captured_at,
            model=config.name,
            model_version=loaded.version,
        )
        if config.is_classifier:
            item["prediction"] = category_text(predictions[index])
            item["probabilities"] = probabilities[index] if probabilities is not None else None
            item["classes"] = classes
        else:
            item["prediction"] = predictions[index]
        out.append(item)
    return out


def _finite_or_none(values: list) -> list:
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


# ------------------------------------------------------------------------------------------------
# Scoring: concurrent requests for one model share one model call
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class PendingPrediction:
    """A checked predict request waiting for its model call."""

    columns: RequestColumns
    location: tuple
    request_id: str
    #: ``X-Modelops-Event-Time`` when the server honours it: the capture time and day.
    event_time: dt.datetime | None = None
    future: Any = None


@dataclass(frozen=True)
class Scored:
    """A request's answer: the JSON body, and the version that produced it."""

    version: str
    body: bytes


def _datetime64(instant: dt.datetime) -> np.datetime64:
    return np.datetime64(instant.astimezone(dt.UTC).replace(tzinfo=None), "us")


def _score_together(
    slot: ModelSlot, loaded: LoadedModel, pending: list[PendingPrediction]
) -> tuple[list[Scored], ColumnBlock, int]:
    """One model call for ``pending``; their answers and their capture rows (one block)."""
    config = slot.config
    frame, captured = frame_of_columns(config, loaded.categorical_kinds, [p.columns for p in pending])
    sizes = [p.columns.length for p in pending]
    total = sum(sizes)
    columns: dict[str, Any] = {}
    if loaded.has_probabilities and loaded.classes is not None:
        # One pass through the model: sklearn classifiers predict the most probable class,
        # so the label is derived from the probabilities instead of a second call.
        matrix = np.ascontiguousarray(loaded.pipeline.predict_proba(frame), dtype=np.float64)
        guard.check_outputs(matrix)
        picked = matrix.argmax(axis=1)
        labels = np.asarray(loaded.classes, dtype=object)[picked]
        class_texts = [category_text(c) for c in loaded.classes]
        columns["prediction"] = np.asarray(class_texts, dtype=object)[picked]
        columns["probabilities"] = matrix
        columns["classes"] = Repeat(class_texts)
    else:
        matrix = None
        labels = np.asarray(loaded.pipeline.predict(frame))
        if config.is_classifier:
            columns["prediction"] = np.asarray([category_text(v) for v in labels.tolist()], dtype=object)
            columns["classes"] = Repeat([category_text(c) for c in loaded.classes] if loaded.classes else None)
        else:
            values = labels.astype(np.float64)
            guard.check_outputs(values)
            columns["prediction"] = np.where(np.isfinite(values), values, np.nan)
    answers, start = [], 0
    for p, size in zip(pending, sizes, strict=True):
        stop = start + size
        payload: dict[str, Any] = {
            "model": config.name,
            "version": loaded.version,
            "request_id": p.request_id,
            "predictions": _finite_or_none(labels[start:stop].tolist()),
        }
        if loaded.classes is not None:
            if matrix is not None:
                payload["probabilities"] = matrix[start:stop]
            payload["classes"] = loaded.classes
        answers.append(Scored(loaded.version, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)))
        start = stop
    now = dt.datetime.now(dt.UTC)
    request_ids: list[str] = []
    for p, size in zip(pending, sizes, strict=True):
        request_ids += [p.request_id] * size
    if all(p.event_time is None for p in pending):
        captured_at = np.full(total, _datetime64(now))
    else:
        captured_at = np.concatenate(
            [np.full(size, _datetime64(p.event_time or now)) for p, size in zip(pending, sizes, strict=True)]
        )
    block = ColumnBlock(
        {
            "request_id": request_ids,
            "record_index": np.concatenate([np.arange(size, dtype=np.int32) for size in sizes]),
            "captured_at": captured_at,
            "model": Repeat(config.name),
            "model_version": Repeat(loaded.version),
            **captured,
            **columns,
        },
        total,
    )
    return answers, block, total


def score_batch(
    slot: ModelSlot,
    loaded: LoadedModel,
    pending: list[PendingPrediction],
    writer: CaptureWriter | None,
    metrics: Metrics | None = None,
) -> list[Scored | RequestInvalid]:
    """Answer every request of ``pending`` with the one loaded version ``loaded``.

    A request the version cannot take gets its own 422 and leaves the others alone: if the
    shared call fails with a ValueError/TypeError, each request is scored on its own. Any other
    exception (a broken model) fails the whole batch, as it would fail each request. Capture
    rows go to ``writer`` per capture day (the event time when a request carries one).
    """
    config = slot.config
    outcomes: list[Scored | RequestInvalid | None] = [None] * len(pending)
    ready = []
    for index, p in enumerate(pending):
        problems = kind_problems(config, p.columns, loaded.categorical_kinds, p.location)
        ranges = loaded.input_ranges or guard.fallback_ranges(config)
        problems += guard.check_inputs(ranges, p.columns.numeric, p.location, loaded.version, config.name)
        if problems:
            outcomes[index] = RequestInvalid(problems)
        else:
            ready.append(index)
    groups = [ready] if ready else []
    while groups:
        group = groups.pop()
        try:
            answers, block, rows = _score_together(slot, loaded, [pending[i] for i in group])
        except (ValueError, TypeError) as exc:
            if len(group) > 1:
                groups += [[i] for i in group]  # find the request(s) this version cannot score
                continue
            p = pending[group[0]]
            if isinstance(exc, guard.NonFinitePrediction):
                loc = [*p.location] if p.location[-1] == "record" else [*p.location, exc.index]
                outcomes[group[0]] = RequestInvalid(
                    [problem("non_finite_prediction", loc, f"model version {loaded.version}: {exc}", index=exc.index)]
                )
                continue
            log.warning("%s version %s could not score a request: %s", config.name, loaded.version, exc)
            outcomes[group[0]] = RequestInvalid(
                [problem("unscorable", list(p.location), f"model version {loaded.version} could not score the records: {exc}")]
            )  # fmt: skip
            continue
        for index, answer in zip(group, answers, strict=True):
            outcomes[index] = answer
        if metrics is not None:
            metrics.add_predicted(config.name, loaded.version, rows)
        if writer is not None:
            now = dt.datetime.now(dt.UTC).date()
            start = 0
            run_day, run_start = None, 0
            for index in group:
                p = pending[index]
                day = p.event_time.date() if p.event_time is not None else now
                if run_day is not None and day != run_day:
                    writer.enqueue(CAPTURE, config.name, run_day, block.slice(run_start, start), slot.capture_schema)
                    run_start = start
                run_day = day
                start += p.columns.length
            writer.enqueue(CAPTURE, config.name, run_day, block.slice(run_start, start), slot.capture_schema)
    return outcomes  # type: ignore[return-value]


class Batcher:
    """Coalesces concurrent predict requests for one model into one model call.

    Requests queue on the event loop; one scoring call per model runs at a time in a worker
    thread, and whatever queued meanwhile (up to ``max_rows`` rows, optionally after waiting
    ``max_wait_s`` for more) forms the next call. Under light load a request goes alone, at once;
    under load the model's fixed cost per call is shared. Each call reads ``slot.current`` once,
    so every request in it is answered by that version, and a hot swap takes effect between calls.
    """

    def __init__(self, slot: ModelSlot, state: ServingState):
        self.slot = slot
        self.state = state
        self._queue: deque[PendingPrediction] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, pending: PendingPrediction) -> Scored | RequestInvalid:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a new server run, a new test client)
            self._loop, self._wake, self._task = loop, asyncio.Event(), None
            self._queue.clear()
        pending.future = loop.create_future()
        self._queue.append(pending)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name=f"modelops-batcher-{self.slot.config.name}")
        return await pending.future

    def _take(self) -> list[PendingPrediction]:
        limit = self.state.options.batch_max_rows
        batch = [self._queue.popleft()]
        rows = batch[0].columns.length
        while self._queue and rows + self._queue[0].columns.length <= limit:
            rows += self._queue[0].columns.length
            batch.append(self._queue.popleft())
        return batch

    def _score(self, batch: list[PendingPrediction]) -> list[Scored | RequestInvalid] | HTTPException:
        loaded = self.slot.current  # read once: the whole call is served by this version
        if loaded is None:
            return HTTPException(503, self.slot.unavailable())
        return score_batch(self.slot, loaded, batch, self.state.writer, self.state.metrics)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.state.options.batch_wait_ms / 1000
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if wait > 0 and sum(p.columns.length for p in self._queue) < self.state.options.batch_max_rows:
                await asyncio.sleep(wait)
            batch = self._take()
            try:
                outcomes = await loop.run_in_executor(self.state.executor, self._score, batch)
            except Exception as exc:  # noqa: BLE001 - a broken model fails its requests, not the batcher
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            if isinstance(outcomes, HTTPException):
                outcomes = [outcomes] * len(batch)
            for p, outcome in zip(batch, outcomes, strict=True):
                if not p.future.done():  # the client may have gone away
                    p.future.set_result(outcome)


# ------------------------------------------------------------------------------------------------
# Metrics (Prometheus text format, by hand)
# ------------------------------------------------------------------------------------------------

_MODEL_PATH = re.compile(r"^/models/(?P<model>[^/]+)/(?P<endpoint>predict|reload|feedback)/?$")
_PLAIN_PATHS = {"/health": "health", "/models": "models", "/metrics": "metrics"}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if isinstance(value, float) else str(value)


class Metrics:
    """Request counters and latency histograms, thread-safe; rendered on each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[tuple[str, str], list] = {}  # [bucket counts..., sum, count]
        self._predicted: dict[tuple[str, str], int] = {}

    def observe(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (model, endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            entry = self._latency.setdefault((model, endpoint), [0] * len(LATENCY_BUCKETS) + [0.0, 0])
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    entry[i] += 1
            entry[-2] += seconds
            entry[-1] += 1

    def add_predicted(self, model: str, version: str, records: int) -> None:
        with self._lock:
            self._predicted[(model, version)] = self._predicted.get((model, version), 0) + records

    def render(self, slots: Mapping[str, ModelSlot], capture: dict | None) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((k, list(v)) for k, v in self._latency.items())
            predicted = sorted(self._predicted.items())
        family("modelops_requests_total", "counter", "HTTP requests by model, endpoint and status code.")
        for (model, endpoint, status), count in requests:
            lines.append(f"modelops_requests_total{_labels(model=model, endpoint=endpoint, status=status)} {count}")
        family("modelops_request_errors_total", "counter", "HTTP requests answered with status >= 400.")
        for (model, endpoint, status), count in requests:
            if status >= 400:
                labels = _labels(model=model, endpoint=endpoint, status=status)
                lines.append(f"modelops_request_errors_total{labels} {count}")
        family("modelops_request_duration_seconds", "histogram", "Request latency in seconds, by model and endpoint.")
        for (model, endpoint), entry in latency:
            for bound, count in zip(
                [*LATENCY_BUCKETS, math.inf], [*entry[: len(LATENCY_BUCKETS)], entry[-1]], strict=True
            ):
                labels = _labels(model=model, endpoint=endpoint, le=_number(float(bound)))
                lines.append(f"modelops_request_duration_seconds_bucket{labels} {count}")
            labels = _labels(model=model, endpoint=endpoint)
            lines.append(f"modelops_request_duration_seconds_sum{labels} {_number(float(entry[-2]))}")
            lines.append(f"modelops_request_duration_seconds_count{labels} {entry[-1]}")
        family("modelops_predicted_records_total", "counter", "Records scored, by model and version.")
        for (model, version), count in predicted:
            lines.append(f"modelops_predicted_records_total{_labels(model=model, version=version)} {count}")

        family("modelops_model_loaded", "gauge", "1 if the model has a loaded version, else 0.")
        for name, slot in sorted(slots.items()):
            lines.append(f"modelops_model_loaded{_labels(model=name)} {1 if slot.current else 0}")
        family("modelops_model_version_info", "gauge", "The registry version serving each model (value 1).")
        for name, slot in sorted(slots.items()):
            loaded = slot.current
            if loaded:
                lines.append(
                    f"modelops_model_version_info{_labels(model=name, version=loaded.version, run_id=loaded.run_id or '')} 1"
                )
        family("modelops_model_loaded_timestamp_seconds", "gauge", "When the serving version was loaded (Unix time).")
        for name, slot in sorted(slots.items()):
            loaded = slot.current
            if loaded:
                lines.append(
                    f"modelops_model_loaded_timestamp_seconds{_labels(model=name)} {loaded.loaded_at.timestamp():.3f}"
                )

        if capture is not None:
            groups = capture["groups"]
            for metric, key, kind, help_text in (
                ("modelops_capture_records_written_total", "written", "counter", "Rows written to S3."),
                ("modelops_capture_records_dropped_total", "dropped", "counter", "Rows dropped (buffer full, shutdown timeout, unwritable)."),
                ("modelops_capture_records_pending", "pending", "gauge", "Rows buffered in memory, not yet written."),
                ("modelops_capture_files_written_total", "files", "counter", "Parquet files written to S3."),
                ("modelops_capture_write_failures_total", "write_failures", "counter", "Failed S3 writes (each is retried)."),
            ):  # fmt: skip
                family(metric, kind, help_text)
                for (stream, model), values in groups.items():
                    lines.append(f"{metric}{_labels(model=model, stream=stream)} {values[key]}")
            family("modelops_capture_buffer_limit_records", "gauge", "Rows the capture buffer holds at most.")
            lines.append(f"modelops_capture_buffer_limit_records {capture['max_buffered']}")
            family(
                "modelops_capture_writer_cpu_seconds_total", "counter", "CPU the capture writer thread spent on files."
            )
            lines.append(f"modelops_capture_writer_cpu_seconds_total {capture['writer_cpu_seconds']}")
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Times every HTTP request and counts it by model, endpoint and status (pure ASGI)."""

    def __init__(self, app: Any, metrics: Metrics, models: Iterable[str]):
        self.app = app
        self.metrics = metrics
        # A set given is kept by reference: models added later (ServingState.discover) count too.
        self.models = models if isinstance(models, set) else set(models)

    def classify(self, path: str) -> tuple[str, str]:
        match = _MODEL_PATH.match(path)
        if match:
            model = match["model"]
            # Unknown names share one label value: a scan must not mint unbounded series.
            return (model if model in self.models else "_unknown"), match["endpoint"]
        return "", _PLAIN_PATHS.get(path.rstrip("/") or "/", "other")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            model, endpoint = self.classify(scope.get("path", ""))
            self.metrics.observe(model, endpoint, status, time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------
# The app
# ------------------------------------------------------------------------------------------------


class ServingState:
    """Everything the routes share; ``app.state.serving``."""

    def __init__(
        self,
        settings: _settings.Settings,
        configs: Mapping[str, ModelConfig],
        options: ServingOptions,
        writer: CaptureWriter | None,
        discover_models: bool = False,
    ):
        self.settings = settings
        self.options = options
        self.slots = {name: ModelSlot(config) for name, config in sorted(configs.items())}
        #: Models served, shared with the metrics middleware (labels stay bounded to these).
        self.model_names = set(self.slots)
        #: Declared-after-start models are picked up on reload when serving reads the models folder.
        self.discover_models = discover_models
        self._discover_lock = threading.Lock()
        self.writer = writer
        self.metrics = Metrics()
        #: Model calls run here (one per model at a time); created and shut down by the lifespan.
        self.executor: ThreadPoolExecutor | None = None
        for slot in self.slots.values():
            slot.batcher = Batcher(slot, self)

    def slot(self, model: str) -> ModelSlot:
        slot = self.slots.get(model)
        if slot is None:
            raise HTTPException(404, f"unknown model '{model}'; this server serves {sorted(self.slots)}")
        return slot

    def discover(self, model: str) -> ModelSlot | None:
        """A model declared after the server started (its YAML now in the models folder): add its
        slot, so the first deploy of a new model needs no serving restart. None if not declared."""
        if not self.discover_models or not NAME_PATTERN.match(model):
            return None
        with self._discover_lock:
            if model in self.slots:
                return self.slots[model]
            try:
                config = get_model(model)
            except ConfigError as exc:
                log.info("reload of undeclared model '%s': %s", model, exc)
                return None
            if config.name != model:
                return None
            slot = ModelSlot(config)
            slot.batcher = Batcher(slot, self)
            self.slots = {**self.slots, model: slot}  # readers iterate a complete dict, old or new
            self.model_names.add(model)
            log.info("%s: newly declared model added (no restart needed)", model)
            return slot

    def load(self, slot: ModelSlot, version: str | None = None) -> LoadedModel:
        return load_model_version(slot.config, self.settings.mlflow_tracking_uri, version)

    def load_all(self) -> None:
        """Load every champion; a model without one (or failing to load) stays "not loaded"."""
        for slot in self.slots.values():
            self._load_champion(slot)

    def _load_champion(self, slot: ModelSlot) -> bool:
        name = slot.config.name
        try:
            loaded = self.load(slot)
        except NoChampion as exc:
            slot.reason, slot.retry_at = "no champion is registered yet", None
            log.warning("%s", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - one broken model must not stop the others
            retry = self.options.load_retry_seconds
            slot.reason = f"loading the champion failed: {exc}"
            if retry > 0:
                slot.retry_delay = min(300.0, slot.retry_delay * 2 if slot.retry_delay else retry)
                slot.retry_at = time.monotonic() + slot.retry_delay
                slot.reason += f" (next attempt in {slot.retry_delay:.0f} s)"
            log.exception("%s: loading the champion failed; retried in the background, or POST /models/%s/reload", name, name)  # fmt: skip
            return False
        slot.current, slot.reason, slot.retry_at, slot.retry_delay = loaded, None, None, 0.0
        log.info("%s: serving version %s (%s)", name, loaded.version, loaded.model_uri)
        return True

    def retry_failed_loads(self) -> list[str]:
        """One pass: load the champions whose earlier load failed and whose retry time has come.
        A reload in progress wins (the slot is skipped); a model loaded meanwhile is left alone."""
        loaded = []
        for name, slot in list(self.slots.items()):
            if slot.retry_at is None or time.monotonic() < slot.retry_at:
                continue
            if not slot.reload_lock.acquire(blocking=False):
                continue
            try:
                if slot.current is not None:
                    slot.retry_at = None
                elif self._load_champion(slot):
                    loaded.append(name)
            finally:
                slot.reload_lock.release()
        return loaded


async def _retry_failed_loads(state: ServingState) -> None:
    """Background task of the lifespan: a champion that could not be loaded at start (MLflow or S3
    unreachable) is served as soon as a retry succeeds, without a reload call or a restart."""
    while True:
        await asyncio.sleep(min(1.0, state.options.load_retry_seconds))
        if any(slot.retry_at is not None for slot in state.slots.values()):
            for name in await run_in_threadpool(state.retry_failed_loads):
                log.info("%s: champion loaded on retry", name)


def _default_store(settings: _settings.Settings) -> Store:
    import boto3
    from botocore.config import Config

    # Short timeouts: the writer thread retries on its own schedule, and shutdown must not hang.
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
    return Store(bucket=settings.bucket, client=boto3.client("s3", config=config, **settings.boto3_kwargs()))


def create_app(
    settings: _settings.Settings | None = None,
    models: Mapping[str, ModelConfig] | Iterable[ModelConfig] | None = None,
    *,
    options: ServingOptions | None = None,
    store: Any = None,
) -> FastAPI:
    """The serving app for ``models`` (default: every file in ``include/models/``).

    ``settings`` default to the environment (:func:`modelops.settings.load`), ``options`` to
    ``MODELOPS_SERVING_*`` / ``MODELOPS_CAPTURE_*``; ``store`` (a :class:`~modelops.store.Store`)
    to the settings' bucket. Models load and the capture thread starts in the lifespan (startup),
    and the capture buffer is flushed at shutdown.
    """
    settings = settings or _settings.load()
    options = options or ServingOptions.from_env()
    if models is None:
        configs = load_all_models()
    elif isinstance(models, Mapping):
        configs = dict(models)
    else:
        configs = {config.name: config for config in models}
    writer = None
    if options.capture_enabled:
        writer = CaptureWriter(store if store is not None else _default_store(settings), options.capture)
    state = ServingState(settings, configs, options, writer, discover_models=models is None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Room for models declared after start, too (see ServingState.discover).
        state.executor = ThreadPoolExecutor(max(4, len(state.slots)), thread_name_prefix="modelops-predict")
        if writer is not None:
            writer.start()
        await run_in_threadpool(state.load_all)
        retrying = asyncio.create_task(_retry_failed_loads(state)) if options.load_retry_seconds > 0 else None
        yield
        if retrying is not None:
            retrying.cancel()
        # Requests in flight have finished (uvicorn drains them first); their capture rows are queued.
        state.executor.shutdown(wait=True)
        if writer is not None:
            await run_in_threadpool(writer.close)

    app = FastAPI(
        title="modelops serving",
        version="1",
        summary="Champion models from the MLflow registry, with validated requests and traffic capture.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, models=state.model_names)

    def token_problem(authorization: str | None) -> str | None:
        """Why ``authorization`` (the header's value) is not the server's bearer token, or None."""
        expected = state.settings.serving_token
        if not expected:
            return "the server has no MODELOPS_SERVING_TOKEN set"
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing bearer token: send 'Authorization: Bearer <token>'"
        if not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return "invalid bearer token"
        return None

    def event_time_of(value: str | None, authorization: str | None, *, token_checked: bool) -> dt.datetime | None:
        """The instant of ``X-Modelops-Event-Time``, when sent, allowed and well formed (else 403/400)."""
        if value is None:
            return None
        if not options.accept_event_time:
            raise HTTPException(
                403,
                f"{EVENT_TIME_HEADER} is not accepted by this server: it is for simulated traffic and needs "
                "MODELOPS_SERVING_ACCEPT_EVENT_TIME=true on the server (off in production); send the request without it",
            )
        if not token_checked:
            why = token_problem(authorization)
            if why is not None:
                raise HTTPException(403, f"{EVENT_TIME_HEADER} needs the bearer token: {why}")
        try:
            instant = dt.datetime.fromisoformat(value.strip())
            if instant.tzinfo is not None and instant.utcoffset() is not None:
                instant = instant.astimezone(dt.UTC)  # OverflowError at the ends of the calendar
        except (ValueError, OverflowError):
            instant = None
        if instant is None or instant.tzinfo is None or instant.utcoffset() is None:
            raise HTTPException(
                400,
                f"{EVENT_TIME_HEADER}: {value[:60]!r} is not an ISO-8601 instant; send one with a UTC offset, "
                "like 2026-11-18T12:00:00Z",
            )
        return instant

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        expected = state.settings.serving_token
        if not expected:
            raise HTTPException(403, "this endpoint is disabled: the server has no MODELOPS_SERVING_TOKEN set")
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401, "missing bearer token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
            raise HTTPException(403, "invalid bearer token")

    def invalid(exc: RequestInvalid) -> JSONResponse:
        listed = exc.problems[:MAX_LISTED_PROBLEMS]
        body: dict[str, Any] = {"detail": listed, "problem_count": len(exc.problems)}
        if len(exc.problems) > len(listed):
            body["truncated"] = f"{len(exc.problems) - len(listed)} more problem(s) not listed"
        return JSONResponse(body, status_code=422)

    @app.get("/health", summary="Liveness and which models are loaded")
    def health() -> dict:
        models_state = {
            name: {"loaded": slot.current is not None}
            | ({"version": slot.current.version} if slot.current else {"reason": slot.reason})
            for name, slot in state.slots.items()
        }
        capture = None
        if writer is not None:
            stats = writer.stats()
            capture = {
                k: stats[k]
                for k in ("pending", "max_buffered", "written", "dropped", "write_failures", "writer_cpu_seconds")
            }
        return {
            "status": "ok",
            "ready": all(slot.current is not None for slot in state.slots.values()),
            "models": models_state,
            "capture": capture,
        }

    @app.get("/models", summary="Configured models and the version serving each")
    def list_models() -> dict:
        return {"models": [slot.describe() for slot in state.slots.values()]}

    @app.post(
        "/models/{model}/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        summary="Score one record or a batch",
        responses={
            400: {"description": f"Malformed {EVENT_TIME_HEADER}"},
            403: {"description": f"{EVENT_TIME_HEADER} sent to a server that does not accept it, or without the bearer token"},
            404: {"description": "Unknown model"},
            422: {"description": "Invalid request (or body not valid JSON): each problem names the record index and the field"},
            503: {"description": "The model has no champion loaded"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
    )  # fmt: skip
    async def predict(
        model: str, request: Request, event_time_header: Annotated[str | None, EVENT_TIME_PARAM] = None
    ) -> Response:
        # The body is read and checked here, not by a pydantic model per row: see check_records.
        slot = state.slot(model)
        instant = event_time_of(event_time_header, request.headers.get("authorization"), token_checked=False)
        try:
            body = parse_json_body(await request.body(), request.headers.get("content-type"))
            records, location = records_of_body(body, options.max_batch)
            columns = check_records(slot.config, slot.spec, records, location)
        except RequestInvalid as exc:
            return invalid(exc)
        if slot.current is None:
            raise HTTPException(503, slot.unavailable())
        request_id = uuid.uuid4().hex
        outcome = await slot.batcher.submit(PendingPrediction(columns, location, request_id, instant))
        if isinstance(outcome, HTTPException):
            raise outcome
        if isinstance(outcome, RequestInvalid):
            return invalid(outcome)
        return Response(outcome.body, media_type="application/json", headers={"X-Request-ID": request_id})

    @app.post(
        "/models/{model}/reload",
        response_model=ReloadResponse,
        summary="Load the champion (or a given version) and swap it in without dropping requests",
        dependencies=[Depends(require_token)],
        responses={
            401: {"description": "No bearer token"},
            403: {"description": "Wrong token, or no token configured on the server"},
            404: {"description": "Unknown model or version"},
            409: {"description": "The model has no champion"},
            503: {
                "description": "Loading failed (registry or artifact store unreachable); the old version keeps serving"
            },
        },
    )
    def reload(model: str, body: Annotated[ReloadRequest | None, Body()] = None) -> dict:
        slot = state.slots.get(model) or state.discover(model) or state.slot(model)
        version = None
        if body is not None and body.version is not None:
            version = str(body.version).strip()
            if not version.isdigit():
                return invalid(
                    RequestInvalid(
                        [problem("value_error", ["body", "version"], f"version must be a number like \"3\", got {body.version!r}", field="version")]
                    )
                )  # fmt: skip
        # One reload per model at a time; predictions go on meanwhile (this runs in a worker thread).
        with slot.reload_lock:
            old = slot.current
            start = time.perf_counter()
            try:
                new = state.load(slot, version)
            except NoChampion as exc:
                raise HTTPException(409, str(exc)) from None
            except VersionNotFound as exc:
                raise HTTPException(404, str(exc)) from None
            except Exception as exc:
                log.exception("%s: reload failed; version %s keeps serving", model, old.version if old else None)
                raise HTTPException(
                    503, f"loading model '{model}' failed: {exc}; " + (f"version {old.version} keeps serving" if old else "still not loaded")
                ) from None  # fmt: skip
            slot.current = new  # the swap
            slot.reason, slot.retry_at, slot.retry_delay = None, None, 0.0
        log.info("%s: swapped version %s -> %s", model, old.version if old else None, new.version)
        return {
            "model": model,
            "old_version": old.version if old else None,
            "new_version": new.version,
            "changed": old is None or old.version != new.version,
            "alias": new.alias,
            "model_uri": new.model_uri,
            "run_id": new.run_id,
            "loaded_at": new.loaded_at.isoformat(),
            "load_seconds": round(time.perf_counter() - start, 3),
        }

    @app.post(
        "/models/{model}/feedback",
        response_model=FeedbackResponse,
        status_code=202,
        summary="Ground-truth labels for captured predictions (joined later by request id and record index)",
        dependencies=[Depends(require_token)],
        responses={
            401: {"description": "No bearer token"},
            403: {"description": "Wrong token, or no token configured on the server"},
            404: {"description": "Unknown model"},
            400: {"description": f"Malformed {EVENT_TIME_HEADER}"},
            422: {"description": "Invalid labels (or body not valid JSON): each problem names the label index"},
            503: {"description": "Capture is disabled on this server"},
        },
    )
    def feedback(
        model: str, body: FeedbackRequest, event_time_header: Annotated[str | None, EVENT_TIME_PARAM] = None
    ) -> JSONResponse:
        slot = state.slot(model)
        config = slot.config
        instant = event_time_of(event_time_header, None, token_checked=True)  # the route already requires the token
        if writer is None:
            raise HTTPException(503, "capture is disabled on this server (MODELOPS_CAPTURE_ENABLED=false)")
        if len(body.labels) > options.max_feedback:
            return invalid(
                RequestInvalid(
                    [problem("too_long", ["body", "labels"], f"{len(body.labels)} labels exceed the limit of {options.max_feedback} per request: split them", field="labels")]
                )
            )  # fmt: skip
        loaded = slot.current
        known = {category_text(c) for c in loaded.classes} if loaded and loaded.classes is not None else None
        received_at = instant or dt.datetime.now(dt.UTC)
        problems, rows = [], []
        for index, item in enumerate(body.labels):
            loc = ["body", "labels", index, "label"]
            label: Any
            if config.is_classifier:
                label = category_text(item.label)
                if known is not None and label not in known:
                    problems.append(
                        problem("unknown_class", loc, f"label {item.label!r} is not one of the model's classes {loaded.classes}", field="label", index=index)
                    )  # fmt: skip
            else:
                if (
                    isinstance(item.label, bool)
                    or not isinstance(item.label, int | float)
                    or not math.isfinite(item.label)
                ):
                    problems.append(
                        problem("wrong_type", loc, f"'{config.target}' is a regression target: send a finite number, got {_describe(item.label)}", field="label", index=index)
                    )  # fmt: skip
                    continue
                label = float(item.label)
            rows.append(
                {
                    "request_id": item.request_id,
                    "record_index": item.record_index,
                    "label": label,
                    "received_at": received_at,
                    "model": model,
                }
            )
        if problems:
            return invalid(RequestInvalid(problems))
        writer.enqueue(FEEDBACK, model, received_at.date(), rows, slot.feedback_schema)
        return JSONResponse(
            {"model": model, "accepted": len(rows), "received_at": received_at.isoformat()}, status_code=202
        )

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def metrics() -> PlainTextResponse:
        text = state.metrics.render(state.slots, writer.stats() if writer is not None else None)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
