"""Model declarations: one YAML file per model, parsed into a typed, validated object.

A data scientist adds a model by writing ``include/models/<name>.yaml`` (and its expectation
suite); the DAG files generate the model's DAGs from the parsed object. A bad file must fail at
DAG parse time with a message naming the file, the field and the problem, so validation is
strict (unknown keys are refused: a typo is an error, not a silently ignored setting).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelops.layout import raw_prefix
from modelops.metrics import BINARY_ONLY_METRICS, CLASSIFICATION_METRICS, REGRESSION_METRICS, higher_is_better

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"

ProblemType = Literal["binary_classification", "multiclass_classification", "regression"]
FeatureType = Literal["numeric", "categorical"]

KNOWN_CANDIDATES = {
    "linear",  # LogisticRegression or Ridge, by problem type
    "random_forest",
    "hist_gradient_boosting",
    "xgboost",  # xgboost-cpu's XGBClassifier / XGBRegressor; classes must be 0..k-1
    "lightgbm",  # LGBMClassifier / LGBMRegressor
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
#: The candidate name a submitted model (trained elsewhere, see modelops.submit) goes to the gate as.
SUBMITTED_CANDIDATE = "submitted"
#: ``package.module:attribute``: where a factory, a feature step or a search space lives.
REFERENCE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
#: A fully qualified type or function name skops may load (``package.module.Name``).
TYPE_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class ConfigError(ValueError):
    """A model declaration is invalid; the message names the file, the field and the problem.

    ``path``: the declaration's file, when one was read."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class ModelNotDeclared(ConfigError, KeyError):
    """No declaration by that name: a KeyError to callers that look models up (a 404 to the UI)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Strict):
    name: str = Field(min_length=1)
    type: FeatureType
    description: str = ""
    #: Nullable features may contain missing values; the suite and the monitor allow a null rate.
    nullable: bool = False


class DataSpec(_Strict):
    #: S3 prefix under the bucket where this model's raw batches land: ``raw/<model>/`` by default.
    raw_prefix: str | None = None
    file_format: Literal["csv", "parquet"] = "csv"
    #: Where training reads batches: ``raw/<model>/`` or ``validated/<model>/`` (after ingestion).
    #: Either way each file is judged on its own by the suite and failing ones are excluded.
    training_source: Literal["raw", "validated"] = "raw"
    #: Column with the event time; enables the time-based test split.
    timestamp_column: str | None = None
    #: Column that identifies a row (checked for uniqueness by the suite).
    id_column: str | None = None
    #: Name of a synthetic generator in ``modelops.local.datagen`` used by ``make up`` and the demo.
    generator: str | None = None
    #: Rows per generated daily batch.
    rows_per_day: int = Field(default=2000, ge=10, le=10_000_000)
    #: Days of history ``make up`` loads into ``raw/``.
    history_days: int = Field(default=60, ge=1, le=3650)


def _check_reference(value: str, package: str | None = None) -> str:
    if not REFERENCE_PATTERN.match(value):
        raise ValueError(f"'{value}' is not a reference of the form 'package.module:name'")
    if package and value.split(":")[0].split(".")[0] != package:
        raise ValueError(f"'{value}' is outside the declared code.package '{package}'")
    return value


class EngineeredFeature(_Strict):
    """A column the feature steps add; the shared preprocessing treats it like a declared feature."""

    name: str = Field(min_length=1)
    type: FeatureType
    description: str = ""


class CustomCandidate(_Strict):
    """A candidate from the data scientist's own code, trained like the built-in families."""

    name: str
    #: ``package.module:function`` called with one search-space setting as keyword arguments
    #: (plus ``random_seed`` / ``problem_type`` if it takes them); returns an unfitted
    #: scikit-learn-compatible estimator or Pipeline.
    factory: str
    #: Settings tried under K-fold CV: a list of keyword-argument mappings, or a reference to one
    #: (``package.module:SEARCH_SPACE``). Empty: the factory's defaults only.
    search_space: list[dict[str, Any]] | str = Field(default_factory=lambda: [{}])
    #: ``shared``: the platform's imputation and one-hot encoding come first (the factory returns
    #: an estimator for numeric input); ``none``: the factory's object takes the raw columns itself.
    preprocessing: Literal["shared", "none"] = "shared"
    #: Relative cost of one fit (see training/search_spaces.RELATIVE_COST); breaks near-ties only.
    relative_cost: float = Field(default=3.0, gt=0.0, le=100.0)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("must be lower-case letters, digits and underscores, starting with a letter")
        if value in KNOWN_CANDIDATES or value == SUBMITTED_CANDIDATE:
            raise ValueError(f"'{value}' is a built-in candidate name; choose another")
        return value

    @field_validator("search_space")
    @classmethod
    def _valid_space(cls, value: list[dict[str, Any]] | str) -> list[dict[str, Any]] | str:
        if isinstance(value, str):
            return _check_reference(value)
        if len(value) > 20:
            raise ValueError(f"{len(value)} settings; at most 20 (each one is a K-fold CV)")
        return value or [{}]


