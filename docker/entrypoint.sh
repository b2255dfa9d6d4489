#!/usr/bin/env bash
# Entry point of the modelops image: the simple auth manager's passwords file from the environment
# (AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD, never baked into the image), then the command.
set -euo pipefail
passwords=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}
if [[ -n "$passwords" && -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]]; then
  mkdir -p "$(dirname "$passwords")"
  umask 077
  python3 -c 'import json, os, sys; json.dump({os.environ.get("AIRFLOW_ADMIN_USER", "admin"): os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1], "w"))' "$passwords"
fi
exec "$@"
