#!/usr/bin/env bash
# Assemble the images the real nodes need, without a registry, as docker-archive tarballs in .cluster/images/:
#   busybox.tar  Debian's busybox-static (one binary plus a link per applet), tagged with the busybox names the
#                tests and the provisioner's default helper image use (busybox:1.37.0, busybox:1.36);
#   pause.tar    registry.k8s.io/pause:<tag>, compiled with gcc -static from build/pause/linux/pause.c of the
#                k8s.io/kubernetes module the cluster is built from (the name containerd's sandbox_image gives).
# real-nodes.sh imports them into every real node's containerd (`ctr -n k8s.io images import`); any other image
# fails to pull, as an unreachable registry does.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=images

out="$STATE_DIR/images"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac

# docker_archive <out.tar> <rootfs dir> <config json fragment> <tag...>
docker_archive() {
  local tarball="$1" rootfs="$2" config="$3"
  shift 3
  local d="$work/archive" layer_sha config_sha tags
  rm -rf "$d" && mkdir -p "$d"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$d/layer.tar" .
  layer_sha="$(sha256sum <"$d/layer.tar" | cut -d' ' -f1)"
  mkdir "$d/$layer_sha" && mv "$d/layer.tar" "$d/$layer_sha/layer.tar"
  printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arch" "$config" "$layer_sha" >"$d/config.json"
  config_sha="$(sha256sum <"$d/config.json" | cut -d' ' -f1)"
  mv "$d/config.json" "$d/$config_sha.json"
  tags="$(printf '"%s",' "$@")"
  printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":["%s/layer.tar"]}]' "$config_sha" "${tags%,}" "$layer_sha" \
    >"$d/manifest.json"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d" -cf "$tarball.tmp" manifest.json "$config_sha.json" "$layer_sha" && mv "$tarball.tmp" "$tarball"
}

# ---- busybox
busybox="$(command -v busybox || true)"
if [[ -z "$busybox" ]] || ! file -L "$busybox" | grep -q 'statically linked'; then
  log "need a statically linked busybox (Debian: apt-get install busybox-static)"
  exit 1
fi
root="$work/busybox"
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root,var}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
docker_archive "$out/busybox.tar" "$root" \
  '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' \
  docker.io/library/busybox:1.37.0 docker.io/library/busybox:1.36

# ---- pause
pause_c="$(cd "$CLUSTER_SCRIPTS/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
[[ -f "$pause_c" ]] || (cd "$CLUSTER_SCRIPTS/k8s" && go mod download k8s.io/kubernetes)
[[ -f "$pause_c" ]] || { log "pause.c not found in the k8s.io/kubernetes module ($pause_c)"; exit 1; }
pause_dir="$(dirname "$(dirname "$pause_c")")"
tag="$(sed -n 's/^TAG ?= *//p' "$pause_dir/Makefile")"
root="$work/pause"
mkdir -p "$root"
gcc -Os -Wall -Werror -static -DVERSION="v$tag-hostpath-provisioner" -o "$root/pause" "$pause_c"
docker_archive "$out/pause.tar" "$root" '{"Entrypoint":["/pause"],"User":"65535:65535"}' "registry.k8s.io/pause:$tag"
echo "registry.k8s.io/pause:$tag" >"$out/pause.name"
log "busybox and pause images in .cluster/images/"
