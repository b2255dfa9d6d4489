"""Loading a logged scikit-learn model together with the code it was logged with.

A model whose declaration has its own code is logged with ``code_paths`` (the package folder), so
the artifact carries the exact code it was trained with. MLflow puts that folder first on
``sys.path`` when loading; this also forgets earlier imports of the same packages, so a process that
loads version 2 after version 1 (serving) gets version 2's code rather than the cached module.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _forget(packages: set[str]) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]


def flavor_conf(local_path: str | Path) -> dict[str, Any]:
    """The ``sklearn`` flavor of a downloaded model's MLmodel file ({} when it has none)."""
    import yaml

    mlmodel = Path(local_path) / "MLmodel"
    if not mlmodel.is_file():
        return {}
    return (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get("sklearn", {}) or {}


def logged_code_packages(local_path: str | Path) -> set[str]:
    """Top-level packages and modules in the model's logged code folder."""
    code = flavor_conf(local_path).get("code")
    folder = Path(local_path) / code if code else None
    if folder is None or not folder.is_dir():
        return set()
    return {p.stem if p.suffix == ".py" else p.name for p in folder.iterdir() if p.is_dir() or p.suffix == ".py"}


def load_model(model_uri: str, mlflow: Any = None) -> Any:
    """``mlflow.sklearn.load_model`` for the platform: the model's own logged code wins over any
    copy of the same packages already imported in this process."""
    if mlflow is None:
        import mlflow
    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    packages = logged_code_packages(local)
    if packages:
        log.info("%s carries its code (%s); loading it with that code", model_uri, sorted(packages))
        _forget(packages)
    return mlflow.sklearn.load_model(local)
