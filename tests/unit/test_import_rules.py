"""The one allowed direction of imports (docs/ARCHITECTURE.md, "Packages"):

dags -> plugins / stage steps -> stage modules -> shared foundations. What runs in production
(every stage package, the foundations, dags/, plugins/) never imports the local tooling
(``modelops.local``); no module of ``include/modelops`` imports Airflow at module level, so the
core is importable and testable without it; the core never imports ``plugins/``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "include" / "modelops"
#: Tools a developer runs; they may use the local stack. Nothing else may import them.
TOOLING = ("local", "scaffold")


def _imported_modules(node: ast.AST) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every import in ``node`` (``from a import b`` yields ``a.b``)."""
    found = []
    for item in ast.walk(node):
        if isinstance(item, ast.Import):
            found += [(item.lineno, alias.name) for alias in item.names]
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            found += [(item.lineno, f"{item.module}.{alias.name}") for alias in item.names]
    return found


def _module_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Imports that run when the module is imported (not inside functions or ``if TYPE_CHECKING``)."""
    found = []

    def visit(statements):
        for statement in statements:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
                visit(statement.orelse)
                continue
            if isinstance(statement, ast.Import | ast.ImportFrom):
                found.extend(_imported_modules(statement))
            elif isinstance(statement, ast.ClassDef):
                visit([s for s in statement.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)])
            elif hasattr(statement, "body"):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(statement, field, []) or [])

    visit(tree.body)
    return found


def _is(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(source: str, where: str) -> list[str]:
    """Every rule that ``source``, standing at ``where`` (a path relative to the repo), breaks."""
    tree = ast.parse(source, filename=where)
    parts = Path(where).parts
    in_core = parts[:2] == ("include", "modelops")
    is_tooling = in_core and len(parts) > 3 and parts[2] in TOOLING
    problems = []
    if not is_tooling:
        for line, name in _imported_modules(tree):
            if any(_is(name, f"modelops.{tool}") for tool in TOOLING):
                problems.append(f"{where}:{line}: imports local tooling {name}")
    if in_core:
        for line, name in _imported_modules(tree):
            if _is(name, "modelops_airflow") or _is(name, "modelops_guards"):
                problems.append(f"{where}:{line}: the core imports plugins/ ({name})")
        for line, name in _module_level_imports(tree):
            if _is(name, "airflow"):
                problems.append(f"{where}:{line}: imports Airflow at module level ({name})")
    return problems


def _runtime_files() -> list[Path]:
    return sorted([*CORE.rglob("*.py"), *(REPO / "dags").rglob("*.py"), *(REPO / "plugins").rglob("*.py")])


def test_the_runtime_never_imports_tooling_and_the_core_never_imports_airflow_at_module_level() -> None:
    found = [v for path in _runtime_files() for v in violations(path.read_text(), str(path.relative_to(REPO)))]
    assert found == []


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        ("include/modelops/monitoring/x.py", "from modelops.local import datagen\n", "imports local tooling"),
        ("include/modelops/ingest/x.py", "def f():\n    from modelops.local.stack import S\n", "imports local tooling"),
        ("include/modelops/data/x.py", "import modelops.scaffold.cli\n", "imports local tooling"),
        ("include/modelops/x.py", "from modelops import local\n", "imports local tooling"),
        ("dags/x.py", "from modelops.local.datagen import generate_batch\n", "imports local tooling"),
        ("plugins/x.py", "from modelops.local import stack\n", "imports local tooling"),
        ("include/modelops/serving/x.py", "from airflow.sdk import task\n", "Airflow at module level"),
        (
            "include/modelops/x.py",
            "try:\n    import airflow\nexcept ImportError:\n    pass\n",
            "Airflow at module level",
        ),
        ("include/modelops/x.py", "class A:\n    from airflow.sdk import dag\n", "Airflow at module level"),
        ("include/modelops/x.py", "from modelops_airflow.sqs_watch import T\n", "the core imports plugins"),
    ],
)
def test_each_rule_catches_its_violation(where: str, source: str, expected: str) -> None:
    found = violations(source, where)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("include/modelops/local/x.py", "from modelops.local import stack\nfrom modelops.monitoring import steps\n"),
        ("include/modelops/scaffold/x.py", "from modelops.local import bootstrap\n"),
        ("include/modelops/dagkit.py", "def f():\n    from airflow.sdk import task\n"),
        ("include/modelops/y.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import airflow\n"),
        ("plugins/x.py", "from airflow.plugins_manager import AirflowPlugin\nfrom modelops import settings\n"),
        ("dags/x.py", "from airflow.sdk import dag\nfrom modelops.dagkit import dag_header\n"),
    ],
)
def test_allowed_imports_pass(where: str, source: str) -> None:
    assert violations(source, where) == []


def test_importing_every_core_module_loads_no_airflow() -> None:
    """The static rule above, checked by running it: a fresh interpreter imports every module of
    include/modelops and Airflow is still not in ``sys.modules``."""
    modules = sorted(
        ".".join(("modelops", *p.relative_to(CORE).with_suffix("").parts)).removesuffix(".__init__")
        for p in CORE.rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
