#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's two base images, for machines that reach no image registry (buildah only):
#   build base  Node from the npm registry's node-linux-<arch> package, npm from the npm registry, the glibc and
#               libstdc++ files node links against, a shell (Debian's busybox-static) — what node:24-slim offers
#               the build stages;
#   run base    /nodejs/bin/node and the same libraries, user 65532 (nonroot), no shell — as distroless has.
# Prints "BUILD_BASE=<ref> RUN_BASE=<ref>". Images are kept in buildah's storage; a second run reuses them.
# Usage: bases.sh <buildah command...>   (e.g. bases.sh buildah --storage-driver vfs)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
buildah=("$@")
((${#buildah[@]})) || buildah=(buildah)

node_version="$(sed -n 's/^NODE_VERSION := //p' "$repo/Makefile")"
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "bases: unsupported $(uname -m)" >&2; exit 1 ;; esac
build_ref="localhost/hostpath-provisioner-base/build:node-$node_version"
run_ref="localhost/hostpath-provisioner-base/run:node-$node_version"
have() { "${buildah[@]}" inspect --type image "$1" >/dev/null 2>&1; }
if have "$build_ref" && have "$run_ref"; then
  echo "BUILD_BASE=$build_ref RUN_BASE=$run_ref"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "bases: fetching node-linux-$arch@$node_version and npm from the npm registry" >&2
npm install --prefix "$work/pkg" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$node_version" >/dev/null
# npm 11 is the major Node 24 ships with.
(cd "$work" && npm pack --silent npm@11 >/dev/null)
node_bin="$work/pkg/node_modules/node-linux-$arch/bin/node"
[[ -x "$node_bin" ]] || { echo "bases: no node binary in node-linux-$arch" >&2; exit 1; }

# copy_libs <root>: the shared libraries node needs, at the paths the dynamic loader looks for them.
copy_libs() {
  local lib
  for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$1$(dirname "$lib")"
    cp -L "$lib" "$1$lib"
  done
}

# ---- build base
b="$work/build"
mkdir -p "$b"/{bin,usr/bin,usr/local/bin,usr/local/lib/node_modules,etc,tmp,root,app}
chmod 1777 "$b/tmp"
cp "$(command -v busybox)" "$b/bin/busybox"
for applet in $(busybox --list); do [[ "$applet" == busybox ]] || ln -sf /bin/busybox "$b/bin/$applet"; done
ln -sf /bin/busybox "$b/usr/bin/env"
cp "$node_bin" "$b/usr/local/bin/node"
tar -xzf "$work"/npm-*.tgz -C "$b/usr/local/lib/node_modules"
mv "$b/usr/local/lib/node_modules/package" "$b/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$b/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$b/usr/local/bin/npx"
copy_libs "$b"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$b/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$b/etc/group"

# ---- run base
r="$work/run"
mkdir -p "$r"/{nodejs/bin,etc,tmp,home/nonroot}
chmod 1777 "$r/tmp"
cp "$node_bin" "$r/nodejs/bin/node"
copy_libs "$r"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$r/etc/group"
chown 65532:65532 "$r/home/nonroot"

# commit <rootfs> <ref> <buildah config flags...>
commit() {
  local root="$1" ref="$2" c
  shift 2
  c="$("${buildah[@]}" from scratch)"
  "${buildah[@]}" copy "$c" "$root" / >/dev/null
  "${buildah[@]}" config "$@" "$c"
  "${buildah[@]}" commit --quiet --rm "$c" "$ref" >/dev/null
}
commit "$b" "$build_ref" --env PATH=/usr/local/bin:/usr/bin:/bin --env NODE_VERSION="$node_version" --cmd node
commit "$r" "$run_ref" --env PATH=/nodejs/bin:/usr/bin:/bin --user 65532:65532 --workingdir /home/nonroot \
  --entrypoint '["/nodejs/bin/node"]'
echo "bases: built $build_ref and $run_ref" >&2
echo "BUILD_BASE=$build_ref RUN_BASE=$run_ref"
