#!/usr/bin/env bash
# `make image`: build the Dockerfile as IMAGE (default hostpath-provisioner:<package version>) with Docker when a
# daemon answers, else with buildah (Debian's package; chroot isolation, overlay or vfs storage). The same Dockerfile
# either way. Then write it as a docker-archive to dist/image.tar (what the e2e tests import into the real nodes).
#
#   BUILD_BASE, RUN_BASE  the Dockerfile's base images. Unset: the Dockerfile's defaults (node:24-slim and distroless
#                         Node.js 24) with Docker; with buildah, local stand-ins assembled by bases.sh, as buildah is
#                         this harness's way on machines that reach no image registry.
#   HPP_BUILDAH_ROOT      buildah's storage (default ${HPP_CACHE_DIR:-~/.cache/hostpath-provisioner}/buildah).
#   HPP_BUILDAH_DRIVER    buildah's storage driver (default overlay when the kernel has it, else vfs).
#
# npm behind TLS inspection: the CA bundle of the building host (NODE_EXTRA_CA_CERTS, else SSL_CERT_FILE, else
# /etc/ssl/certs/ca-certificates.crt) is handed to the npm steps as a build secret; it is in no image layer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)"
image="${IMAGE:-hostpath-provisioner:$version}"
archive="$repo/dist/image.tar"
mkdir -p "$repo/dist"

ca=""
for f in "${NODE_EXTRA_CA_CERTS:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  [[ -n "$f" && -f "$f" ]] && { ca="$f"; break; }
done
args=(--build-arg "VERSION=$version" -t "$image" -f Dockerfile)
[[ -n "$ca" ]] && args+=(--secret "id=ca,src=$ca")
[[ -n "${BUILD_BASE:-}" ]] && args+=(--build-arg "BUILD_BASE=$BUILD_BASE")
[[ -n "${RUN_BASE:-}" ]] && args+=(--build-arg "RUN_BASE=$RUN_BASE")

start=$SECONDS
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  echo "image: docker build -t $image"
  DOCKER_BUILDKIT=1 docker build "${args[@]}" .
  docker save -o "$archive" "$image"
else
  if ! command -v buildah >/dev/null && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "image: no Docker daemon; installing buildah (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
  fi
  command -v buildah >/dev/null || {
    echo "image: neither a Docker daemon nor buildah (Debian: apt-get install buildah)" >&2
    exit 1
  }
  root="${HPP_BUILDAH_ROOT:-${HPP_CACHE_DIR:-$HOME/.cache/hostpath-provisioner}/buildah}"
  driver="${HPP_BUILDAH_DRIVER:-}"
  if [[ -z "$driver" ]]; then
    # overlay where the kernel has it (here a warm rebuild takes seconds instead of minutes), else vfs.
    driver=vfs
    grep -qw overlay /proc/filesystems && driver=overlay
  fi
  buildah=(buildah --root "$root/storage-$driver" --runroot "$root/run-$driver" --storage-driver "$driver")
  if [[ -z "${BUILD_BASE:-}" && -z "${RUN_BASE:-}" ]]; then
    bases="$(bash "$here/bases.sh" "${buildah[@]}")"
    for kv in $bases; do args+=(--build-arg "$kv"); done
    echo "image: local base images: $bases"
  fi
  echo "image: buildah build -t $image (chroot isolation, $driver storage in $root)"
  BUILDAH_ISOLATION=chroot "${buildah[@]}" build --layers --pull=never "${args[@]}" .
  rm -f "$archive"
  "${buildah[@]}" push --quiet "$image" "docker-archive:$archive:$image"
fi
echo "image: $image built in $((SECONDS - start)) s; archive dist/image.tar"
