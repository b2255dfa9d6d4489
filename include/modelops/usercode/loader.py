"""Importing a model's own code (``code:`` in its declaration) and calling what it declares.

Every failure inside their code becomes a :class:`UserCodeError` naming the model, what was being
done, the file and the line of *their* frame (not the platform's), and a short traceback: the DAG
import check shows it in the UI, a training task records it as a failed candidate, and every other
model and candidate goes on. Nothing here runs at DAG parse time except ``dags/model_configs.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelops.config import CustomCandidate, ModelConfig, models_dir

log = logging.getLogger(__name__)

#: Frames of their traceback kept in the summary (the innermost ones).
TRACEBACK_FRAMES = 4


class UserCodeError(RuntimeError):
    """A model's own code failed; ``file`` and ``line`` point into their code when known."""

    def __init__(self, model: str, what: str, problem: str, file: str | None = None, line: int | None = None,
                 trace: str = "") -> None:  # fmt: skip
        where = f" ({file}, line {line})" if file and line else f" ({file})" if file else ""
        super().__init__(f"model '{model}': {what} failed{where}: {problem}")
        self.model, self.what, self.problem, self.file, self.line, self.trace = model, what, problem, file, line, trace

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "problem": self.problem, "file": self.file, "line": self.line,
                "traceback": self.trace}  # fmt: skip


def ensure_importable() -> None:
    """Put the models folder on ``sys.path``: ``include/models/<package>/`` imports as ``<package>``."""
    folder = str(models_dir())
    if folder not in sys.path:
        sys.path.append(folder)


