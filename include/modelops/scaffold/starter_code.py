"""A starter package for a model's own code: the ``--with-code`` half of ``python -m modelops.scaffold``.

``include/models/<name>/`` gets one feature step (a stateless transformer adding one numeric
column chosen from the sample), one candidate factory with a two-setting search space, and the
tests of both; the declaration gets the ``code:`` section naming them. Before anything is
written the package is put in a temporary folder and checked the way the platform will use it:
the declaration loads, every reference imports (``declared_code_errors``) and the custom
candidate's pipeline fits on the sample.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import keyword
import logging
import os
import re
import string
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from modelops.config import TrainingSpec, load_model_config
from modelops.scaffold import starter_templates as templates
from modelops.scaffold.declaration import ScaffoldError

log = logging.getLogger(__name__)

#: The starter candidate's name in ``code.candidates`` and ``training.candidates``.
CANDIDATE_NAME = "own_extra_trees"
#: Rows of the sample the starter pipeline is fitted on in the check (enough to prove it runs).
CHECK_ROWS = 1000
#: The package's files besides its ``test_<name>.py``, in the order they are written and reported.
PACKAGE_FILES = ("__init__.py", "features.py", "candidates.py")
#: Names the feature step's module imports: its class must not take one of them.
_IMPORTED_NAMES = {"BaseEstimator", "TransformerMixin"}


@dataclass(frozen=True)
class StarterFeature:
    """The one engineered column of the starter feature step, and how it is computed."""

    #: ``ratio`` (first two numeric features), ``log1p_abs`` (the only one) or ``missing_count``.
    kind: str
    #: The column the step adds: a valid identifier, unlike any column of the sample.
    column: str
    #: The declared features it reads.
    inputs: tuple[str, ...]
    #: A column name absent from the sample, for the generated test's "kept as is" column.
    spare: str
    description: str

    @property
    def class_name(self) -> str:
        name = "".join(part.capitalize() for part in self.column.split("_") if part)
        return f"{name}Step" if name in _IMPORTED_NAMES else name

    @property
    def factory(self) -> str:
        return f"add_{self.column}"


@dataclass(frozen=True)
class StarterPackage:
    """The package's files (by name, relative to its folder) and the declaration naming them."""

    name: str
    feature: StarterFeature
    declaration: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


def _identifier(text: str) -> str:
    """``text`` as a lower-case identifier: runs of other characters become one underscore."""
    cleaned = re.sub(r"[^0-9a-z_]+", "_", str(text).lower()).strip("_")
    cleaned = re.sub(r"_+", "_", cleaned)
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"f_{cleaned}".rstrip("_")
    return cleaned


def _unused(candidate: str, taken: set[str]) -> str:
    name, number = candidate, 2
    while name in taken or keyword.iskeyword(name):
        name, number = f"{candidate}_{number}", number + 1
    return name


def choose_feature(frame: pd.DataFrame, declaration: dict[str, Any]) -> StarterFeature:
    """The ratio of the first two numeric features; with one, log1p of its magnitude; with none,
    the count of missing features per row. Generic on purpose: it shows the shape, the data
    scientist replaces it with what they know."""
    features = [f["name"] for f in declaration["features"]]
    numeric = [f["name"] for f in declaration["features"] if f["type"] == "numeric"]
    taken = {str(c) for c in frame.columns}
    if len(numeric) >= 2:
        a, b = numeric[:2]
        column = _unused(f"{_identifier(a)}_per_{_identifier(b)}", taken)
        kind, inputs = "ratio", (a, b)
        description = f"{a} / (|{b}| + 1), the ratio of the sample's first two numeric features"
    elif numeric:
        (a,) = numeric
        column = _unused(f"log1p_abs_{_identifier(a)}", taken)
        kind, inputs = "log1p_abs", (a,)
        description = f"log(1 + |{a}|), the magnitude of the sample's only numeric feature"
    else:
        column = _unused("missing_count", taken)
        kind, inputs = "missing_count", tuple(features)
        description = "how many of the declared features are missing in the row"
    spare = _unused("untouched", taken | {column})
    return StarterFeature(kind, column, inputs, spare, f"{description}; drafted by modelops.scaffold")


def _literal(value: str) -> str:
    """A double-quoted Python string literal (JSON's escapes are Python's too)."""
    return json.dumps(str(value), ensure_ascii=False)


def _refuse_unimportable(name: str, models: Path) -> None:
    """A package named like a keyword, or like a module importable from elsewhere, could never be imported."""
    if keyword.iskeyword(name):
        raise ScaffoldError(
            f"--with-code: '{name}' is a Python keyword, so no package can be named so; choose another model name"
        )
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:  # absent, or a plain folder (a namespace): a package wins over it
        return
    if spec.has_location and Path(spec.origin).resolve().is_relative_to(models.resolve()):
        return  # this model's own package, drafted before (--force overwrites it)
    raise ScaffoldError(
        f"--with-code: '{name}' is already an importable module ({spec.origin}); a package {models / name}/ "
        "would be shadowed by it: choose another model name"
    )