class CodeSpec(_Strict):
    """The data scientist's own code: a package beside the declaration (``include/models/<package>/``)
    or one installed in the image. Nothing in it is imported at DAG parse time except by the
    declarations check (``dags/model_configs.py``), which reports a broken import with file and line."""

    package: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: ``package.module:factory`` references, each returning an unfitted transformer that takes the
    #: feature DataFrame and returns it with the engineered columns added. Applied in this order
    #: before the shared preprocessing, in every candidate of the model; part of the logged model.
    feature_steps: tuple[str, ...] = ()
    #: The columns the feature steps add, with their types.
    engineered_features: tuple[EngineeredFeature, ...] = ()
    candidates: tuple[CustomCandidate, ...] = ()
    #: Classes and functions of this code that skops may load (``package.module.Name``), by name:
    #: the platform never trusts everything. A fitted model needing another type is refused, naming it.
    trusted_types: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> CodeSpec:
        references = [(f"feature_steps.{i}", r) for i, r in enumerate(self.feature_steps)]
        for i, candidate in enumerate(self.candidates):
            references.append((f"candidates.{i}.factory", candidate.factory))
            if isinstance(candidate.search_space, str):
                references.append((f"candidates.{i}.search_space", candidate.search_space))
        for where, reference in references:
            try:
                _check_reference(reference, self.package)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        for i, name in enumerate(self.trusted_types):
            if not TYPE_NAME_PATTERN.match(name):
                raise ValueError(
                    f"trusted_types.{i}: '{name}' is not a fully qualified name like 'package.module.Name'"
                )
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError("candidates: a name is listed twice")
        engineered = [f.name for f in self.engineered_features]
        if len(set(engineered)) != len(engineered):
            raise ValueError("engineered_features: a name is listed twice")
        if engineered and not self.feature_steps:
            raise ValueError("engineered_features: declared, but no feature_steps add them")
        return self


class TrainingSpec(_Strict):
    window_days: int = Field(default=30, ge=1, le=3650)
    candidates: tuple[str, ...] = ("linear", "random_forest", "hist_gradient_boosting")
    cv_folds: int = Field(default=3, ge=2, le=20)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    random_seed: int = 42
    #: Upper bound on rows used for training (sampled deterministically beyond it).
    max_rows: int = Field(default=500_000, ge=100)
    #: Candidates of this model that train at once, across all its runs (backfills included):
    #: the slots of its Airflow pool ``training_<model>`` (see modelops/pools.py).
    parallel_candidates: int = Field(default=2, ge=1, le=64)
    #: Cross-validated search on a deterministic sample of at most this many training rows; the
    #: chosen setting is then fitted on every training row (None: search on every row). What makes
    #: a window of millions of rows affordable: the search costs folds x settings fits.
    search_sample_rows: int | None = Field(default=None, ge=100)
    #: Per candidate, a cap on the final fit's rows, for an estimator that would not finish on the
    #: full window (a random forest on millions of rows): ``{random_forest: 1000000}``. Recorded
    #: with the candidate and in the decision record.
    fit_max_rows: dict[str, int] = Field(default_factory=dict)

    @field_validator("fit_max_rows")
    @classmethod
    def _fit_caps(cls, value: dict[str, int]) -> dict[str, int]:
        small = {name: rows for name, rows in value.items() if rows < 100}
        if small:
            raise ValueError(f"fit_max_rows: at least 100 rows per candidate, got {small}")
        return value

    @field_validator("candidates")
    @classmethod
    def _some_candidates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one candidate is required")
        if len(set(value)) != len(value):
            raise ValueError("candidates are listed twice")
        return value  # known names are checked with the model's own code candidates (ModelConfig)


class MetricsSpec(_Strict):
    primary: str
    secondary: tuple[str, ...] = ()


