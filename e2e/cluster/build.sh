#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
# into ${HPP_CACHE_DIR:-~/.cache/hostpath-provisioner}/bin-<hash of go.sum files>/
# and point .cluster/bin at it. Does nothing when the binaries are already there.
# A cold build takes 6–13 minutes on 2 cores (the more, the more other work shares them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=build

bin_dir="$(cluster_bin_dir)"
link_bin() {
  mkdir -p "$STATE_DIR"
  ln -sfn "$bin_dir" "$STATE_DIR/bin"
}

if cluster_bin_complete "$bin_dir"; then
  link_bin
  log "binaries up to date in $bin_dir"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# One build at a time per cache (make and the test setup may race).
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if cluster_bin_complete "$bin_dir"; then
  link_bin
  log "binaries up to date in $bin_dir"
  exit 0
fi

command -v go >/dev/null || { log "go not found in PATH (need Go >= 1.26)"; exit 1; }
k8s_version="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$CLUSTER_SCRIPTS/k8s/go.mod")"
etcd_version="$(sed -n 's/^[[:space:]]*go.etcd.io\/etcd\/server\/v3 \(v[0-9.]*\)$/\1/p' "$CLUSTER_SCRIPTS/etcd/go.mod")"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || { log "cannot read pinned versions from go.mod files"; exit 1; }

tmp="$bin_dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"; [[ -n "${ticker:-}" ]] && kill "$ticker" 2>/dev/null || true' EXIT

export CGO_ENABLED=0 GOFLAGS=-mod=readonly
start=$SECONDS
( while sleep 120; do log "  ... still compiling ($(( (SECONDS - start) / 60 )) min)"; done ) &
ticker=$!

log "cold build into $bin_dir (6–13 min on 2 cores)"

[[ "$k8s_version" =~ ^v([0-9]+)\.([0-9]+)\. ]]
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

log "[1/2] etcd $etcd_version (etcd, etcdctl)"
(cd "$CLUSTER_SCRIPTS/etcd" &&
  go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3 &&
  go build -trimpath -ldflags "-s -w" -o "$tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3)
log "      done after $(( SECONDS - start ))s"

log "[2/2] kubernetes $k8s_version (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)"
(cd "$CLUSTER_SCRIPTS/k8s" && go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
log "      done after $(( SECONDS - start ))s"

cluster_bin_complete "$tmp" || { log "build finished but binaries are missing in $tmp"; ls -l "$tmp"; exit 1; }
rm -rf "$bin_dir"
mv "$tmp" "$bin_dir"
link_bin
log "built in $(( SECONDS - start ))s; .cluster/bin -> $bin_dir"
