"""Fitting one candidate: one small, honest search per estimator family, then rules that can fail it.

Each candidate (``linear``, ``random_forest``, ``hist_gradient_boosting``, ``xgboost``,
``lightgbm``) is a full sklearn Pipeline (preprocessing + estimator) so the registered artifact
takes raw feature columns and survives categories it never saw. A candidate is searched over a
deliberately small grid with K-fold CV, refit on the whole training set, then checked by training
rules (SageMaker Debugger's idea: overfitting, unstable CV, degenerate predictions,
non-convergence). A candidate that breaks a rule is kept in the record but not selected, and the
reason says why.

sklearn, pandas and numpy are imported inside functions: DAG files may import this module at
parse time, and that must stay cheap. No MLflow here: the DAG task logs what this returns.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops.config import ModelConfig
from modelops.jsonsafe import finite
from modelops.metrics import higher_is_better
from modelops.training.pipelines import build_pipeline
from modelops.training.rules import (
    RuleResult,
    TrainingRules,
    check_convergence,
    check_cv_stability,
    check_degenerate_predictions,
    check_overfitting,
)
from modelops.training.scoring import build_scorers, cached_responses, metric_sign, row_positions, score
from modelops.training.search_spaces import check_candidate, check_classes, relative_cost_for, search_space_for

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

log = logging.getLogger(__name__)


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
    #: Rows the search's cross-validation and the final fit used (``training.search_sample_rows``,
    #: ``training.fit_max_rows``); None: every training row.
    n_search_rows: int | None = None
    n_fit_rows: int | None = None
    model: Any = field(default=None, repr=False, compare=False)

    @property
    def cv_primary(self) -> float | None:
        return self.cv_metrics[self.primary_metric]["mean"]

    @property
    def training_rows(self) -> dict[str, Any]:
        """How many of the window's rows the search and the final fit used, and whether sampled."""
        search = self.n_train_rows if self.n_search_rows is None else self.n_search_rows
        fit = self.n_train_rows if self.n_fit_rows is None else self.n_fit_rows
        return {"window": self.n_train_rows, "search": search, "fit": fit,
                "sampled": search < self.n_train_rows or fit < self.n_train_rows}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Everything but the fitted model, JSON-safe (NaN becomes None)."""
        return {
            "candidate": self.candidate,
            "problem_type": self.problem_type,
            "primary_metric": self.primary_metric,
            "higher_is_better": higher_is_better(self.primary_metric),
            "cv_primary": finite(self.cv_primary),
            "cv_primary_std": finite(self.cv_metrics[self.primary_metric]["std"]),
            "params": dict(self.params),
            "cv_metrics": {
                m: {"mean": finite(v["mean"]), "std": finite(v["std"]), "folds": [finite(f) for f in v["folds"]]}
                for m, v in self.cv_metrics.items()
            },
            "train_metrics": {m: finite(v) for m, v in self.train_metrics.items()},
            "search": [
                {
                    "params": dict(s["params"]),
                    "primary_mean": finite(s["primary_mean"]),
                    "primary_std": finite(s["primary_std"]),
                    "cv_convergence_warnings": int(s.get("cv_convergence_warnings", 0)),
                }
                for s in self.search
            ],
            "n_train_rows": self.n_train_rows,
            "training_rows": self.training_rows,
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


def _training_frame(config: ModelConfig, X_train: pd.DataFrame, y_train: Any) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns and the target as a Series; refuses missing columns, lengths or labels."""
    import numpy as np
    import pandas as pd

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
    return X, y


def _sample_rows(config: ModelConfig, X: pd.DataFrame, y: pd.Series, limit: int | None):
    """At most ``limit`` rows, the same ones on every run of the same window (seeded), in their order."""
    if limit is None or len(X) <= limit:
        return X, y
    import numpy as np

    positions = np.sort(np.random.RandomState(config.training.random_seed).choice(len(X), limit, replace=False))
    log.info("%s: %d of %d training rows sampled", config.name, limit, len(X))
    return X.iloc[positions], y.iloc[positions]


