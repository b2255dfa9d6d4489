"""What each candidate searches: its small grid, its relative cost, the bounds on cost
parameters and the types skops must trust to store it.

One table per candidate family, kept apart from the code that builds and fits pipelines, so
adding or tuning a candidate is an edit in one place.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: Small grids, simplest setting first (ties inside a candidate go to the earlier setting).
#: ``linear`` takes ``C`` for both problem types: LogisticRegression uses it as is, Ridge gets
#: ``alpha = 1 / C``, so one knob means "larger = weaker regularisation" in both.
SEARCH_SPACES: dict[str, list[dict[str, Any]]] = {
    "linear": [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}],
    "random_forest": [
        {"n_estimators": 100, "max_depth": 8, "min_samples_leaf": 5},
        {"n_estimators": 100, "max_depth": 16, "min_samples_leaf": 2},
    ],
    "hist_gradient_boosting": [
        {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 15},
        {"learning_rate": 0.05, "max_iter": 300, "max_leaf_nodes": 31},
    ],
    "xgboost": [
        {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 4},
        {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6},
    ],
    "lightgbm": [
        {"n_estimators": 200, "learning_rate": 0.1, "num_leaves": 15},
        {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31},
    ],
}

#: Relative cost of one fit (train time and model size), measured on the churn and
#: delivery_time shapes; used only to break ties in :func:`select_best`. XGBoost and LightGBM
#: (2026-12-03, 10k rows, first setting of each grid): fit time 0.7x hist_gradient_boosting's,
#: model 2-3x its size (0.3 MB); xgboost the slower and larger of the two.
RELATIVE_COST: dict[str, float] = {
    "linear": 1.0,
    "hist_gradient_boosting": 3.0,
    "lightgbm": 3.0,
    "xgboost": 3.5,
    "random_forest": 5.0,
}

#: Families whose classifiers take class labels 0..k-1 only (XGBoost encodes no labels itself).
_INTEGER_CLASSES_ONLY = {"xgboost"}

#: Upper bounds on cost parameters, whatever a caller passes: a typo must not run for hours.
PARAM_BOUNDS: dict[str, tuple[int, int]] = {
    "n_estimators": (1, 500),
    "max_iter": (1, 5000),
    "max_depth": (1, 64),
    "num_leaves": (2, 4096),
}

#: Types ``skops`` does not trust by default, per candidate, as found by
#: ``skops.io.get_untrusted_types`` on each fitted pipeline (proven in tests/unit/training/test_pipelines.py).
#: ``numpy.dtype`` comes from the numeric SimpleImputer (sklearn 1.9 stores the fitted dtype), the
#: rest from the trees. STACK-NOTES names only TreePredictor: without ``numpy.dtype`` MLflow's
#: dump-then-load check refuses every one of these pipelines. ``{estimator}`` is the estimator's
#: class name for the problem type (XGBoost and LightGBM store their own sklearn wrapper classes).
_SKOPS_UNTRUSTED: dict[str, list[str]] = {
    "linear": ["numpy.dtype"],
    "random_forest": ["numpy.dtype", "sklearn.tree._tree.Tree"],
    "hist_gradient_boosting": [
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ],
    "xgboost": ["numpy.dtype", "xgboost.core.Booster", "xgboost.sklearn.XGB{estimator}"],
    "lightgbm": [
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBM{estimator}",
        "numpy.dtype",
    ],
}


def check_candidate(candidate: str, config: Any = None) -> None:
    """Refuse a candidate name that is neither a built-in family nor one of the model's own."""
    known = set(SEARCH_SPACES) | set(config.custom_candidates if config is not None else ())
    if candidate not in known:
        raise ValueError(f"unknown candidate '{candidate}'; choose from {sorted(known)}")


def search_space_for(config: Any, candidate: str) -> list[dict[str, Any]]:
    """The settings a candidate searches: the family's table, or the model's own declaration/code."""
    check_candidate(candidate, config)
    custom = config.custom_candidates.get(candidate)
    if custom is None:
        return SEARCH_SPACES[candidate]
    from modelops.usercode import loader

    return loader.search_space(config, custom)


def relative_cost_for(config: Any, candidate: str) -> float:
    custom = config.custom_candidates.get(candidate)
    return custom.relative_cost if custom is not None else RELATIVE_COST[candidate]


def check_classes(candidate: str, classes: list | None, *, model: str, target: str) -> None:
    """Refuse class labels the family cannot take, naming them and a family that can."""
    if candidate in _INTEGER_CLASSES_ONLY and classes is not None and classes != list(range(len(classes))):
        raise ValueError(
            f"{model}: {candidate} needs class labels 0..{len(classes) - 1}, but target '{target}' "
            f"has {classes[:10]}; choose lightgbm (any labels) or encode the target as integers"
        )


def check_bounds(candidate: str, params: dict[str, Any]) -> None:
    """Refuse a cost parameter outside :data:`PARAM_BOUNDS`."""
    for name, (low, high) in PARAM_BOUNDS.items():
        value = params.get(name)
        if value is not None and not low <= value <= high:
            raise ValueError(f"{candidate}: parameter '{name}'={value} is outside the allowed range [{low}, {high}]")


def skops_trusted_types(candidate: str, problem_type: str | None = None) -> list[str]:
    """The exact types to pass as ``mlflow.sklearn.log_model(..., skops_trusted_types=...)``.

    MLflow dumps with skops and immediately loads back with this allow-list; anything missing
    fails the log. XGBoost and LightGBM store a different class per problem type (``XGBClassifier``
    or ``XGBRegressor``); ``problem_type`` None means classification.
    """
    check_candidate(candidate)
    estimator = "Regressor" if problem_type == "regression" else "Classifier"
    return [name.format(estimator=estimator) for name in _SKOPS_UNTRUSTED[candidate]]
