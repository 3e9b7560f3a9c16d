#!/usr/bin/env bash
# Make the product image available to the harness's real nodes: build it (build.sh; a warm rebuild takes seconds)
# unless HPP_IMAGE_BUILT=1, then import dist/image.tar into the containerd of every running real node. Used by
# deploy.sh (kustomize installs) and e2e/helm.test.ts (the chart).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../cluster/lib.sh
source "$here/../cluster/lib.sh"
LOG_PREFIX=image-import
cd "$REPO_ROOT"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)"

sockets=()
for name in "${REAL_NODE_NAMES[@]}"; do
  socket="$REAL_DIR/$name/containerd/containerd.sock"
  [[ -S "$socket" ]] && sockets+=("$socket")
done
((${#sockets[@]} > 0)) || { log "no real node is running (HPP_REAL_NODES=0?)" >&2; exit 1; }

if [[ "${HPP_IMAGE_BUILT:-}" != 1 ]]; then
  bash "$here/build.sh" >&2
fi
for socket in "${sockets[@]}"; do
  ctr --address "$socket" -n k8s.io images import "$REPO_ROOT/dist/image.tar" >/dev/null
done
log "imported hostpath-provisioner:$version into ${#sockets[@]} real node(s)" >&2

