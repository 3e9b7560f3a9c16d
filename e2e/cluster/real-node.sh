#!/usr/bin/env bash
# One real node: run by real-nodes.sh as `unshare -m --propagation private bash real-node.sh <node dir>`, so this
# shell, containerd, the kubelet and every container share one private mount namespace in which the paths the
# kubelet and containerd hard-code (/var/lib/kubelet, /var/log/containers, /var/lib/cni, /run/containerd) and the
# node's host folders (/var/snap → .cluster/nodes/<node>/var/snap) are bind mounts of the node's own folders.
# Starts containerd, imports the images of .cluster/images/, then runs the kubelet; exits when either exits.
set -euo pipefail
dir="$1"
# shellcheck disable=SC1091
source "$dir/node.env"

for bind in "${BINDS[@]}"; do
  mount --bind "${bind#*=}" "${bind%%=*}"
done

containerd --config "$dir/containerd/config.toml" >>"$LOGS/$NODE_NAME-containerd.log" 2>&1 &
containerd_pid=$!
trap 'kill -TERM "$containerd_pid" ${kubelet_pid:+"$kubelet_pid"} 2>/dev/null || true' TERM INT EXIT
for ((i = 0; i < 200; i++)); do
  ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 && break
  kill -0 "$containerd_pid" 2>/dev/null || { echo "containerd exited; see $LOGS/$NODE_NAME-containerd.log"; exit 1; }
  sleep 0.1
done
for image in "${IMAGES[@]}"; do
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$image" >/dev/null
done
echo "containerd ready; images: $(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

"$KUBELET" "${KUBELET_ARGS[@]}" &
kubelet_pid=$!
set +e
wait -n "$containerd_pid" "$kubelet_pid"
status=$?
echo "containerd or kubelet exited with $status"
exit "$status"
