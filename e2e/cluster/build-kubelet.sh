#!/usr/bin/env bash
# Build the kubelet (k8s.io/kubernetes/cmd/kubelet, the control plane's version) for the real nodes into
# ${HPP_CACHE_DIR:-~/.cache/hostpath-provisioner}/kubelet-<hash of kubelet/go.sum>/kubelet. Does nothing when it
# is there. Its own module (e2e/cluster/kubelet) keeps the control plane's cache key unchanged. With the Go build
# cache the control-plane build leaves, about 1 minute on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=build-kubelet

bin_dir="$(kubelet_bin_dir)"
[[ -x "$bin_dir/kubelet" ]] && exit 0

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
[[ -x "$bin_dir/kubelet" ]] && exit 0

command -v go >/dev/null || { log "go not found in PATH (need Go >= 1.26)"; exit 1; }
version="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$CLUSTER_SCRIPTS/kubelet/go.mod")"
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\. ]] || { log "cannot read the pinned version from kubelet/go.mod"; exit 1; }
major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

tmp="$bin_dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
log "building kubelet $version into $bin_dir"
(cd "$CLUSTER_SCRIPTS/kubelet" && CGO_ENABLED=0 GOFLAGS=-mod=readonly \
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$tmp/kubelet" k8s.io/kubernetes/cmd/kubelet)
rm -rf "$bin_dir"
mv "$tmp" "$bin_dir"
log "built in $(( SECONDS - start ))s"
