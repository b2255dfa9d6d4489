"""Model declarations check: surfaces invalid ``include/models/*.yaml`` files in the Airflow UI.

The DAG factories skip an invalid declaration so the other models keep running; this file
raises for it instead, so the error (file, field, problem) shows in the UI's "DAG Import
Errors" list and in ``airflow dags list-import-errors``. It defines no DAG.
"""

from __future__ import annotations

from modelops.config import ConfigError, load_models_and_errors

_models, _errors = load_models_and_errors()
if _errors:
    raise ConfigError("\n\n".join(str(error) for error in _errors))