def package_dir(model: ModelConfig) -> Path | None:
    """The folder of the model's code package, found without importing it (None if absent)."""
    if model.code is None:
        return None
    ensure_importable()
    try:
        spec = importlib.util.find_spec(model.code.package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _their_frame(model: ModelConfig, tb) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback inside the model's code package."""
    root = package_dir(model)
    frames = traceback.extract_tb(tb)
    if root is not None:
        for frame in reversed(frames):
            if Path(frame.filename).resolve().is_relative_to(root):
                return frame
    return None


def from_exception(model: ModelConfig, what: str, exc: BaseException) -> UserCodeError:
    """A :class:`UserCodeError` for ``exc``, located in their code when a frame (or a SyntaxError) says where."""
    if isinstance(exc, UserCodeError):
        return exc
    problem = f"{type(exc).__name__}: {exc}"
    trace = "".join(traceback.format_exception(exc)[-(TRACEBACK_FRAMES * 2 + 1) :])
    if isinstance(exc, SyntaxError) and exc.filename:
        return UserCodeError(model.name, what, problem, exc.filename, exc.lineno, trace)
    frame = _their_frame(model, exc.__traceback__)
    if frame is not None:
        return UserCodeError(model.name, what, problem, frame.filename, frame.lineno, trace)
    return UserCodeError(model.name, what, problem, None, None, trace)


def involves_their_code(model: ModelConfig, exc: BaseException) -> bool:
    """Whether the traceback of ``exc`` passes through the model's code (theirs to fix, not ours)."""
    return isinstance(exc, UserCodeError | SyntaxError) or _their_frame(model, exc.__traceback__) is not None


@contextlib.contextmanager
def their_code(model: ModelConfig, what: str) -> Iterator[None]:
    """Around a call into their code: any failure becomes a located :class:`UserCodeError`."""
    try:
        yield
    except Exception as exc:
        raise from_exception(model, what, exc) from exc


def resolve(model: ModelConfig, reference: str, what: str) -> Any:
    """Import ``package.module:name`` from the model's code and return the named object."""
    ensure_importable()
    module_name, _, attribute = reference.partition(":")
    with their_code(model, f"importing {reference} ({what})"):
        module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UserCodeError(
            model.name, f"importing {reference} ({what})", f"module '{module_name}' has no '{attribute}'",
            getattr(module, "__file__", None),
        ) from None  # fmt: skip


def _call(model: ModelConfig, function: Any, reference: str, what: str, kwargs: dict[str, Any]) -> Any:
    """Call their function with ``kwargs`` plus ``random_seed`` / ``problem_type`` if it takes them."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        signature = None
    extra = {"random_seed": model.training.random_seed, "problem_type": model.problem_type}
    if signature is not None:
        # Only what it names: a bare ``**settings`` factory passes its keywords to an estimator.
        kwargs = {**{k: v for k, v in extra.items() if k in signature.parameters}, **kwargs}
    with their_code(model, f"calling {reference} ({what})"):
        return function(**kwargs)


def make_estimator(model: ModelConfig, candidate: CustomCandidate, params: dict[str, Any]) -> Any:
    """Their factory's estimator for one search-space setting; refuses what is not an estimator."""
    factory = resolve(model, candidate.factory, f"factory of candidate '{candidate.name}'")
    estimator = _call(model, factory, candidate.factory, f"factory of candidate '{candidate.name}'", dict(params))
    missing = [name for name in ("fit", "predict") if not callable(getattr(estimator, name, None))]
    if missing or not callable(getattr(estimator, "get_params", None)):
        raise UserCodeError(
            model.name, f"calling {candidate.factory}",
            f"returned {type(estimator).__name__}, not a scikit-learn estimator (needs fit, predict and "
            "get_params; subclass sklearn.base.BaseEstimator)",
        )  # fmt: skip
    return estimator


def feature_steps(model: ModelConfig) -> list[tuple[str, Any]]:
    """Their feature steps as ``(name, transformer)`` pairs, in the declared order."""
    steps = []
    for reference in model.code.feature_steps if model.code else ():
        factory = resolve(model, reference, "feature step")
        step = _call(model, factory, reference, "feature step", {})
        if not all(callable(getattr(step, name, None)) for name in ("fit", "transform", "get_params")):
            raise UserCodeError(
                model.name, f"calling {reference}",
                f"returned {type(step).__name__}, not a transformer (needs fit, transform and get_params)",
            )  # fmt: skip
        steps.append((reference.partition(":")[2], step))
    return steps


def search_space(model: ModelConfig, candidate: CustomCandidate) -> list[dict[str, Any]]:
    """The candidate's settings: inline in the declaration, or the list its reference names."""
    space = candidate.search_space
    if isinstance(space, str):
        space = resolve(model, space, f"search space of candidate '{candidate.name}'")
        if callable(space):
            space = _call(model, space, candidate.search_space, "search space", {})
    if not isinstance(space, list | tuple) or not all(isinstance(s, dict) for s in space) or len(space) > 20:
        raise UserCodeError(
            model.name, f"reading the search space of candidate '{candidate.name}'",
            "must be a list of at most 20 mappings of keyword arguments",
        )  # fmt: skip
    return [dict(s) for s in space] or [{}]


def declared_code_errors(model: ModelConfig) -> list[UserCodeError]:
    """Import every reference the declaration makes (factories, feature steps, search spaces);
    the errors, each naming the file and the line. What the DAG import check and DAG test run."""
    if model.code is None:
        return []
    errors = []
    if package_dir(model) is None:
        errors.append(UserCodeError(
            model.name, f"finding code.package '{model.code.package}'",
            f"no package '{model.code.package}' beside the declaration ({models_dir()}/{model.code.package}/"
            "__init__.py) nor installed",
        ))  # fmt: skip
        return errors
    references = [(r, "feature step") for r in model.code.feature_steps]
    for candidate in model.code.candidates:
        references.append((candidate.factory, f"factory of candidate '{candidate.name}'"))
        if isinstance(candidate.search_space, str):
            references.append((candidate.search_space, f"search space of candidate '{candidate.name}'"))
    for reference, what in references:
        try:
            resolve(model, reference, what)
        except UserCodeError as exc:
            errors.append(exc)
    return errors


def check_feature_steps(model: ModelConfig, X: Any) -> None:
    """Fit their feature steps on a few rows and check they add the declared engineered columns
    (keeping the declared ones), so a step that forgets one fails naming the step, not sklearn's
    column lookup deep in the preprocessing."""
    import pandas as pd

    if model.code is None or not model.code.feature_steps:
        return
    frame = X.head(200)
    for name, step in feature_steps(model):
        with their_code(model, f"feature step '{name}'"):
            frame = step.fit_transform(frame)
        if not isinstance(frame, pd.DataFrame):
            raise UserCodeError(
                model.name, f"feature step '{name}'",
                f"returned {type(frame).__name__}; a feature step must return a pandas DataFrame "
                "(for a FunctionTransformer, a function taking and returning the DataFrame)",
            )  # fmt: skip
    needed = model.feature_names + [f.name for f in model.engineered_features]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise UserCodeError(
            model.name, "feature steps",
            f"their output lacks column(s) {missing} (declared features and code.engineered_features must all be there)",
        )  # fmt: skip


def code_fingerprint(model: ModelConfig) -> str | None:
    """A hash of the declaration's ``code:`` section and every file of the package (path, size, mtime)."""
    import hashlib

    root = package_dir(model)
    if model.code is None or root is None:
        return None
    digest = hashlib.sha256(model.code.model_dump_json().encode())
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def cached_code_errors(model: ModelConfig, cache_dir: Path | None = None) -> list[str]:
    """:func:`declared_code_errors` as messages, remembered per code fingerprint: the DAG processor
    re-parses ``dags/model_configs.py`` every half minute, and importing their code (and what it
    imports: pandas, sklearn, ...) is only worth doing again when a file changed."""
    import json
    import tempfile

    fingerprint = code_fingerprint(model)
    if fingerprint is None:
        return [str(error) for error in declared_code_errors(model)]
    cache_dir = cache_dir or Path(tempfile.gettempdir()) / "modelops-code-check"
    cached = cache_dir / f"{model.name}-{fingerprint}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    messages = [str(error) for error in declared_code_errors(model)]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(messages))
    except OSError:  # an unwritable temp folder only costs the next parse the imports again
        log.warning("cannot cache the code check of %s in %s", model.name, cache_dir)
    return messages
