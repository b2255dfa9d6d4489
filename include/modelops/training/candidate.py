"""Candidate training: one small, honest search per estimator family, then rules that can fail it.

Each candidate (``linear``, ``random_forest``, ``hist_gradient_boosting``) is a full sklearn
Pipeline (preprocessing + estimator) so the registered artifact takes raw feature columns and
survives categories it never saw. A candidate is searched over a deliberately small grid with
K-fold CV, refit on the whole training set, then checked by training rules (SageMaker Debugger's
idea: overfitting, unstable CV, degenerate predictions, non-convergence). A candidate that breaks
a rule is kept in the record but not selected, and the reason says why.

sklearn, pandas and numpy are imported inside functions: DAG files may import this module at
parse time, and that must stay cheap. No MLflow here: the DAG task logs what this returns.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.metrics import LOWER_IS_BETTER

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    from sklearn.pipeline import Pipeline

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
}

#: Relative cost of one fit (train time and model size), measured on the churn and
#: delivery_time shapes; used only to break ties in :func:`select_best`.
RELATIVE_COST: dict[str, float] = {
    "linear": 1.0,
    "hist_gradient_boosting": 3.0,
    "random_forest": 5.0,
}

#: Upper bounds on cost parameters, whatever a caller passes: a typo must not run for hours.
PARAM_BOUNDS: dict[str, tuple[int, int]] = {
    "n_estimators": (1, 500),
    "max_iter": (1, 5000),
    "max_depth": (1, 64),
}

#: Types ``skops`` does not trust by default, per candidate, as found by
#: ``skops.io.get_untrusted_types`` on each fitted pipeline (proven in tests/unit/test_training.py).
#: ``numpy.dtype`` comes from the numeric SimpleImputer (sklearn 1.9 stores the fitted dtype), the
#: rest from the trees. STACK-NOTES names only TreePredictor: without ``numpy.dtype`` MLflow's
#: dump-then-load check refuses every one of these pipelines.
_SKOPS_UNTRUSTED: dict[str, list[str]] = {
    "linear": ["numpy.dtype"],
    "random_forest": ["numpy.dtype", "sklearn.tree._tree.Tree"],
    "hist_gradient_boosting": [
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ],
}

#: Metric name -> (sklearn scorer name, sign that turns the scorer value into the natural value).
_SCORERS: dict[str, tuple[str, int]] = {
    "roc_auc": ("roc_auc", 1),
    "accuracy": ("accuracy", 1),
    "f1": ("f1", 1),
    "f1_macro": ("f1_macro", 1),
    "precision": ("precision", 1),
    "recall": ("recall", 1),
    "log_loss": ("neg_log_loss", -1),
    "rmse": ("neg_root_mean_squared_error", -1),
    "mae": ("neg_mean_absolute_error", -1),
    "r2": ("r2", 1),
    "mape": ("neg_mean_absolute_percentage_error", -1),
}

#: Metrics on a fixed 0..1 scale (r2 is at most 1): gaps and spreads are compared in absolute
#: terms. Error metrics (rmse, mae, mape, log_loss) have the target's scale, so relative terms.
_BOUNDED_METRICS = {"roc_auc", "accuracy", "f1", "f1_macro", "precision", "recall", "r2"}

#: Cap on one-hot columns per categorical feature; rarer categories share one column.
MAX_ONE_HOT_CATEGORIES = 50


class NoViableCandidate(RuntimeError):
    """Every candidate failed its training rules; ``failures`` maps candidate -> reasons."""

    def __init__(self, message: str, failures: dict[str, list[str]]):
        super().__init__(message)
        self.failures = failures


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


def _check_candidate(candidate: str) -> None:
    if candidate not in SEARCH_SPACES:
        raise ValueError(f"unknown candidate '{candidate}'; choose from {sorted(SEARCH_SPACES)}")


def _check_bounds(candidate: str, params: dict[str, Any]) -> None:
    for name, (low, high) in PARAM_BOUNDS.items():
        value = params.get(name)
        if value is not None and not low <= value <= high:
            raise ValueError(f"{candidate}: parameter '{name}'={value} is outside the allowed range [{low}, {high}]")


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
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    _check_candidate(candidate)
    params = dict(params or {})
    _check_bounds(candidate, params)

    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if candidate == "linear":
        numeric_steps.append(("scale", StandardScaler()))
    one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, max_categories=MAX_ONE_HOT_CATEGORIES)
    transformers = []
    if config.numeric_features:
        transformers.append(("numeric", Pipeline(numeric_steps), config.numeric_features))
    if config.categorical_features:
        transformers.append(("categorical", Pipeline([("one_hot", one_hot)]), config.categorical_features))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    try:
        estimator = _make_estimator(config, candidate, params)
    except TypeError as exc:
        raise ValueError(f"{candidate}: invalid parameters {params}: {exc}") from exc
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def skops_trusted_types(candidate: str, problem_type: str | None = None) -> list[str]:
    """The exact types to pass as ``mlflow.sklearn.log_model(..., skops_trusted_types=...)``.

    MLflow dumps with skops and immediately loads back with this allow-list; anything missing
    fails the log. The list is the same for both problem types today; ``problem_type`` is accepted
    so a future difference has a place to go without changing callers.
    """
    _check_candidate(candidate)
    del problem_type
    return list(_SKOPS_UNTRUSTED[candidate])


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def metric_sign(metric: str) -> int:
    """+1 if the sklearn scorer returns the natural value, -1 if it returns its negation."""
    return _SCORERS[metric][1]


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def metric_names(config: ModelConfig) -> list[str]:
    """Primary first, then secondaries, without duplicates."""
    names = [config.metrics.primary]
    names += [m for m in config.metrics.secondary if m not in names]
    return names


def build_scorers(config: ModelConfig, classes: list[Any] | None = None) -> dict[str, Any]:
    """sklearn scorers for the config's metrics, keyed by metric name.

    For binary problems the positive class is the last of the sorted labels (what sklearn's
    ``predict_proba[:, 1]`` means), so string labels work for f1/precision/recall too. log_loss
    gets the label list so a fold or slice holding one class still scores instead of failing.
    """
    from sklearn.metrics import f1_score, get_scorer, log_loss, make_scorer, precision_score, recall_score

    binary = config.problem_type == "binary_classification"
    pos_label = classes[-1] if binary and classes else None
    scorers: dict[str, Any] = {}
    for metric in metric_names(config):
        if metric in {"f1", "precision", "recall"} and pos_label is not None:
            func = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[metric]
            scorers[metric] = make_scorer(func, pos_label=pos_label, zero_division=0)
        elif metric == "log_loss" and classes:
            scorers[metric] = make_scorer(
                log_loss, greater_is_better=False, response_method="predict_proba", labels=list(classes)
            )
        elif metric == "roc_auc" and config.problem_type == "multiclass_classification":
            scorers[metric] = get_scorer("roc_auc_ovr")
        else:
            scorers[metric] = get_scorer(_SCORERS[metric][0])
    return scorers


def score(scorer: Any, metric: str, model: Any, X: pd.DataFrame, y: Any) -> float | None:
    """One metric in its natural sign (rmse positive); None when undefined (e.g. one class)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(scorer(model, X, y)) * metric_sign(metric)
    except ValueError as exc:
        log.info("metric %s undefined here: %s", metric, exc)
        return None
    return None if math.isnan(value) else value