def draft_package(frame: pd.DataFrame, declaration: dict[str, Any], models: Path) -> StarterPackage:
    """The starter package for ``declaration`` and the declaration with its ``code:`` section."""
    name = declaration["name"]
    _refuse_unimportable(name, models)
    feature = choose_feature(frame, declaration)
    classifier = declaration["problem_type"] != "regression"
    values = {
        "name": name,
        "problem_type": declaration["problem_type"],
        "column": feature.column,
        "column_literal": _literal(feature.column),
        "class_name": feature.class_name,
        "factory": feature.factory,
        "spare_literal": _literal(feature.spare),
        "inputs_literals": "".join(f"    {_literal(c)},\n" for c in feature.inputs),
        "estimator": "ExtraTreesClassifier" if classifier else "ExtraTreesRegressor",
        "labels": "[0, 1, 0, 1]" if classifier else "[0.0, 1.0, 2.0, 3.0]",
        "candidate": CANDIDATE_NAME,
        "numpy_import": "" if feature.kind == "missing_count" else "import numpy as np\n",
        "math_import": "" if feature.kind == "missing_count" else "\nimport math\n",
    }
    values.update({f"input_{i}_literal": _literal(c) for i, c in enumerate(feature.inputs[:2])})
    render = {
        "__init__.py": templates.INIT,
        "features.py": templates.FEATURES[feature.kind],
        "candidates.py": templates.CANDIDATES,
        f"test_{name}.py": templates.TESTS_HEAD + templates.FEATURE_TESTS[feature.kind] + templates.TESTS_TAIL,
    }
    files = {path: string.Template(text).substitute(values) for path, text in render.items()}
    return StarterPackage(name, feature, with_code_section(declaration, feature), files)


def with_code_section(declaration: dict[str, Any], feature: StarterFeature) -> dict[str, Any]:
    """``declaration`` with the ``code:`` section (before ``training``, as a reader expects it) and
    the starter candidate trained next to the built-in families."""
    name = declaration["name"]
    code = {
        "package": name,
        "feature_steps": [f"{name}.features:{feature.factory}"],
        "engineered_features": [{"name": feature.column, "type": "numeric", "description": feature.description}],
        "candidates": [
            {
                "name": CANDIDATE_NAME,
                "factory": f"{name}.candidates:make_model",
                "search_space": f"{name}.candidates:SEARCH_SPACE",
            }
        ],
        "trusted_types": [f"{name}.features.{feature.class_name}"],
    }
    built_in = declaration.get("training", {}).get("candidates") or TrainingSpec.model_fields["candidates"].default
    out: dict[str, Any] = {}
    for key, value in declaration.items():
        if key == "training":
            out["code"] = code
        out[key] = value
    out.setdefault("code", code)
    out["training"] = {**declaration.get("training", {}), "candidates": [*built_in, CANDIDATE_NAME]}
    return out


def package_paths(package: StarterPackage, models: Path) -> list[Path]:
    return [models / package.name / path for path in package.files]


def write_package(package: StarterPackage, models: Path) -> list[Path]:
    folder = models / package.name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for path, text in package.files.items():
        (folder / path).write_text(text)
        paths.append(folder / path)
    importlib.invalidate_caches()  # a process importing it next must see the new folder
    return paths


def _forget(package: str) -> None:
    for module in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[module]


@contextlib.contextmanager
def _importable_from(folder: Path, package: str) -> Iterator[None]:
    """``folder`` first on ``sys.path`` and as MODELOPS_MODELS_DIR, for as long as the check runs;
    afterwards the package's modules are forgotten, so a later import finds the written copy."""
    previous = os.environ.get("MODELOPS_MODELS_DIR")
    os.environ["MODELOPS_MODELS_DIR"] = str(folder)
    sys.path.insert(0, str(folder))
    _forget(package)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))
        if previous is None:
            os.environ.pop("MODELOPS_MODELS_DIR", None)
        else:
            os.environ["MODELOPS_MODELS_DIR"] = previous
        _forget(package)


def check_package(frame: pd.DataFrame, package: StarterPackage, declaration_text: str) -> None:
    """Write the declaration and the package to a temporary models folder and use them as the
    platform will: load the declaration, import every reference, fit the starter candidate's
    pipeline (feature step, shared preprocessing, estimator) on the sample."""
    from modelops.training.pipelines import build_pipeline
    from modelops.usercode import loader

    with tempfile.TemporaryDirectory(prefix="modelops-scaffold-") as folder:
        root = Path(folder)
        (root / f"{package.name}.yaml").write_text(declaration_text)
        write_package(package, root)
        with _importable_from(root, package.name):
            model = load_model_config(root / f"{package.name}.yaml")
            errors = loader.declared_code_errors(model)
            if errors:
                raise ScaffoldError("the drafted starter code does not import:\n" + "\n".join(map(str, errors)))
            rows = frame.sample(n=min(len(frame), CHECK_ROWS), random_state=model.training.random_seed)
            try:
                loader.check_feature_steps(model, rows[model.feature_names])
                candidate = model.custom_candidates[CANDIDATE_NAME]
                setting = loader.search_space(model, candidate)[0]
                build_pipeline(model, CANDIDATE_NAME, setting).fit(rows[model.feature_names], rows[model.target])
            except Exception as exc:  # noqa: BLE001 - any failure of the draft is reported, nothing written
                raise ScaffoldError(
                    f"the drafted starter code fails on the sample: {exc}; nothing was written "
                    "(re-run without --with-code and write the code by hand)"
                ) from exc
    log.info("starter code of %s checked on %d rows", package.name, len(rows))
