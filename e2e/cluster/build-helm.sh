#!/usr/bin/env bash
# Build helm (helm.sh/helm/v4, the version e2e/cluster/helm/go.mod pins) for e2e/helm.test.ts into
# ${HPP_CACHE_DIR:-~/.cache/hostpath-provisioner}/helm-<hash of helm/go.sum>/helm and print that path. Does nothing
# but print when it is there. About 3 minutes on 2 cores the first time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=build-helm

bin_dir="$(helm_bin_dir)"
if [[ ! -x "$bin_dir/helm" ]]; then
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.build.lock"
  if ! flock -n 9; then
    log "another build is running; waiting for it" >&2
    flock 9
  fi
fi
if [[ ! -x "$bin_dir/helm" ]]; then
  command -v go >/dev/null || { log "go not found in PATH (need Go >= 1.26)" >&2; exit 1; }
  version="$(sed -n 's/^require helm.sh\/helm\/v4 \(v[0-9.]*\)$/\1/p' "$CLUSTER_SCRIPTS/helm/go.mod")"
  [[ -n "$version" ]] || { log "cannot read the pinned version from helm/go.mod" >&2; exit 1; }
  tmp="$bin_dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  start=$SECONDS
  log "building helm $version into $bin_dir" >&2
  (cd "$CLUSTER_SCRIPTS/helm" && CGO_ENABLED=0 GOFLAGS=-mod=readonly \
    go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" -o "$tmp/helm" \
    helm.sh/helm/v4/cmd/helm) >&2
  rm -rf "$bin_dir"
  mv "$tmp" "$bin_dir"
  log "built in $(( SECONDS - start ))s" >&2
fi
echo "$bin_dir/helm"
