# Shared settings for the cluster scripts; sourced, not run.
# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this

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

# Runtime layout of a running cluster (all under .cluster/, git-ignored).
PKI_DIR="$STATE_DIR/pki"
LOG_DIR="$STATE_DIR/logs"
PID_DIR="$STATE_DIR/pids"
ENV_FILE="$STATE_DIR/cluster.env"
KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
# Start order; down.sh stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler node-agent)

pid_alive() {
  local f="$PID_DIR/$1.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(<"$f")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# Print the last lines of a component's log (for failures).
show_log() {
  local f="$LOG_DIR/$1.log"
  [[ -f "$f" ]] || return 0
  echo "---- last lines of .cluster/logs/$1.log ----" >&2
  tail -n "${2:-25}" "$f" >&2
  echo "----" >&2
}

# ---------------------------------------------------------------- real nodes (real-nodes.sh)
# A kubelet + containerd pair per node, next to the stand-in nodes. HPP_REAL_NODES: how many (0 turns them off).
REAL_DIR="$STATE_DIR/real"
REAL_NODE_NAMES=(hpp-real-plain hpp-real-gpu hpp-real-db)
# The kubelet is cached like the control plane, keyed by its own module's go.sum.
kubelet_bin_dir() { echo "$CACHE_ROOT/kubelet-$(sha256sum <"$CLUSTER_SCRIPTS/kubelet/go.sum" | cut -c1-16)"; }
helm_bin_dir() { echo "$CACHE_ROOT/helm-$(sha256sum <"$CLUSTER_SCRIPTS/helm/go.sum" | cut -c1-16)"; }
# A short id of this checkout: names of host-wide things (cgroups, bridges) so that clusters of other checkouts on the
# same machine do not collide.
checkout_id() { echo -n "$STATE_DIR" | sha256sum | cut -c1-6; }
