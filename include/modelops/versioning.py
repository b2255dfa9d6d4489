"""What a model version was made from: the code's version, hashes of its declaration and suite,
and the library versions it was trained with, as MLflow tags.

A registered version must say which code trained it and on which declaration and suite, so a
surprising model can be traced to a commit and a reviewed file. The image carries its commit and
build time (``MODELOPS_CODE_VERSION``, ``MODELOPS_BUILD_TIME``, set from its build arguments); a
working tree (the local stack) answers with ``git``, marked ``-dirty`` when tracked files changed.
Light imports only (no Airflow, no pandas): the steps call this at task time.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelops.config import ModelConfig

log = logging.getLogger(__name__)

#: The repository root: ``include/modelops/versioning.py`` -> the folder holding ``include/``.
REPO_ROOT = Path(__file__).resolve().parents[2]
CODE_VERSION_ENV = "MODELOPS_CODE_VERSION"
BUILD_TIME_ENV = "MODELOPS_BUILD_TIME"
UNKNOWN = "unknown"
#: Build time of code that was not built into an image (a working tree), and the suite hash of a
#: model without a suite.
NONE = "none"
_GIT_TIMEOUT_SECONDS = 10

TAG_PREFIX = "modelops."
CODE_VERSION_TAG = "modelops.code_version"
BUILD_TIME_TAG = "modelops.build_time"
DECLARATION_TAG = "modelops.declaration_sha256"
SUITE_TAG = "modelops.suite_sha256"
#: Distribution name -> tag of its version.
LIBRARY_TAGS = {
    "scikit-learn": "modelops.sklearn_version",
    "pandas": "modelops.pandas_version",
    "numpy": "modelops.numpy_version",
    "mlflow": "modelops.mlflow_version",
    "great-expectations": "modelops.great_expectations_version",
}
PYTHON_TAG = "modelops.python_version"
#: Every tag :func:`version_tags` returns, in a stable order.
VERSION_TAGS = (CODE_VERSION_TAG, BUILD_TIME_TAG, DECLARATION_TAG, SUITE_TAG, *LIBRARY_TAGS.values(), PYTHON_TAG)
#: On a registry version: where its version tags came from (the candidate's training run, the
#: register step, or the register step for those the training run lacked).
VERSIONS_FROM_TAG = "modelops.versions_from"
FROM_TRAINING_RUN = "training run"
FROM_REGISTER = "register step"
FROM_BOTH = "training run, the rest at register"
#: The module each distribution imports as: an imported module's ``__version__`` is what runs.
_MODULES = {
    "scikit-learn": "sklearn",
    "pandas": "pandas",
    "numpy": "numpy",
    "mlflow": "mlflow",
    "great-expectations": "great_expectations",
}


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT_SECONDS,
        check=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # a status must not take the index lock
    )
    return result.stdout.strip()


def git_version(repo: str | os.PathLike[str]) -> str:
    """The commit checked out at ``repo``, ``-dirty`` if tracked files differ from it; ``unknown``
    without git or outside a repository. Untracked files do not count: a stray file is not code
    that ran unless something tracked imports it, and that import is itself a change."""
    repo = Path(repo)
    try:
        commit = _git(repo, "rev-parse", "--verify", "HEAD")
        changes = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError) as exc:  # no git, not a repository, no commit yet, timeout
        log.info("no code version from git at %s: %s", repo, getattr(exc, "stderr", None) or exc)
        return UNKNOWN
    return f"{commit}-dirty" if changes else commit


@functools.lru_cache(maxsize=8)
def _cached_git_version(repo: Path) -> str:
    return git_version(repo)


def code_version(repo: str | os.PathLike[str] | None = None) -> str:
    """``MODELOPS_CODE_VERSION`` when set (an image), else the repository's commit (see
    :func:`git_version`), else ``unknown``; never raises. The git answer is cached per process
    (a task asks once, and the code it runs does not change under it)."""
    return _env(CODE_VERSION_ENV) or _cached_git_version(Path(repo).resolve() if repo else REPO_ROOT)


def build_time() -> str:
    """``MODELOPS_BUILD_TIME`` when set (an image), else ``none`` (a working tree was not built)."""
    return _env(BUILD_TIME_ENV) or NONE


def canonical_sha256(value: Any) -> str:
    """SHA-256 of ``value`` as JSON with sorted keys and no whitespace: equal data, equal hash."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def declaration_hash(model: ModelConfig) -> str:
    """SHA-256 of the model's declaration as the platform understands it: the validated
    :class:`~modelops.config.ModelConfig` dumped as canonical JSON, defaults included.

    So whitespace, comments, key order and YAML spelling (flow or block style, ``true``/``yes``)
    of ``include/models/<model>.yaml`` do not change it, nor does writing out a default; any
    setting that changes (a feature, its description, a threshold) does. A platform release that
    adds a setting changes every model's hash, rightly: the declaration now means more."""
    return canonical_sha256(declaration_record(model))


