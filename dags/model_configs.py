"""Model declarations check: surfaces invalid ``include/models/*.yaml`` files, and model code that
does not import, in the Airflow UI.

The DAG factories skip an invalid declaration so the other models keep running; this file
raises for it instead, so the error (file, field, problem) shows in the UI's "DAG Import
Errors" list and in ``airflow dags list-import-errors``. A declaration whose own code (``code:``)
fails to import is reported here too, naming the model, the file and the line; that model's DAGs
stay (its champion keeps serving and being monitored) and only its own candidates fail. This is
the one DAG file that imports the models' code, and only when a file of it changed (the result
is cached per code fingerprint). It defines no DAG.
"""

from __future__ import annotations

from modelops.config import ConfigError, load_models_and_errors
from modelops.usercode.loader import cached_code_errors

_models, _errors = load_models_and_errors()
_code_errors = [message for model in _models for message in cached_code_errors(model)]
if _errors or _code_errors:
    raise ConfigError("\n\n".join(str(error) for error in [*_errors, *_code_errors]))
