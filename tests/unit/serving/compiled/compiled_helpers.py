"""Small fitted pipelines of every built-in family and problem type, and rows that stress lowering.

The training frame has NaNs in a numeric and a categorical feature, a categorical feature with
more categories than ``max_categories`` (so rare ones are grouped as infrequent), and numeric
category codes; the scoring rows add unseen categories, NaN categories and missing numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelops.config import ModelConfig
from modelops.training import pipelines
from modelops.training.pipelines import build_pipeline

FEATURES = [
    {"name": "x0", "type": "numeric"},
    {"name": "x1", "type": "numeric", "nullable": True},
    {"name": "segment", "type": "categorical", "nullable": True},
    {"name": "shop", "type": "categorical"},
    {"name": "tier", "type": "categorical", "nullable": True},
]
FAMILY_PARAMS = {
    "linear": {},
    "random_forest": {"n_estimators": 12, "max_depth": 6},
    "hist_gradient_boosting": {"max_iter": 15, "early_stopping": False},
    "xgboost": {"n_estimators": 10, "max_depth": 3},
    "lightgbm": {"n_estimators": 10, "num_leaves": 7, "min_child_samples": 5},
}
PROBLEMS = ("binary_classification", "multiclass_classification", "regression")


def make_config(problem: str) -> ModelConfig:
    primary = {"regression": "rmse", "binary_classification": "roc_auc"}.get(problem, "accuracy")
    return ModelConfig.model_validate(
        {
            "name": "parity",
            "problem_type": problem,
            "target": "y",
            "features": FEATURES,
            "metrics": {"primary": primary},
        }
    )


def make_frame(problem: str, n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    # 60 shops, a few frequent and many rare: max_categories=50 groups the rare ones.
    shop = np.where(
        rng.random(n) < 0.7, rng.choice(["s0", "s1", "s2"], size=n), [f"s{i}" for i in rng.integers(3, 60, n)]
    )
    segment = pd.Series(np.where(x0 > 0.3, "high", np.where(x0 < -0.3, "low", "mid")), dtype=object)
    segment[rng.random(n) < 0.1] = np.nan
    tier = pd.Series(rng.choice([1.0, 2.0, 3.0], size=n), dtype=object)  # numeric category codes
    tier[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({"x0": x0, "x1": x1, "segment": segment, "shop": shop, "tier": tier})
    frame.loc[rng.random(n) < 0.15, "x1"] = np.nan
    signal = x0 + 0.5 * np.nan_to_num(x1) + (frame["shop"] == "s1") * 0.8
    if problem == "regression":
        frame["y"] = 100.0 + 10 * signal + rng.normal(size=n)
    elif problem == "binary_classification":
        frame["y"] = np.where(signal + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    else:
        frame["y"] = np.digitize(signal + rng.normal(scale=0.5, size=n), [-0.7, 0.7])
    return frame


def scoring_rows(n: int = 150) -> pd.DataFrame:
    """Held-out-like rows plus unseen categories, NaN categories and missing numbers."""
    frame = make_frame("regression", n=n, seed=1).drop(columns="y")
    frame.loc[0:9, "shop"] = "never-seen"
    frame.loc[10:19, "segment"] = np.nan
    frame.loc[20:24, "tier"] = 7.0  # an unseen numeric code
    frame.loc[25:29, "x1"] = np.nan
    frame.loc[30:35, "shop"] = rarest_shops() * 2  # grouped as infrequent by max_categories
    return frame


def rarest_shops() -> list[str]:
    """The three least frequent shops of the training frame (the same in every problem type)."""
    counts = make_frame("regression")["shop"].value_counts()
    return sorted(counts.index, key=lambda shop: (counts[shop], shop))[:3]


def fitted(family: str, problem: str, **params):
    config = make_config(problem)
    frame = make_frame(problem)
    pipeline = build_pipeline(config, family, {**FAMILY_PARAMS[family], **params})
    y = frame["y"]
    if family == "xgboost" and config.is_classifier:  # xgboost takes class labels 0..k-1 only
        y = y.astype("category").cat.codes
    return config, pipeline.fit(frame[config.feature_names], y)


assert pipelines.MAX_ONE_HOT_CATEGORIES == 50  # the rare shops above rely on it