def _cross_validate_setting(
    config: ModelConfig, candidate: str, params: dict[str, Any], X: pd.DataFrame, y: Any, scorers: dict, cv: Any
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One grid setting under K-fold CV: its search entry and its per-metric fold values."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_validate

    primary = config.metrics.primary
    pipeline = build_pipeline(config, candidate, params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        scores = cross_validate(pipeline, X, y, cv=cv, scoring=scorers, n_jobs=1, error_score="raise")
    cv_metrics = {}
    for metric in scorers:
        folds = [finite(v * metric_sign(metric)) for v in scores[f"test_{metric}"]]
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
    log.info(
        "%s %s: CV %s %.4f (convergence warnings in CV: %d)",
        candidate,
        params,
        primary,
        entry["primary_mean"] or float("nan"),
        n_conv,
    )
    return entry, cv_metrics


def _search(
    config: ModelConfig, candidate: str, space: list[dict[str, Any]], X: pd.DataFrame, y: Any, scorers: dict
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every setting of the grid under CV; returns the search log and the best setting's entry and metrics."""
    primary = config.metrics.primary
    cv = _cv_splitter(config, y)
    search: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for params in space:
        entry, cv_metrics = _cross_validate_setting(config, candidate, params, X, y, scorers, cv)
        search.append(entry)
        if best is None or _is_better(entry["primary_mean"], best["entry"]["primary_mean"], primary):
            best = {"entry": entry, "cv_metrics": cv_metrics}
    assert best is not None
    return search, best


def _fit_rows(config: ModelConfig, candidate: str, X: pd.DataFrame, y: pd.Series):
    """The rows the chosen setting's final fit uses (``training.fit_max_rows`` caps, seeded)."""
    return _sample_rows(config, X, y, config.training.fit_max_rows.get(candidate))


def refit_chosen(config: ModelConfig, candidate: str, params: dict[str, Any], X_train: pd.DataFrame, y_train: Any):
    """The final fit of a recorded setting again, without the search: the same rows (the same
    seeded sample) and the same pipeline as :func:`train_candidate`'s refit. What
    :mod:`modelops.reproduce` rebuilds a registered version with; returns the fitted pipeline."""
    X, y = _training_frame(config, X_train, y_train)
    X_fit, y_fit = _fit_rows(config, candidate, X, y)
    model, _, _ = _final_fit(config, candidate, params, X_fit, y_fit)
    return model


def _final_fit(config: ModelConfig, candidate: str, params: dict[str, Any], X: pd.DataFrame, y: Any):
    """Refit the chosen setting on every training row; returns the model, its seconds and convergence warnings."""
    from sklearn.exceptions import ConvergenceWarning

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
    return model, fit_seconds, convergence


def _judge(
    config: ModelConfig,
    model: Any,
    X: Any,
    y: Any,
    train_metrics: dict[str, float | None],
    cv_metrics: dict[str, dict[str, Any]],
    convergence: list[str],
    rules: TrainingRules,
) -> tuple[list[RuleResult], list[str]]:
    """The training rules on the refit model (its cached answers on ``X``, the row positions);
    returns every rule's result and the failure reasons."""
    primary = config.metrics.primary
    predictions = model.predict(X)
    rule_results = [
        check_overfitting(primary, train_metrics[primary], cv_metrics[primary]["mean"], rules),
        check_cv_stability(primary, cv_metrics[primary]["folds"], rules),
        check_degenerate_predictions(config.is_classifier, predictions, y, rules),
        check_convergence(convergence, rules),
    ]
    failure_reasons = [r.message for r in rule_results if not r.passed]
    if cv_metrics[primary]["mean"] is None:
        failure_reasons.append(f"CV {primary} is undefined on every fold.")
    return rule_results, failure_reasons


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

    ``search_space`` replaces the candidate's own (:func:`search_space_for`) for this call. With
    the model's own code in the pipeline, any failure that passes through that code raises
    :class:`~modelops.usercode.loader.UserCodeError` naming their file and line.
    """
    if config.code is None:
        return _train(config, candidate, X_train, y_train, search_space, rules)
    from modelops.usercode import loader

    try:
        return _train(config, candidate, X_train, y_train, search_space, rules)
    except Exception as exc:
        if loader.involves_their_code(config, exc):
            raise loader.from_exception(config, f"training candidate '{candidate}'", exc) from exc
        raise


def _train(config, candidate, X_train, y_train, search_space, rules) -> CandidateResult:
    check_candidate(candidate, config)
    rules = rules or TrainingRules()
    space = search_space if search_space is not None else search_space_for(config, candidate)
    if not space:
        raise ValueError(f"{candidate}: empty search space")
    X, y = _training_frame(config, X_train, y_train)
    if config.code is not None:
        from modelops.usercode.loader import check_feature_steps

        check_feature_steps(config, X)

    primary = config.metrics.primary
    classes = sorted(y.unique().tolist()) if config.is_classifier else None
    check_classes(candidate, classes, model=config.name, target=config.target)
    scorers = build_scorers(config, classes)
    X_search, y_search = _sample_rows(config, X, y, config.training.search_sample_rows)
    started = time.perf_counter()
    search, best = _search(config, candidate, space, X_search, y_search, scorers)
    search_seconds = time.perf_counter() - started

    params = best["entry"]["params"]
    X_fit, y_fit = _fit_rows(config, candidate, X, y)
    model, fit_seconds, convergence = _final_fit(config, candidate, params, X_fit, y_fit)
    # Each response method once over the fit rows (in chunks), shared by the metrics and the rules.
    answers, positions = cached_responses(model, X_fit, config.is_classifier), row_positions(len(X_fit))
    train_metrics = {m: score(s, m, answers, positions, y_fit) for m, s in scorers.items()}
    cv_metrics = best["cv_metrics"]
    rule_results, failure_reasons = _judge(
        config, answers, positions, y_fit, train_metrics, cv_metrics, convergence, rules
    )
    result = CandidateResult(
        candidate=candidate,
        problem_type=config.problem_type,
        primary_metric=primary,
        params=dict(params),
        cv_metrics=cv_metrics,
        train_metrics=train_metrics,
        search=search,
        n_train_rows=len(X),
        n_search_rows=len(X_search),
        n_fit_rows=len(X_fit),
        cv_folds=config.training.cv_folds,
        search_seconds=search_seconds,
        fit_seconds=fit_seconds,
        relative_cost=relative_cost_for(config, candidate),
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
