#!/usr/bin/env bash
# Stand-in images for PostgreSQL and Redis from Debian's packages, for machines that cannot pull
# the official ones (no registry). apt-get reaches Debian's mirror through the host's network
# (--network host) with the host's debian.sources. Skipped when an image exists.
# Usage: docker/build-standins.sh [BASE_IMAGE]; names from MODELOPS_POSTGRES_IMAGE / MODELOPS_REDIS_IMAGE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${1:-${MODELOPS_BASE_IMAGE:-modelops-base:bookworm}}
build() {  # image context
  if docker image inspect "$1" >/dev/null 2>&1; then
    echo "image $1 exists: kept"
    return
  fi
  docker build --quiet --network host --build-arg BASE_IMAGE="$base" -t "$1" "$2" >/dev/null
  echo "image $1 built"
}
build "${MODELOPS_POSTGRES_IMAGE:-modelops-postgres:15}" "$here/postgres"
build "${MODELOPS_REDIS_IMAGE:-modelops-redis:7}" "$here/redis"
