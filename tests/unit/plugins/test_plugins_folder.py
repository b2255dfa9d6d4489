"""Airflow's plugin manager loads only the plugin files: the package modelops_airflow is skipped, so its
modules are never executed a second time as top-level modules (``sqs_watch``, ``__init__``)."""

from __future__ import annotations

from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def test_only_the_plugin_files_are_loaded_as_plugins():
    from airflow.utils.file import find_path_from_directory

    found = [Path(p).relative_to(PLUGINS).as_posix() for p in find_path_from_directory(PLUGINS, ".airflowignore")]
    assert [p for p in found if p.endswith(".py")] == ["modelops_guards.py", "modelops_ui.py"]