#: The candidate run's artifact holding the declaration it was trained with, as
#: :func:`declaration_record` (its :func:`canonical_sha256` is the run's declaration hash): what
#: ``modelops.reproduce`` rebuilds a version with after the YAML file has changed.
DECLARATION_ARTIFACT = "declaration.json"


#: On a candidate run: the OpenMP threads its fit ran with. HistGradientBoosting sums gradients in
#: parallel, so its fitted trees depend (in the last bits) on the thread count: a rebuild uses this.
OPENMP_THREADS_TAG = "modelops.openmp_threads"


def openmp_threads() -> str:
    """The OpenMP threads this process runs with (``threadpoolctl``; the first OpenMP library loaded,
    ``OMP_NUM_THREADS`` or the core count when none is loaded yet)."""
    from threadpoolctl import threadpool_info

    for library in threadpool_info():
        if library.get("user_api") == "openmp":
            return str(library["num_threads"])
    return _env("OMP_NUM_THREADS") or str(os.cpu_count() or 1)


def declaration_record(model: ModelConfig) -> dict[str, Any]:
    """The declaration as JSON, defaults included: what :func:`declaration_hash` hashes."""
    return model.model_dump(mode="json")


def suite_hash(model: ModelConfig) -> str:
    """SHA-256 of the model's expectation suite (``model.suite_path``, as the data steps read it)
    as canonical JSON, so re-indenting the file does not change it; ``none`` without a suite.
    An unreadable suite raises ``ValueError`` naming the file (training would have refused it)."""
    path = model.suite_path
    if not path.is_file():
        return NONE
    try:
        suite = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot hash the expectation suite of '{model.name}': {exc}") from exc
    return canonical_sha256(suite)


def _library_version(distribution: str) -> str:
    module = sys.modules.get(_MODULES[distribution])
    loaded = getattr(module, "__version__", None) if module is not None else None
    if isinstance(loaded, str) and loaded:
        return loaded
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def library_versions() -> dict[str, str]:
    """The versions of the libraries a model is trained, validated and logged with, by
    distribution name; an already imported module answers with its own ``__version__`` (what
    runs), else the installed metadata (no import: cheap)."""
    return {distribution: _library_version(distribution) for distribution in LIBRARY_TAGS}


def version_tags(model: ModelConfig) -> dict[str, str]:
    """Every tag of :data:`VERSION_TAGS` for ``model``, computed now in this process."""
    libraries = library_versions()
    return {
        CODE_VERSION_TAG: code_version(),
        BUILD_TIME_TAG: build_time(),
        DECLARATION_TAG: declaration_hash(model),
        SUITE_TAG: suite_hash(model),
        **{tag: libraries[distribution] for distribution, tag in LIBRARY_TAGS.items()},
        PYTHON_TAG: platform.python_version(),
    }


def recorded_version_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """The :data:`VERSION_TAGS` among an MLflow run's ``tags`` (those it was tagged with)."""
    tags = tags or {}
    return {tag: tags[tag] for tag in VERSION_TAGS if tags.get(tag)}
