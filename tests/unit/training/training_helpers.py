"""Tiny model configs and frames for the training unit tests (both problem types)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression

from modelops.config import ModelConfig

FEATURES = [
    {"name": "x0", "type": "numeric"},
    {"name": "x1", "type": "numeric", "nullable": True},
    {"name": "x2", "type": "numeric"},
    {"name": "segment", "type": "categorical", "nullable": True},
]


def make_config(problem: str = "binary_classification", **overrides) -> ModelConfig:
    primary, secondary = (
        ("roc_auc", ["f1", "accuracy", "log_loss"]) if problem != "regression" else ("rmse", ["mae", "r2", "mape"])
    )
    raw = {
        "name": "toy",
        "problem_type": problem,
        "target": "y",
        "features": FEATURES,
        "data": {"timestamp_column": "ts"},
        "training": {"cv_folds": 3, "random_seed": 7},
        "metrics": {"primary": primary, "secondary": secondary},
        "gate": {"slice_column": "segment"},
    }
    raw.update(overrides)
    return ModelConfig.model_validate(raw)


def make_frame(problem: str = "binary_classification", n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three numeric features (one with NaNs), a categorical one (with NaNs) that carries signal."""
    rng = np.random.default_rng(seed)
    if problem == "regression":
        X, y = make_regression(n_samples=n, n_features=3, n_informative=3, noise=10.0, random_state=seed)
        y = y + 200.0  # positive, so mape is defined
    else:
        X, y = make_classification(n_samples=n, n_features=3, n_informative=2, n_redundant=0, random_state=seed)
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    df["segment"] = np.where(df["x0"] > 0.5, "high", np.where(df["x0"] < -0.5, "low", "mid"))
    df.loc[rng.random(n) < 0.05, "x1"] = np.nan
    df.loc[rng.random(n) < 0.05, "segment"] = None
    df["y"] = y
    df["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), unit="h")
    return df
