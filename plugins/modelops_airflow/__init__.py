"""Airflow-facing extensions (subclasses of Airflow classes, API middleware), importable by every
Airflow component because ``plugins/`` is on its path. The core in ``include/modelops`` never imports them."""
