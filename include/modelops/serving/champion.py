"""The champion loader: a registry version loaded once, and the slot that swaps it without a pause.

A :class:`LoadedModel` is immutable; a reload builds a new one and assigns it to
:attr:`ModelSlot.current` in one step, so requests in flight finish on the version they started
with. MLflow is slow to import, so it is imported where a model loads.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops import registry
from modelops.config import ModelConfig
from modelops.serving import guard
from modelops.serving.capture_schema import capture_schema, feedback_schema, shadow_schema
from modelops.serving.columns import InputSpec

if TYPE_CHECKING:
    from modelops.serving.scoring import Batcher

log = logging.getLogger(__name__)


#: ``ModelSlot.alias_seen`` before this worker could read the champion alias at all.
UNSEEN: Any = object()


class NoChampion(LookupError):
    pass


class VersionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class LoadedModel:
    """One loaded registry version. Immutable: a swap replaces the whole object."""

    name: str
    version: str
    run_id: str | None
    model_uri: str
    alias: str | None
    loaded_at: dt.datetime
    pipeline: Any
    classes: list | None
    has_probabilities: bool
    categorical_kinds: dict[str, str]
    #: Allowed numeric input ranges (serving/guard.py); None: the no-baseline fallback.
    input_ranges: guard.InputRanges | None = None
    #: The compiled form of ``pipeline`` (modelops.serving.compiled) when it scores, else None.
    scorer: Any = None
    #: ``compiled`` or ``pipeline``, and why (the deploy's parity verdict, or what kept it from serving).
    scoring_path: str = "pipeline"
    scoring_path_reason: str = ""
    #: The path the version's tags asked for when it was loaded. A deploy tags a version after the
    #: alias moved, so a worker that followed the alias first reloads it when the tag changes.
    tagged_path: str = "pipeline"

    @property
    def model(self) -> Any:
        """What scores: the compiled scorer (takes columns) or the pipeline (takes a DataFrame)."""
        return self.scorer if self.scorer is not None else self.pipeline


def categorical_kinds(estimator: Any) -> dict[str, str]:
    """Feature -> ``"string"``, ``"boolean"`` or ``"number"``: what each fitted encoder inside ``estimator`` learned.

    Walks Pipelines and ColumnTransformers; features no encoder names are left out (sent as is).
    """
    kinds: dict[str, str] = {}

    def visit(node: Any) -> None:
        if node is None or isinstance(node, str):
            return
        categories = getattr(node, "categories_", None)
        names = getattr(node, "feature_names_in_", None)
        if categories is not None and names is not None and not isinstance(categories, str):
            for name, values in zip(names, categories, strict=False):
                present = [v for v in values.tolist() if not (isinstance(v, float) and math.isnan(v)) and v is not None]
                if present and all(isinstance(v, str) for v in present):
                    kinds[str(name)] = "string"
                elif present and all(isinstance(v, bool) for v in present):
                    kinds[str(name)] = "boolean"
                elif present and all(isinstance(v, int | float) for v in present):
                    kinds[str(name)] = "number"
        for _, child in getattr(node, "steps", None) or []:
            visit(child)
        for item in getattr(node, "transformers_", None) or []:
            visit(item[1])

    visit(estimator)
    return kinds


def scoring_path_of(pipeline: Any, tags: dict | None, mode: str = "auto") -> tuple[Any, str, str]:
    """The compiled scorer (or None), the path and why: compiled only when the version's deploy
    passed the parity gate, serving may use it (``mode``), and lowering succeeds here too."""
    from modelops.serving import compiled

    if mode == "pipeline":
        return None, compiled.PIPELINE, "the pipeline is forced on this server (MODELOPS_SERVING_SCORING_PATH=pipeline)"
    path, reason = compiled.path_of_tags(tags)
    if path != compiled.COMPILED:
        return None, path, reason
    scorer, failure = compiled.lower_or_reason(pipeline)
    if scorer is None:
        return None, compiled.PIPELINE, f"parity passed at deploy, but lowering failed in serving: {failure}"
    return scorer, compiled.COMPILED, reason


def load_model_version(
    config: ModelConfig, tracking_uri: str, version: str | None = None, mlflow_client: Any = None, scoring: str = "auto"
) -> LoadedModel:
    """Load ``models:/<name>/<version>``, the champion's version when ``version`` is None.

    The alias is resolved to a version first, and that version is loaded: what is reported is
    exactly what serves, even if the alias moves during the load.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from modelops.usercode.models import load_model

    mlflow_client = mlflow_client or MlflowClient(tracking_uri=tracking_uri)
    if version is None:
        model_version = registry.version_for_alias(config.name, registry.CHAMPION, mlflow_client)
        if model_version is None:
            raise NoChampion(
                f"model '{config.name}' has no champion registered yet: train and promote one "
                f"(retrain_{config.name}), then POST /models/{config.name}/reload"
            )
        alias: str | None = registry.CHAMPION
    else:
        try:
            model_version = mlflow_client.get_model_version(config.name, str(version))
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
                raise VersionNotFound(f"model '{config.name}' has no registered version {version}") from None
            raise
        alias = None
    model_uri = f"models:/{config.name}/{model_version.version}"
    mlflow.set_tracking_uri(tracking_uri)
    pipeline = load_model(model_uri, mlflow)
    classes = None
    if config.is_classifier and getattr(pipeline, "classes_", None) is not None:
        classes = np.asarray(pipeline.classes_).tolist()
    from modelops.serving.compiled import path_of_tags

    tags = dict(model_version.tags or {})
    scorer, path, reason = scoring_path_of(pipeline, tags, scoring)
    log.info("%s version %s scores with the %s path: %s", config.name, model_version.version, path, reason)
    return LoadedModel(
        name=config.name,
        version=str(model_version.version),
        run_id=model_version.run_id,
        model_uri=model_uri,
        alias=alias,
        loaded_at=dt.datetime.now(dt.UTC),
        pipeline=pipeline,
        classes=classes,
        has_probabilities=classes is not None and hasattr(pipeline, "predict_proba"),
        categorical_kinds=categorical_kinds(pipeline),
        input_ranges=guard.load_ranges(config, model_version.run_id, str(model_version.version)),
        scorer=scorer,
        scoring_path=path,
        scoring_path_reason=reason,
        tagged_path=path_of_tags(tags)[0],
    )


