"""An unfitted scikit-learn pipeline written back as the Python that builds it.

``Pipeline(steps=[('preprocess', ColumnTransformer(...)), ('model', RandomForestClassifier(...))])``:
each estimator as its class (imported from its public module, e.g. ``sklearn.ensemble`` rather
than ``sklearn.ensemble._forest``) called with every parameter that differs from the class's
default, nested estimators and the model's own classes included. That is what an exported
training script shows a data scientist: the pipeline as code they can read and change, built
by the platform and not retyped, so it cannot drift from what was trained.
"""

from __future__ import annotations

import importlib
import inspect
import math
import types
from typing import Any

LINE_WIDTH = 100


class NotRenderable(ValueError):
    """A value in the pipeline has no faithful spelling as code; the message names it."""


def public_module(obj: Any) -> str:
    """The shortest public module that exports ``obj`` under its name (its own module otherwise)."""
    module, name = obj.__module__, obj.__qualname__
    parts = module.split(".")
    for end in range(1, len(parts)):
        if parts[end - 1].startswith("_"):
            break
        candidate = ".".join(parts[:end])
        try:
            if getattr(importlib.import_module(candidate), name, None) is obj:
                return candidate
        except ImportError:
            continue
    return module


def _same(default: Any, value: Any) -> bool:
    if default is value:
        return True
    try:
        return type(default) is type(value) and bool(default == value)
    except Exception:  # noqa: BLE001 - arrays and odd types: not provably the default, so write it out
        return False


class Renderer:
    """Collects the imports the expressions it writes need."""

    def __init__(self) -> None:
        self.imports: dict[str, str] = {}  # name -> "from module import name"

    def name_of(self, obj: Any) -> str:
        name = getattr(obj, "__qualname__", "")
        if not name or "." in name or "<" in name:
            raise NotRenderable(f"{obj!r} has no importable name (defined inside a function or a class?)")
        line = f"from {public_module(obj)} import {name}"
        if self.imports.get(name, line) != line:
            raise NotRenderable(f"two different objects are both named '{name}': {self.imports[name]} and {line}")
        self.imports[name] = line
        return name

    def expr(self, value: Any, indent: int = 0) -> str:
        import numpy as np

        if value is None or isinstance(value, (bool, int, str, bytes)) and not isinstance(value, np.generic):
            return repr(value)
        if isinstance(value, float):
            return repr(value) if math.isfinite(value) else f'float("{value}")'
        if isinstance(value, np.generic):
            return self.expr(value.item(), indent)
        if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
            return self.name_of(value)
        if isinstance(value, (list, tuple)):
            items = [self.expr(item, indent + 1) for item in value]
            if isinstance(value, tuple):
                return f"({items[0]},)" if len(items) == 1 else self._wrap("(", items, ")", indent)
            return self._wrap("[", items, "]", indent)
        if isinstance(value, dict):
            return self._wrap(
                "{", [f"{self.expr(k)}: {self.expr(v, indent + 1)}" for k, v in value.items()], "}", indent
            )
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            self.imports["np"] = "import numpy as np"
            return f"np.array({value.tolist()!r}, dtype={value.dtype.str!r})"
        if hasattr(value, "get_params"):
            return self.estimator(value, indent)
        raise NotRenderable(
            f"cannot write a {type(value).__module__}.{type(value).__qualname__} as code: {value!r}"[:300]
        )

    def estimator(self, estimator: Any, indent: int = 0) -> str:
        cls = type(estimator)
        signature = inspect.signature(cls.__init__)
        arguments = []
        for key, value in estimator.get_params(deep=False).items():
            parameter = signature.parameters.get(key)
            if (
                parameter is not None
                and parameter.default is not inspect.Parameter.empty
                and _same(parameter.default, value)
            ):
                continue
            arguments.append(f"{key}={self.expr(value, indent + 1)}")
        return self._wrap(f"{self.name_of(cls)}(", arguments, ")", indent)

    @staticmethod
    def _wrap(opening: str, items: list[str], closing: str, indent: int) -> str:
        flat = opening + ", ".join(items) + closing
        if len(flat) + 4 * indent <= LINE_WIDTH and "\n" not in flat:
            return flat
        inner = "    " * (indent + 1)
        body = "".join(f"{inner}{item},\n" for item in items)
        return f"{opening}\n{body}{'    ' * indent}{closing}"

    def import_lines(self) -> list[str]:
        return sorted(set(self.imports.values()))


def render(pipeline: Any) -> tuple[str, list[str]]:
    """The expression that builds ``pipeline`` (unfitted) and the import lines it needs."""
    renderer = Renderer()
    source = renderer.expr(pipeline, indent=1)
    return source, renderer.import_lines()
