# Shared settings for the cluster scripts; sourced, not run.
# shellcheck shell=bash

CLUSTER_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_SCRIPTS/../.." && pwd)"
STATE_DIR="$REPO_ROOT/.cluster"
CACHE_ROOT="${HPP_CACHE_DIR:-$HOME/.cache/hostpath-provisioner}"
BINARIES=(etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubectl)

# The binary cache is keyed by both go.sum files: a new version means a new folder.
cluster_bin_hash() {
  cat "$CLUSTER_SCRIPTS/k8s/go.sum" "$CLUSTER_SCRIPTS/etcd/go.sum" | sha256sum | cut -c1-16
}
cluster_bin_dir() { echo "$CACHE_ROOT/bin-$(cluster_bin_hash)"; }

cluster_bin_complete() {
  local dir="$1" b
  for b in "${BINARIES[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

log() { echo "${LOG_PREFIX:-cluster}: $*"; }
