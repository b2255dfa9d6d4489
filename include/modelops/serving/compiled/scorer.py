"""Lowering a fitted pipeline into a :class:`CompiledScorer`, or saying why it cannot be.

The platform's pipelines are ``[feature_* steps...] -> preprocess (ColumnTransformer) -> model``.
A user's feature step or a custom estimator is their own code: it is not lowered, and the
pipeline serves (the reason names the step). Lowering never guesses: anything unknown raises
:class:`~modelops.serving.compiled.base.CannotLower`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops.serving.compiled.base import CannotLower, Columns, ModelStep, column_length, exact_type, type_name
from modelops.serving.compiled.column_transformer import LoweredColumnTransformer

log = logging.getLogger(__name__)


def _lower_model(model: Any) -> ModelStep:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    from modelops.serving.compiled.forest import LoweredForest
    from modelops.serving.compiled.hist_boosting import LoweredHistBoosting
    from modelops.serving.compiled.library import LibraryBooster, is_library_booster
    from modelops.serving.compiled.linear import LoweredLogistic, LoweredRidge

    if exact_type(model, LogisticRegression):
        return LoweredLogistic(model)
    if exact_type(model, Ridge):
        return LoweredRidge(model)
    if exact_type(model, RandomForestClassifier, RandomForestRegressor):
        return LoweredForest(model, classifier=exact_type(model, RandomForestClassifier))
    if exact_type(model, HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        return LoweredHistBoosting(model, classifier=exact_type(model, HistGradientBoostingClassifier))
    if is_library_booster(model):
        return LibraryBooster(model, classifier=hasattr(model, "classes_"))
    raise CannotLower(f"custom estimator {type_name(model)} is not lowered")


@dataclass(frozen=True)
class CompiledScorer:
    """The pipeline as array code: raw feature columns in, the pipeline's answers out."""

    preprocess: LoweredColumnTransformer
    model: ModelStep
    #: The input columns the preprocessing reads.
    features: Sequence[str]

    @property
    def classes(self) -> np.ndarray | None:
        return self.model.classes

    @property
    def description(self) -> str:
        return f"preprocessing (numpy) + {self.model.description}"

    def transform(self, columns: Columns) -> np.ndarray:
        return self.preprocess.transform(columns, column_length(columns))

    def predict_proba(self, columns: Columns) -> np.ndarray:
        return self.model.predict_proba(self.transform(columns))

    def predict(self, columns: Columns) -> np.ndarray:
        return self.model.predict(self.transform(columns))


def lower(pipeline: Any) -> CompiledScorer:
    """The compiled form of a fitted ``preprocess -> model`` pipeline; :class:`CannotLower` names what blocks it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not exact_type(pipeline, Pipeline):
        raise CannotLower(f"the model is a {type_name(pipeline)}, not a scikit-learn Pipeline")
    steps = list(pipeline.steps)
    for name, step in steps[:-1]:
        if name != "preprocess":
            raise CannotLower(f"feature step '{name}' ({type_name(step)}) is the model's own code and is not lowered")
    if len(steps) != 2 or not exact_type(steps[0][1], ColumnTransformer):
        raise CannotLower("the pipeline has no shared 'preprocess' ColumnTransformer before its model")
    preprocess = LoweredColumnTransformer(steps[0][1])
    model = _lower_model(steps[1][1])
    return CompiledScorer(preprocess=preprocess, model=model, features=preprocess.features)


def lower_or_reason(pipeline: Any) -> tuple[CompiledScorer | None, str | None]:
    """:func:`lower`, or None and the reason (a lowering that crashes is a reason too, never an error)."""
    try:
        return lower(pipeline), None
    except CannotLower as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected fitted state: serve the pipeline, say why
        log.exception("lowering %s failed", type_name(pipeline))
        return None, f"lowering failed: {type(exc).__name__}: {exc}"