def _finite(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Training rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingRules:
    """Thresholds of the training rules; defaults suit the bundled models, override per test or run.

    Bounded metrics (AUC, accuracy, F1, R2...) are compared in absolute points; error metrics
    (rmse, mae, mape, log_loss) carry the target's units, so they are compared relative to the CV
    value instead.
    """

    #: Train minus CV primary, bounded metrics (AUC 0.98 train vs 0.75 CV = 0.23 > 0.2: fails).
    max_overfit_gap: float = 0.2
    #: 1 - train_error / cv_error, error metrics (train rmse under 30% of CV rmse: fails).
    max_relative_overfit_gap: float = 0.7
    #: Std of the primary across folds, bounded metrics.
    max_cv_std: float = 0.05
    #: Std / |mean| of the primary across folds, error metrics.
    max_cv_relative_std: float = 0.25
    #: Share of rows a classifier may give to its most frequent predicted class.
    max_majority_prediction_share: float = 0.99
    #: Std of a regressor's predictions / std of the target below which predictions are "constant".
    min_prediction_std_ratio: float = 1e-3
    #: Fail on a ConvergenceWarning during the final fit.
    fail_on_convergence_warning: bool = True


@dataclass(frozen=True)
class RuleResult:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value"] = _finite(self.value)
        out["threshold"] = _finite(self.threshold)
        return out


def check_overfitting(
    metric: str, train_value: float | None, cv_mean: float | None, rules: TrainingRules
) -> RuleResult:
    """Train far better than CV means the model memorised rows rather than learning a pattern."""
    name = "overfitting_gap"
    if train_value is None or cv_mean is None:
        return RuleResult(name, True, None, None, f"{metric} undefined on train or CV; overfitting not checked")
    if metric in _BOUNDED_METRICS:
        gap = train_value - cv_mean if higher_is_better(metric) else cv_mean - train_value
        threshold = rules.max_overfit_gap
        detail = f"train {metric} {train_value:.4f} vs CV {cv_mean:.4f}: gap {gap:.4f}"
    else:  # error metric: relative to the CV error
        gap = 1.0 - train_value / cv_mean if cv_mean > 0 else 0.0
        threshold = rules.max_relative_overfit_gap
        detail = f"train {metric} {train_value:.4g} vs CV {cv_mean:.4g}: train error is {gap:.0%} below CV"
    passed = gap <= threshold
    verdict = "within" if passed else "exceeds"
    return RuleResult(name, passed, gap, threshold, f"Overfitting: {detail}, {verdict} the limit {threshold:g}.")


def check_cv_stability(metric: str, folds: list[float | None], rules: TrainingRules) -> RuleResult:
    """A primary metric that swings across folds makes the CV mean, and the selection, unreliable."""
    import numpy as np

    name = "unstable_cv"
    values = [v for v in folds if v is not None]
    if len(values) < 2:
        return RuleResult(
            name, True, None, None, f"fewer than two defined CV folds for {metric}; stability not checked"
        )
    std = float(np.std(values))
    if metric in _BOUNDED_METRICS:
        value, threshold, what = std, rules.max_cv_std, f"std {std:.4f}"
    else:
        mean = abs(float(np.mean(values)))
        value = std / mean if mean > 0 else 0.0
        threshold, what = rules.max_cv_relative_std, f"std/mean {value:.2%}"
    passed = value <= threshold
    verdict = "within" if passed else "exceeds"
    return RuleResult(
        name,
        passed,
        value,
        threshold,
        f"CV stability: {metric} across {len(values)} folds has {what}, {verdict} the limit {threshold:g}.",
    )


def check_degenerate_predictions(
    is_classifier: bool, predictions: Any, y_true: Any, rules: TrainingRules
) -> RuleResult:
    """A model that answers the same thing for everyone has learned nothing usable.

    For classifiers the rule does not fire when the labels themselves are that lopsided: then the
    data, not the model, is the problem and the floor on the primary metric will say so.
    """
    import numpy as np
    import pandas as pd

    name = "degenerate_predictions"
    predictions = np.asarray(predictions)
    if len(predictions) == 0:
        return RuleResult(name, False, None, None, "Degenerate predictions: the model produced no predictions.")
    if is_classifier:
        shares = pd.Series(predictions).value_counts(normalize=True)
        share, top = float(shares.iloc[0]), shares.index[0]
        label_share = float(pd.Series(np.asarray(y_true)).value_counts(normalize=True).iloc[0])
        threshold = rules.max_majority_prediction_share
        passed = share < threshold or label_share >= threshold
        message = (
            f"Degenerate predictions: class {top!r} is predicted for {share:.1%} of training rows "
            f"(labels: majority {label_share:.1%}); limit {threshold:.0%}."
        )
        return RuleResult(name, passed, share, threshold, message)
    pred_std = float(np.std(predictions.astype(float)))
    y_std = float(np.std(np.asarray(y_true, dtype=float)))
    ratio = pred_std / y_std if y_std > 0 else (0.0 if pred_std == 0 else math.inf)
    threshold = rules.min_prediction_std_ratio
    passed = ratio >= threshold
    message = (
        f"Degenerate predictions: prediction std {pred_std:.4g} is {ratio:.2g} of the target std "
        f"{y_std:.4g}; minimum {threshold:g}."
    )
    return RuleResult(name, passed, ratio, threshold, message)


def check_convergence(warning_messages: list[str], rules: TrainingRules) -> RuleResult:
    """An optimiser that stopped at max_iter returns whatever it had: not a trustworthy model."""
    name = "non_convergence"
    count = len(warning_messages)
    passed = count == 0 or not rules.fail_on_convergence_warning
    if count == 0:
        message = "Convergence: the final fit converged."
    else:
        message = f"Convergence: the final fit raised {count} ConvergenceWarning(s): {warning_messages[0]}"
    return RuleResult(name, passed, float(count), 0.0, message)


# --------------------------------------------------------------------------------------------
# Training one candidate
# --------------------------------------------------------------------------------------------


@dataclass
class CandidateResult:
    candidate: str
    problem_type: str
    primary_metric: str
    params: dict[str, Any]
    #: metric -> {"mean", "std", "folds"} for the chosen setting, natural sign.
    cv_metrics: dict[str, dict[str, Any]]
    #: metric -> value of the refit model on its own training rows.
    train_metrics: dict[str, float | None]
    #: every setting tried: {"params", "primary_mean", "primary_std"}
    search: list[dict[str, Any]]
    n_train_rows: int
    cv_folds: int
    search_seconds: float
    fit_seconds: float
    relative_cost: float
    convergence_warnings: list[str]
    rules: list[RuleResult]
    passed: bool
    failure_reasons: list[str]
    model: Any = field(default=None, repr=False, compare=False)

    @property
    def cv_primary(self) -> float | None:
        return self.cv_metrics[self.primary_metric]["mean"]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the fitted model, JSON-safe (NaN becomes None)."""
        return {
            "candidate": self.candidate,
            "problem_type": self.problem_type,
            "primary_metric": self.primary_metric,
            "higher_is_better": higher_is_better(self.primary_metric),
            "cv_primary": _finite(self.cv_primary),
            "cv_primary_std": _finite(self.cv_metrics[self.primary_metric]["std"]),
            "params": dict(self.params),
            "cv_metrics": {
                m: {"mean": _finite(v["mean"]), "std": _finite(v["std"]), "folds": [_finite(f) for f in v["folds"]]}
                for m, v in self.cv_metrics.items()
            },
            "train_metrics": {m: _finite(v) for m, v in self.train_metrics.items()},
            "search": [
                {
                    "params": dict(s["params"]),
                    "primary_mean": _finite(s["primary_mean"]),
                    "primary_std": _finite(s["primary_std"]),
                    "cv_convergence_warnings": int(s.get("cv_convergence_warnings", 0)),
                }
                for s in self.search
            ],
            "n_train_rows": self.n_train_rows,
            "cv_folds": self.cv_folds,
            "search_seconds": round(self.search_seconds, 4),
            "fit_seconds": round(self.fit_seconds, 4),
            "relative_cost": self.relative_cost,
            "convergence_warnings": list(self.convergence_warnings),
            "rules": [r.to_dict() for r in self.rules],
            "passed": self.passed,
            "failure_reasons": list(self.failure_reasons),
        }


def _cv_splitter(config: ModelConfig, y: Any) -> Any:
    import pandas as pd
    from sklearn.model_selection import KFold, StratifiedKFold

    folds, seed = config.training.cv_folds, config.training.random_seed
    if not config.is_classifier:
        return KFold(n_splits=folds, shuffle=True, random_state=seed)
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise ValueError(f"target '{config.target}' has a single class {counts.index[0]!r}: nothing to classify")
    if counts.min() < folds:
        raise ValueError(
            f"target '{config.target}': class {counts.idxmin()!r} has {counts.min()} rows, fewer than "
            f"training.cv_folds={folds}; add data or lower cv_folds"
        )
    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)


def _is_better(a: float | None, b: float | None, metric: str) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return a > b if higher_is_better(metric) else a < b


def train_candidate(
    config: ModelConfig,
    candidate: str,
    X_train: pd.DataFrame,
    y_train: Any,
    *,
    search_space: list[dict[str, Any]] | None = None,
    rules: TrainingRules | None = None,
) -> CandidateResult:
    """Search the candidate's small grid with K-fold CV, refit the best, and judge it by the rules.

    ``search_space`` replaces :data:`SEARCH_SPACES` for this call (tests, or a trigger-time choice).
    """
    import numpy as np
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_validate

    _check_candidate(candidate)
    rules = rules or TrainingRules()
    space = search_space if search_space is not None else SEARCH_SPACES[candidate]
    if not space:
        raise ValueError(f"{candidate}: empty search space")
    missing = [c for c in config.feature_names if c not in X_train.columns]
    if missing:
        raise ValueError(f"{config.name}: training data lacks feature column(s) {missing}")
    X = X_train[config.feature_names]
    y = pd.Series(np.asarray(y_train), name=config.target)
    if len(X) != len(y):
        raise ValueError(f"{config.name}: {len(X)} feature rows but {len(y)} target values")
    if y.isna().any():
        raise ValueError(
            f"{config.name}: target '{config.target}' has {int(y.isna().sum())} missing values; drop or label them first"
        )

    primary = config.metrics.primary
    classes = sorted(y.unique().tolist()) if config.is_classifier else None
    scorers = build_scorers(config, classes)
    cv = _cv_splitter(config, y)

    search: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    started = time.perf_counter()
    for params in space:
        pipeline = build_pipeline(config, candidate, params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            scores = cross_validate(pipeline, X, y, cv=cv, scoring=scorers, n_jobs=1, error_score="raise")
        cv_metrics = {}
        for metric in scorers:
            folds = [_finite(v * metric_sign(metric)) for v in scores[f"test_{metric}"]]
            defined = [f for f in folds if f is not None]
            cv_metrics[metric] = {
                "mean": float(np.mean(defined)) if defined else None,
                "std": float(np.std(defined)) if defined else None,
                "folds": folds,
            }
        n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        entry = {
            "params": dict(params),
            "primary_mean": cv_metrics[primary]["mean"],
            "primary_std": cv_metrics[primary]["std"],
            "cv_convergence_warnings": n_conv,
        }
        search.append(entry)
        log.info(
            "%s %s: CV %s %.4f (convergence warnings in CV: %d)",
            candidate,
            params,
            primary,
            entry["primary_mean"] or float("nan"),
            n_conv,
        )
        if best is None or _is_better(entry["primary_mean"], best["entry"]["primary_mean"], primary):
            best = {"entry": entry, "cv_metrics": cv_metrics}
    search_seconds = time.perf_counter() - started
    assert best is not None

    params = best["entry"]["params"]
    model = build_pipeline(config, candidate, params)
    fit_started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, y)
    fit_seconds = time.perf_counter() - fit_started
    convergence = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            log.warning("%s final fit: %s: %s", candidate, w.category.__name__, w.message)

    train_metrics = {m: score(s, m, model, X, y) for m, s in scorers.items()}
    predictions = model.predict(X)
    cv_metrics = best["cv_metrics"]
    rule_results = [
        check_overfitting(primary, train_metrics[primary], cv_metrics[primary]["mean"], rules),
        check_cv_stability(primary, cv_metrics[primary]["folds"], rules),
        check_degenerate_predictions(config.is_classifier, predictions, y, rules),
        check_convergence(convergence, rules),
    ]
    failure_reasons = [r.message for r in rule_results if not r.passed]
    if cv_metrics[primary]["mean"] is None:
        failure_reasons.append(f"CV {primary} is undefined on every fold.")
    result = CandidateResult(
        candidate=candidate,
        problem_type=config.problem_type,
        primary_metric=primary,
        params=dict(params),
        cv_metrics=cv_metrics,
        train_metrics=train_metrics,
        search=search,
        n_train_rows=len(X),
        cv_folds=config.training.cv_folds,
        search_seconds=search_seconds,
        fit_seconds=fit_seconds,
        relative_cost=RELATIVE_COST[candidate],
        convergence_warnings=convergence,
        rules=rule_results,
        passed=not failure_reasons,
        failure_reasons=failure_reasons,
        model=model,
    )
    log.info(
        "%s: best %s CV %s %.4f; %s",
        candidate,
        params,
        primary,
        result.cv_primary or float("nan"),
        "passed" if result.passed else "FAILED: " + " ".join(failure_reasons),
    )
    return result


# --------------------------------------------------------------------------------------------
# Selection and splitting
# --------------------------------------------------------------------------------------------

#: Two CV primaries closer than this are a tie, and the cheaper model wins it.
TIE_TOLERANCE = 1e-3


def select_best(results: list[dict[str, Any]], config: ModelConfig) -> dict[str, Any]:
    """The passed candidate with the best CV primary; near-ties go to the cheaper model.

    Returns a copy of the winner's ``CandidateResult.to_dict()`` with a ``selection`` entry
    (ranking and the reason in words). Raises :class:`NoViableCandidate` when none passed.
    """
    primary = config.metrics.primary
    if not results:
        raise NoViableCandidate(f"{config.name}: no candidate results to select from", {})

    def cost(r: dict[str, Any]) -> float:
        return float(r.get("relative_cost", RELATIVE_COST.get(r["candidate"], math.inf)))

    def value(r: dict[str, Any]) -> float | None:
        v = r.get("cv_primary")
        if v is None:
            v = r.get("cv_metrics", {}).get(primary, {}).get("mean")
        return v

    viable = [r for r in results if r.get("passed") and value(r) is not None]
    if not viable:
        failures = {r["candidate"]: list(r.get("failure_reasons") or ["no CV score"]) for r in results}
        lines = [f"  - {name}: {' '.join(reasons)}" for name, reasons in failures.items()]
        raise NoViableCandidate(
            f"{config.name}: no candidate passed the training rules:\n" + "\n".join(lines), failures
        )
    sign = 1.0 if higher_is_better(primary) else -1.0
    best_value = max(sign * value(r) for r in viable)
    tied = [r for r in viable if best_value - sign * value(r) <= TIE_TOLERANCE]
    winner = min(tied, key=lambda r: (cost(r), -sign * value(r)))

    def rank(r: dict[str, Any]) -> tuple[bool, bool, float]:
        v = value(r)
        return (not r.get("passed"), v is None, -sign * v if v is not None else 0.0)

    ranking = sorted(results, key=rank)
    if len(tied) > 1:
        reason = (
            f"{winner['candidate']} selected: CV {primary} {value(winner):.4f} ties (within {TIE_TOLERANCE:g}) with "
            f"{', '.join(r['candidate'] for r in tied if r is not winner)} and it is the cheapest."
        )
    else:
        reason = f"{winner['candidate']} selected: best CV {primary} {value(winner):.4f} among {len(viable)} passing candidate(s)."
    skipped = [r["candidate"] for r in results if not r.get("passed")]
    if skipped:
        reason += f" Skipped for failed training rules: {', '.join(skipped)}."
    out = dict(winner)
    out["selection"] = {
        "primary_metric": primary,
        "reason": reason,
        "ranking": [
            {
                "candidate": r["candidate"],
                "cv_primary": value(r),
                "passed": bool(r.get("passed")),
                "relative_cost": cost(r),
            }
            for r in ranking
        ],
    }
    log.info(reason)
    return out


def parse_times(values):
    """UTC instants of a timestamp column: ISO 8601 of any precision or offset (rows may differ:
    ``...00:00+00:00`` beside ``...00:32:34.751131+00:00``), else inferred per value; a value
    that cannot be read becomes NaT for the caller to report."""
    import pandas as pd

    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(values, utc=True, format="mixed", errors="coerce")


def time_split(df: pd.DataFrame, config: ModelConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the most recent rows when the data has a time column, else a seeded random split.

    Testing on the future is what serving will face; a random split flatters the model when the
    world drifts. The cut is at the (1 - test_fraction) row quantile of time; rows sharing the
    cut timestamp stay together (on the train side, unless that would leave no test rows). A
    single timestamp for every row falls back to the random split. Same input, same split.
    """
    from sklearn.model_selection import train_test_split

    fraction = config.training.test_fraction
    if len(df) < 2:
        raise ValueError(f"{config.name}: need at least 2 rows to split, got {len(df)}")
    column = config.data.timestamp_column
    if column and column in df.columns:
        times = parse_times(df[column])
        if times.isna().any():
            bad = df.loc[times.isna(), column].head(3).tolist()
            raise ValueError(
                f"{config.name}: column '{column}' has {int(times.isna().sum())} missing or unparseable timestamps, e.g. {bad}"
            )
        order = times.reset_index(drop=True).sort_values(kind="stable").index
        ordered = df.iloc[order].reset_index(drop=True)
        sorted_times = times.iloc[order].reset_index(drop=True)
        n_train = max(1, min(len(df) - 1, int(round(len(df) * (1.0 - fraction)))))
        cutoff = sorted_times.iloc[n_train - 1]
        is_train = sorted_times <= cutoff
        if is_train.all():  # the cut timestamp's block reaches the end: it goes to test instead
            is_train = sorted_times < cutoff
        if is_train.all() or not is_train.any():
            log.warning("%s: all rows share the cut timestamp %s; falling back to a random split", config.name, cutoff)
        else:
            train, test = ordered[is_train.to_numpy()], ordered[~is_train.to_numpy()]
            log.info("%s: time split at %s: %d train rows, %d test rows", config.name, cutoff, len(train), len(test))
            return train.reset_index(drop=True), test.reset_index(drop=True)

    stratify = None
    if config.is_classifier and config.target in df.columns:
        counts = df[config.target].value_counts()
        if len(counts) > 1 and counts.min() >= 2:
            stratify = df[config.target]
    train, test = train_test_split(
        df, test_size=fraction, random_state=config.training.random_seed, shuffle=True, stratify=stratify
    )
    log.info(
        "%s: random split (seed %d): %d train rows, %d test rows",
        config.name,
        config.training.random_seed,
        len(train),
        len(test),
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)
