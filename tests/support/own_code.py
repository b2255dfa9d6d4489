"""A data scientist's package written by a unit test: a throw-away models folder
(``MODELOPS_MODELS_DIR``) whose packages each get a fresh name, so no two tests share a module
in ``sys.modules``. The ``models`` fixture (tests/unit/conftest.py) hands one to a test."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# A feature step adding the engineered column ``gap`` (x0 - x1) to the declared x0 and x1.
ADD_GAP = """\
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin


    class AddGap(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            out = X.copy()
            out["gap"] = out["x0"] - out["x1"]
            return out


    def add_gap():
        return AddGap()
    """


def line_of(source: str, text: str) -> int:
    """The 1-based line of ``source`` holding ``text`` (so no test hard-codes a line number)."""
    return next(n for n, line in enumerate(textwrap.dedent(source).splitlines(), 1) if text in line)


@dataclass
class ModelsFolder:
    """A temporary ``include/models/`` holding the packages the test writes."""

    path: Path
    packages: list[str] = field(default_factory=list)

    def package(self, files: dict[str, str]) -> str:
        """Write a package of ``files`` (name -> source) under a fresh name; returns the name."""
        name = f"own_{uuid.uuid4().hex[:10]}"
        folder = self.path / name
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        for filename, source in files.items():
            (folder / filename).write_text(textwrap.dedent(source))
        self.packages.append(name)
        importlib.invalidate_caches()
        return name


def models_folder(tmp_path: Path, monkeypatch) -> Iterator[ModelsFolder]:
    """A models folder of the test's own; its sys.path entries and imported packages go with the test."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(folder))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader's and MLflow's entries go to this copy
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a rewritten module is read again, not its .pyc
    written = ModelsFolder(folder)
    yield written
    for name in [n for n in sys.modules if n.split(".")[0] in written.packages]:
        del sys.modules[name]