class ModelSlot:
    """A configured model and the version serving it. ``current`` is swapped, never mutated.

    A request reads ``current`` once and uses that object to the end, so a swap (a single
    reference assignment, atomic in Python) lets in-flight requests finish on the old model.
    """

    def __init__(self, config: ModelConfig):
        self.config = config
        self.current: LoadedModel | None = None
        self.reason: str | None = "not loaded yet"
        #: Set when loading the champion failed for a reason other than "no champion": retried in the background.
        self.retry_at: float | None = None
        self.retry_delay = 0.0
        #: The version ``champion`` pointed at when this worker last looked (None: unset; UNSEEN: never read).
        #: Only a move of the alias away from it swaps a version in, so an explicit reload stays.
        self.alias_seen: Any = UNSEEN
        self.reload_lock = threading.Lock()
        self.capture_schema = capture_schema(config)
        self.shadow_schema = shadow_schema(config)
        self.feedback_schema = feedback_schema(config)
        self.spec = InputSpec.of(config)
        self.batcher: Batcher | None = None  # set by ServingState
        #: The ``shadow`` version scored beside the champion, off the response path (serving/shadow.py).
        self.shadow: LoadedModel | None = None
        self.shadow_seen: Any = UNSEEN

    def unavailable(self) -> str:
        return f"model '{self.config.name}' is not loaded: {self.reason}"

    def describe(self) -> dict:
        loaded = self.current
        config = self.config
        return {
            "name": config.name,
            "problem_type": config.problem_type,
            "loaded": loaded is not None,
            "version": loaded.version if loaded else None,
            "alias": loaded.alias if loaded else None,
            "loaded_at": loaded.loaded_at.isoformat() if loaded else None,
            "run_id": loaded.run_id if loaded else None,
            "model_uri": loaded.model_uri if loaded else None,
            "classes": loaded.classes if loaded else None,
            "scoring_path": loaded.scoring_path if loaded else None,
            "scoring_path_reason": loaded.scoring_path_reason if loaded else None,
            "reason": None if loaded else self.reason,
            "shadow": self.shadow.version if self.shadow else None,
            "features": [{"name": f.name, "type": f.type, "nullable": f.nullable} for f in config.features],
            "passthrough": [c for c in (config.data.id_column, config.data.timestamp_column) if c],
        }
