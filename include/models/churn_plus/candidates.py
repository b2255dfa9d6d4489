"""The churn_plus candidates: a LightGBM the data scientist tuned by hand, searched by the platform."""

from __future__ import annotations

#: Settings tried under the platform's K-fold CV (keyword arguments of make_lightgbm).
SEARCH_SPACE = [
    {"num_leaves": 15, "learning_rate": 0.1},
    {"num_leaves": 31, "learning_rate": 0.05},
]


def make_lightgbm(num_leaves: int = 15, learning_rate: float = 0.1, random_seed: int = 0):
    """An unfitted LightGBM classifier; the platform puts its preprocessing in front of it."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=200,
        num_leaves=num_leaves,
        learning_rate=learning_rate,
        min_child_samples=20,
        random_state=random_seed,
        n_jobs=1,
        verbose=-1,
    )
