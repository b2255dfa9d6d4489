"""Candidate pipelines: preprocessing + estimator in one sklearn object per candidate family.

The registered artifact takes raw feature columns and survives categories it never saw, so
serving needs nothing but the artifact. sklearn is imported inside functions (cheap at parse time).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.training.search_spaces import check_bounds, check_candidate

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Cap on one-hot columns per categorical feature; rarer categories share one column.
MAX_ONE_HOT_CATEGORIES = 50


def _make_estimator(config: ModelConfig, candidate: str, params: dict[str, Any]) -> Any:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    seed = config.training.random_seed
    params = dict(params)
    if candidate == "linear":
        if config.is_classifier:
            return LogisticRegression(**{"max_iter": 1000, "random_state": seed, **params})
        if "C" in params:
            params["alpha"] = 1.0 / params.pop("C")
        return Ridge(**params)
    if candidate == "random_forest":
        cls = RandomForestClassifier if config.is_classifier else RandomForestRegressor
        defaults = {"n_estimators": 100, "max_depth": 16, "n_jobs": 1, "random_state": seed}
        return cls(**{**defaults, **params})
    if candidate in ("xgboost", "lightgbm"):
        return _make_library_booster(config, candidate, params)
    cls = HistGradientBoostingClassifier if config.is_classifier else HistGradientBoostingRegressor
    # Early stopping on an internal 10% split at every size (sklearn only turns it on above 10k rows):
    # it bounds the cost and keeps small-data runs from memorising the training rows.
    defaults = {
        "max_iter": 200,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "n_iter_no_change": 10,
        "random_state": seed,
    }
    return cls(**{**defaults, **params})


def _make_library_booster(config: ModelConfig, candidate: str, params: dict[str, Any]) -> Any:
    """XGBoost or LightGBM through their scikit-learn wrappers: one thread (a task is one slot of
    the training pool), the declaration's seed, no console output."""
    seed = config.training.random_seed
    if candidate == "xgboost":
        from xgboost import XGBClassifier, XGBRegressor

        cls = XGBClassifier if config.is_classifier else XGBRegressor
        defaults = {"n_jobs": 1, "random_state": seed, "tree_method": "hist", "verbosity": 0}
        return cls(**{**defaults, **params})
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMClassifier if config.is_classifier else LGBMRegressor
    return cls(**{"n_jobs": 1, "random_state": seed, "verbose": -1, **params})


def _shared_preprocessing(config: ModelConfig, scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, max_categories=MAX_ONE_HOT_CATEGORIES)
    transformers = []
    if config.model_numeric_features:
        transformers.append(("numeric", Pipeline(numeric_steps), config.model_numeric_features))
    if config.model_categorical_features:
        transformers.append(("categorical", Pipeline([("one_hot", one_hot)]), config.model_categorical_features))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def build_pipeline(config: ModelConfig, candidate: str, params: dict[str, Any] | None = None) -> Pipeline:
    """Preprocessing + estimator in one object, so serving needs nothing but the artifact.

    Numeric: median imputation with a missing-indicator (a missing value often means something,
    e.g. a brand-new customer), scaled only for the linear model. Categorical: one-hot with
    ``handle_unknown="ignore"``, so a category first seen in serving is encoded as all zeros
    instead of failing the request. Missing categorical values (NaN) are their own category,
    learned by the encoder itself: that is constant imputation without a SimpleImputer, which
    would refuse a string fill value on int- or bool-coded categories. Serving should send
    missing values as NaN: an object column holding ``None`` is encoded as unknown (all zeros).
    """
    from sklearn.pipeline import Pipeline

    from modelops.usercode import loader

    check_candidate(candidate, config)
    params = dict(params or {})
    check_bounds(candidate, params)
    # The model's own feature steps come first, in every candidate: they are part of the logged model.
    # Flat steps, not a nested Pipeline: a nested one would ask a stateless step to look fitted.
    steps: list[tuple[str, Any]] = [(f"feature_{name}", step) for name, step in loader.feature_steps(config)]
    custom = config.custom_candidates.get(candidate)
    if custom is not None:
        if custom.preprocessing == "shared":
            steps.append(("preprocess", _shared_preprocessing(config, scale=False)))
        return Pipeline([*steps, ("model", loader.make_estimator(config, custom, params))])
    steps.append(("preprocess", _shared_preprocessing(config, scale=candidate == "linear")))
    try:
        estimator = _make_estimator(config, candidate, params)
    except TypeError as exc:
        raise ValueError(f"{candidate}: invalid parameters {params}: {exc}") from exc
    return Pipeline([*steps, ("model", estimator)])