class GateSpec(_Strict):
    #: Absolute floor on the primary metric (a ceiling for lower-is-better metrics).
    min_primary: float | None = None
    #: How much worse than the champion the candidate may be on the primary metric.
    tolerance: float = Field(default=0.0, ge=0.0)
    #: How much better than the champion the candidate must be (0 = not worse beyond tolerance).
    min_improvement: float = Field(default=0.0, ge=0.0)
    #: Categorical column whose slices are compared between candidate and champion.
    slice_column: str | None = None
    #: How much worse than the champion a slice may get, in the primary metric's units (0.05 suits
    #: scores in [0, 1]; an rmse or mae needs a value in the label's units).
    max_slice_regression: float = Field(default=0.05, ge=0.0)
    max_latency_ms_per_1k: float = Field(default=2000.0, gt=0.0)
    max_model_size_mb: float = Field(default=200.0, gt=0.0)
    #: Shadow evidence before promotion: a version that passed the checks above goes to the
    #: ``shadow`` alias, and monitor_<model> promotes it once this many days of live traffic show it
    #: no worse (0: promote on the offline gate alone). See modelops.training.shadow_gate.
    require_shadow_days: int = Field(default=0, ge=0, le=90)
    #: How much worse than the champion the shadow may be on the primary metric over live labels.
    max_live_regression: float = Field(default=0.0, ge=0.0)
    #: Without enough labels: the share of records the two may disagree on (classes), or their mean
    #: relative difference (regression). None: a day without labels is no evidence.
    max_disagreement: float | None = Field(default=None, ge=0.0)


class ScheduleSpec(_Strict):
    #: Cron expression, preset (``@weekly``) or ``null`` for request/trigger-only retraining.
    retrain: str | None = "@weekly"
    monitor: str | None = "@daily"


class DriftSpec(_Strict):
    p_value: float = Field(default=0.05, gt=0.0, lt=1.0)
    psi_threshold: float = Field(default=0.2, gt=0.0)
    #: Effect-size floors so large samples do not flag trivial shifts.
    wasserstein_threshold: float = Field(default=0.1, gt=0.0)
    jensen_shannon_threshold: float = Field(default=0.1, gt=0.0, le=1.0)
    #: Share of drifted features above which the dataset counts as drifted.
    dataset_drift_share: float = Field(default=0.3, gt=0.0, le=1.0)
    #: Reference size above which distance measures replace hypothesis tests.
    large_sample_rows: int = Field(default=1000, ge=10)
    #: No new retrain request within this many hours of the last one, end included: the default
    #: 24 h holds back the next day's daily monitor (exactly 24 h later). 0 disables it.
    cooldown_hours: int = Field(default=24, ge=0)
    max_retrains_per_window: int = Field(default=3, ge=0)
    retrain_window_days: int = Field(default=7, ge=1)
    alert_webhook: str | None = None


class OutOfRangeSpec(_Strict):
    """What serving does with a numeric value far outside the training range (see serving/guard.py)."""

    #: ``refuse`` (422), ``clip`` (to the allowed range) or ``flag`` (serve it, log a warning).
    policy: Literal["refuse", "clip", "flag"] = "refuse"
    #: Allowed range: [min - tolerance*span, max + tolerance*span] of the training data.
    tolerance: float = Field(default=10.0, ge=0.0)


class ServingSpec(_Strict):
    out_of_range: OutOfRangeSpec = OutOfRangeSpec()
    #: A version that passes the gate goes to the ``shadow`` alias (scored beside the champion on
    #: live traffic, never answering) instead of becoming champion; retrain_<model>'s ``shadow`` param.
    shadow: bool = False


