"""Request and response bodies of the serving API: what OpenAPI shows and clients rely on.

Kept apart from validation: these pydantic models describe the wire (field names, limits,
examples); the predict body itself is checked column by column in :mod:`.validation`, not by
a pydantic model per row, because that is the hot path.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    #: The serving worker that took the reload (the others follow the champion alias by themselves).
    worker: str
    old_version: str | None
    new_version: str
    changed: bool
    alias: str | None
    model_uri: str
    run_id: str | None
    loaded_at: str
    load_seconds: float
    #: ``compiled`` or ``pipeline``: how this worker scores the version (see modelops.serving.compiled).
    scoring_path: str | None = None


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
