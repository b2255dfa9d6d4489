#!/usr/bin/env bash
# A Python 3.11 base image made from Debian's packages, for machines that cannot pull
# python:3.11-slim-bookworm (no registry): debootstrap a minimal bookworm, then `docker import`.
# Skipped when the image exists (with libgomp1). Usage: docker/build-base.sh [IMAGE] (default modelops-base:bookworm).
set -euo pipefail
image=${1:-${MODELOPS_BASE_IMAGE:-modelops-base:bookworm}}
if docker image inspect "$image" >/dev/null 2>&1; then
  if docker run --rm --entrypoint sh "$image" -c 'ldconfig -p | grep -q "libgomp.so.1 "'; then
    echo "base image $image exists: kept"
    exit 0
  fi
  echo "base image $image lacks libgomp1 (an older build): rebuilt"
fi
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(awk '/^URIs:/ {print $2; exit}' "$sources" 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d /tmp/modelops-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm from $mirror into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,curl,libgomp1 \
  bookworm "$rootfs" "$mirror" >/tmp/modelops-debootstrap.log 2>&1 \
  || { tail -30 /tmp/modelops-debootstrap.log; exit 1; }
# libgomp1: LightGBM's OpenMP runtime (the Dockerfile installs it on an official base that lacks it).
# Keep the image lean: package lists and caches are not needed at run time.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
# The host's sources (the same mirror), so images built on this base can apt-get with --network host.
[ -f "$sources" ] && cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "base image $image built: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
