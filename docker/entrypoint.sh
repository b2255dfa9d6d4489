#!/usr/bin/env bash
# Entry point of the modelops image: the simple auth manager's passwords file from the environment
# (AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD, and AIRFLOW_VIEWER_USER / AIRFLOW_VIEWER_PASSWORD
# for the read-only user if set; never baked into the image), then the command.
set -euo pipefail
passwords=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}
if [[ -n "$passwords" && -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]]; then
  mkdir -p "$(dirname "$passwords")"
  umask 077
  python3 - "$passwords" <<'PY'
import json, os, sys
users = {os.environ.get("AIRFLOW_ADMIN_USER", "admin"): os.environ["AIRFLOW_ADMIN_PASSWORD"]}
if os.environ.get("AIRFLOW_VIEWER_PASSWORD"):
    users[os.environ.get("AIRFLOW_VIEWER_USER", "viewer")] = os.environ["AIRFLOW_VIEWER_PASSWORD"]
json.dump(users, open(sys.argv[1], "w"))
PY
fi
exec "$@"