class ModelConfig(_Strict):
    name: str
    description: str = ""
    owner: str = "modelops"
    problem_type: ProblemType
    target: str = Field(min_length=1)
    features: tuple[Feature, ...] = Field(min_length=1)
    data: DataSpec = DataSpec()
    training: TrainingSpec = TrainingSpec()
    metrics: MetricsSpec
    gate: GateSpec = GateSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    drift: DriftSpec = DriftSpec()
    serving: ServingSpec = ServingSpec()
    code: CodeSpec | None = None
    tags: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("must be lower-case letters, digits and underscores, starting with a letter")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"features: listed twice: {duplicated}")
        if self.target in names:
            raise ValueError(f"target: '{self.target}' is also listed as a feature")
        allowed = REGRESSION_METRICS if self.problem_type == "regression" else CLASSIFICATION_METRICS
        for field, metric in [("metrics.primary", self.metrics.primary)] + [
            ("metrics.secondary", m) for m in self.metrics.secondary
        ]:
            if metric not in allowed:
                raise ValueError(
                    f"{field}: '{metric}' is not a {self.problem_type} metric; choose from {sorted(allowed)}"
                )
            if self.problem_type == "multiclass_classification" and metric in BINARY_ONLY_METRICS:
                raise ValueError(f"{field}: '{metric}' is binary-only; use f1_macro or accuracy")
        available = sorted(self.candidate_names)
        unknown = [c for c in self.training.candidates if c not in available]
        if unknown:
            raise ValueError(f"training.candidates: unknown candidate(s) {unknown}; choose from {available}")
        capped = [c for c in self.training.fit_max_rows if c not in available]
        if capped:
            raise ValueError(f"training.fit_max_rows: unknown candidate(s) {capped}; choose from {available}")
        for engineered in self.code.engineered_features if self.code else ():
            if engineered.name in names or engineered.name == self.target:
                raise ValueError(
                    f"code.engineered_features: '{engineered.name}' is already a declared feature or the target"
                )
        categorical = {f.name for f in self.features if f.type == "categorical"}
        if self.gate.slice_column and self.gate.slice_column not in categorical:
            raise ValueError(f"gate.slice_column: '{self.gate.slice_column}' is not a categorical feature")
        for field, column in [
            ("data.timestamp_column", self.data.timestamp_column),
            ("data.id_column", self.data.id_column),
        ]:
            if column and (column in names or column == self.target):
                raise ValueError(f"{field}: '{column}' must not also be a feature or the target")
        return self

    # Derived names: one place, so DAGs, S3 layout and registry agree.
    @property
    def raw_prefix(self) -> str:
        return (self.data.raw_prefix or raw_prefix(self.name)).rstrip("/") + "/"

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "categorical"]

    @property
    def engineered_features(self) -> tuple[EngineeredFeature, ...]:
        return self.code.engineered_features if self.code else ()

    @property
    def model_numeric_features(self) -> list[str]:
        """What the shared preprocessing scales/imputes: declared and engineered numeric columns."""
        return self.numeric_features + [f.name for f in self.engineered_features if f.type == "numeric"]

    @property
    def model_categorical_features(self) -> list[str]:
        return self.categorical_features + [f.name for f in self.engineered_features if f.type == "categorical"]

    @property
    def custom_candidates(self) -> dict[str, CustomCandidate]:
        """The candidates from the model's own code, by name."""
        return {c.name: c for c in self.code.candidates} if self.code else {}

    @property
    def candidate_names(self) -> set[str]:
        """Every candidate this model may train: the built-in families and its own."""
        return KNOWN_CANDIDATES | set(self.custom_candidates)

    @property
    def has_user_code(self) -> bool:
        return self.code is not None

    @property
    def is_classifier(self) -> bool:
        return self.problem_type != "regression"

    @property
    def primary_higher_is_better(self) -> bool:
        return higher_is_better(self.metrics.primary)

    @property
    def suite_path(self) -> Path:
        return expectations_dir() / f"{self.name}.json"


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if not location:
            # Cross-field checks say "<field>: <problem>"; report them like field errors.
            location, _, rest = message.partition(": ")
            location, message = (location, rest) if rest else ("(top level)", message)
        lines.append(f"  - field '{location}': {message}")
    return f"{path}: invalid model config:\n" + "\n".join(lines)


def load_model_config(path: str | os.PathLike[str]) -> ModelConfig:
    """Parse one model file; raise :class:`ConfigError` naming the file, the field and the problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}", path=path) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", path=path) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(raw).__name__}", path=path)
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc), path=path) from None
    if config.name != path.stem:
        raise ConfigError(f"{path}: field 'name': '{config.name}' must match the file name '{path.stem}'", path=path)
    return config


def models_dir() -> Path:
    return Path(os.environ.get("MODELOPS_MODELS_DIR", MODELS_DIR))


def expectations_dir() -> Path:
    """Where ``<model>.json`` suites live: ``expectations/`` unless MODELOPS_EXPECTATIONS_DIR says."""
    return Path(os.environ.get("MODELOPS_EXPECTATIONS_DIR", EXPECTATIONS_DIR))


def _model_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))


def load_all_models(directory: str | os.PathLike[str] | None = None) -> dict[str, ModelConfig]:
    """Every declared model, by name. One bad file raises: a broken declaration must be seen."""
    directory = Path(directory) if directory else models_dir()
    configs = {}
    for path in _model_files(directory):
        config = load_model_config(path)
        configs[config.name] = config
    return configs


def load_models_and_errors(
    directory: str | os.PathLike[str] | None = None,
) -> tuple[list[ModelConfig], list[ConfigError]]:
    """The valid declarations and the errors of the invalid ones, for callers that must go on."""
    directory = Path(directory) if directory else models_dir()
    models, errors = [], []
    for path in _model_files(directory):
        try:
            models.append(load_model_config(path))
        except ConfigError as exc:
            errors.append(exc)
    return models, errors


def get_model(name: str, directory: str | os.PathLike[str] | None = None) -> ModelConfig:
    directory = Path(directory) if directory else models_dir()
    for suffix in (".yaml", ".yml"):
        path = directory / f"{name}{suffix}"
        if path.exists():
            return load_model_config(path)
    known = sorted(p.stem for p in directory.glob("*.y*ml"))
    raise ModelNotDeclared(f"unknown model '{name}': no {directory}/{name}.yaml (known models: {known})")
