#!/usr/bin/env bash
# Run once, on the first start of an empty data volume, by the official postgres image and by the
# stand-in alike: one database per component (MODELOPS_DATABASES, default "airflow mlflow"),
# owned by POSTGRES_USER. Airflow's metadata and MLflow's registry stay apart (backups, upgrades).
set -euo pipefail
for db in ${MODELOPS_DATABASES:-airflow mlflow}; do
  exists=$(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'")
  if [ "$exists" != 1 ]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -qc "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
    echo "database $db created"
  fi
done
