# Real nodes: a kubelet (built from the control plane's Kubernetes version) with its own containerd per node,
# joined to the local control plane next to the stand-in nodes. Sourced by up.sh (real_nodes_up) and down.sh
# (real_nodes_down); uses lib.sh and, for up, up.sh's start and pick_port, and down.sh's stop_pid.
# shellcheck shell=bash
#
#   HPP_REAL_NODES   how many real nodes (default 2, at most 3, 0 for none):
#     hpp-real-plain  taint hpp.test/real-node=true:NoSchedule
#     hpp-real-gpu    taints hpp.test/real-node=true:NoSchedule, dedicated=gpu:NoSchedule
#     hpp-real-db     taints hpp.test/real-node=true:NoSchedule, dedicated=db:NoExecute
#   Every real node carries hpp.test/real-node=true:NoSchedule so that pods of the tests written for the stand-in
#   nodes (and Immediate claims, which go to untainted nodes) never land on it; tests for real nodes tolerate it.
#
# Per node, under .cluster/real/<node>/: containerd (socket, root, state, runc root, netns), kubelet root,
# certificates, CNI configuration. On the host: a bridge with a /24 of its own (the node's InternalIP is the
# bridge's address: the kubelet refuses a loopback node IP) and a cgroupRoot /hpp-<checkout id>-<node> in every
# cgroup v1 hierarchy.

REAL_MOUNTPOINTS=(/var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd /var/snap)
# Host-wide records shared by the real nodes of every checkout on this machine: the sysctls as they were before the
# first kubelet changed them, and the mountpoint folders created for the nodes' bind mounts. Both are restored when
# the last real node on the machine stops.
REAL_SYSCTLS_SAVED="/run/hostpath-provisioner-real-nodes.sysctl"
REAL_CREATED_DIRS="/run/hostpath-provisioner-real-nodes.dirs"
REAL_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)

real_node_count() {
  local n="${HPP_REAL_NODES:-2}"
  [[ "$n" =~ ^[0-3]$ ]] || { log "HPP_REAL_NODES must be 0..3 (got $n)"; exit 1; }
  echo "$n"
}

# The names of the real nodes this cluster runs.
real_node_names() {
  local i count
  count="$(real_node_count)"
  for ((i = 0; i < count; i++)); do echo "${REAL_NODE_NAMES[i]}"; done
}

# Debian packages the real nodes need, installed when missing (as root, like the rest of the harness).
real_nodes_install_tools() {
  local -A package=([containerd]=containerd [runc]=runc [ctr]=containerd [ip]=iproute2 [gcc]=gcc [file]=file
    [unshare]=util-linux [busybox]=busybox-static [openssl]=openssl)
  local need=() tool bb
  for tool in "${!package[@]}"; do command -v "$tool" >/dev/null 2>&1 || need+=("${package[$tool]}"); done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || need+=(containernetworking-plugins)
  bb="$(command -v busybox || true)"
  if [[ -n "$bb" ]] && command -v file >/dev/null && ! file -L "$bb" | grep -q 'statically linked'; then
    need+=(busybox-static)
  fi
  ((${#need[@]})) || return 0
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  log "installing Debian packages for the real nodes: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# pids_matching <substring>: pids of the processes whose command line contains it (this shell excluded).
pids_matching() {
  local f pid cmd
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}" pid="${pid%/cmdline}"
    [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
    cmd="$(tr '\0' ' ' 2>/dev/null <"$f")" || continue
    [[ "$cmd" == *"$1"* ]] && echo "$pid"
  done
  return 0
}

# Pids of the processes that run a real node (real-node.sh), of any checkout on this machine.
real_node_pids() { pids_matching "e2e/cluster/real-node.sh "; }

# Sets REAL_BRIDGE, REAL_SUBNET_PREFIX and REAL_NODE_IP for node number i (0-based) of this checkout. The subnet is
# 10.<200..249>.<i+1>.0/24, the second number derived from the checkout id and moved on while another interface
# (another checkout's bridge) already routes it.
real_node_net() {
  local i="$1" id x tries
  id="$(checkout_id)"
  REAL_BRIDGE="hpp${id}${i}"
  x=$((16#${id:0:4} % 50))
  for ((tries = 0; tries < 50; tries++)); do
    REAL_SUBNET_PREFIX="10.$((200 + (x + tries) % 50)).$((i + 1))"
    ip -4 route show "$REAL_SUBNET_PREFIX.0/24" 2>/dev/null | grep -qv "dev $REAL_BRIDGE " || break
  done
  REAL_NODE_IP="$REAL_SUBNET_PREFIX.1"
}
real_node_cgroup() { echo "hpp-$(checkout_id)-$1"; }

# The taints of a real node as YAML list items for KubeletConfiguration.registerWithTaints.
real_node_taints_yaml() {
  echo '  - {key: hpp.test/real-node, value: "true", effect: NoSchedule}'
  case "$1" in
    hpp-real-gpu) echo '  - {key: dedicated, value: gpu, effect: NoSchedule}' ;;
    hpp-real-db) echo '  - {key: dedicated, value: db, effect: NoExecute}' ;;
  esac
}

# setup_real_node <i> <name>: folders, certificates, configuration, bridge and cgroups of one node.
setup_real_node() {
  local i="$1" name="$2"
  local d="$REAL_DIR/$name" cg h kubelet_port healthz_port pause_image img images=()
  real_node_net "$i"
  cg="$(real_node_cgroup "$name")"
  rm -rf "$d"
  mkdir -p "$d"/{containerd/root,containerd/state,kubelet/root,kubelet/pki,kubelet/volume-plugins,pod-logs} \
    "$d"/{var-log-containers,var-lib-cni,run-containerd,cni/net.d} "$STATE_DIR/nodes/$name/var/snap"
  kubelet_port="$(pick_port)"
  healthz_port="$(pick_port)"

  (
    cd "$d/kubelet/pki"
    umask 077
    ossl() { openssl "$@" 2>/dev/null; }
    # leaf <file> <subject> <extendedKeyUsage> [subjectAltName]
    leaf() {
      ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
      {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"
        [[ -n "${4:-}" ]] && echo "subjectAltName=$4"
      } >"$1.ext"
      ossl x509 -req -in "$1.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" -CAserial ca.srl -CAcreateserial \
        -days 3650 -extfile "$1.ext" -out "$1.crt"
      rm -f "$1.csr" "$1.ext"
    }
    # The Node authorizer and NodeRestriction know a kubelet by this identity.
    leaf client "/O=system:nodes/CN=system:node:$name" clientAuth
    # The API server checks this against its --kubelet-certificate-authority (logs, exec).
    leaf serving "/O=system:nodes/CN=system:node:$name" serverAuth "DNS:$name,IP:$REAL_NODE_IP,IP:127.0.0.1"
    rm -f ca.srl
  )
  cat >"$d/kubelet/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$PKI_DIR/ca.crt"}
users:
- name: "system:node:$name"
  user: {client-certificate: "$d/kubelet/pki/client.crt", client-key: "$d/kubelet/pki/client.key"}
contexts:
- name: node
  context: {cluster: local, user: "system:node:$name"}
current-context: node
EOF
  cat >"$d/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM mounts cgroup v1 controllers; without this the kubelet exits at start.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$cg
address: $REAL_NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
containerRuntimeEndpoint: unix://$d/containerd/containerd.sock
tlsCertFile: $d/kubelet/pki/serving.crt
tlsPrivateKeyFile: $d/kubelet/pki/serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $d/pod-logs
volumePluginDir: $d/kubelet/volume-plugins
# This VM's sysctls differ from the kubelet's defaults; it rewrites three of them (real_nodes_down restores them).
protectKernelDefaults: false
failSwapOn: false
registerWithTaints:
$(real_node_taints_yaml "$name")
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# Imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
nodeStatusUpdateFrequency: 10s
EOF
  pause_image="$(<"$STATE_DIR/images/pause.name")"
  cat >"$d/containerd/config.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$d/containerd/containerd.sock"
[ttrpc]
  address = "$d/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Root here cannot lower oom_score_adj: without this runc fails every sandbox.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$d/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
    max_conf_num = 1
EOF
  cat >"$d/cni/net.d/10-bridge.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$REAL_BRIDGE",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$REAL_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$REAL_SUBNET_PREFIX.0/24", "rangeStart": "$REAL_SUBNET_PREFIX.10"}]]}
    }
  ]
}
EOF
  for img in "$STATE_DIR"/images/*.tar; do images+=("\"$img\""); done
  cat >"$d/node.env" <<EOF
NODE_NAME=$name
LOGS=$LOG_DIR
KUBELET=$(kubelet_bin_dir)/kubelet
CONTAINERD_SOCK=$d/containerd/containerd.sock
IMAGES=(${images[*]})
BINDS=(/var/lib/kubelet=$d/kubelet/root /var/log/containers=$d/var-log-containers /var/lib/cni=$d/var-lib-cni
  /run/containerd=$d/run-containerd /var/snap=$STATE_DIR/nodes/$name/var/snap)
KUBELET_ARGS=(--config $d/kubelet/config.yaml --kubeconfig $d/kubelet/kubeconfig --hostname-override $name
  --node-ip $REAL_NODE_IP --root-dir /var/lib/kubelet --cert-dir $d/kubelet/pki
  --node-labels hpp.test/role=${name#hpp-},hpp.test/real-node=true --v=1)
EOF

  # The bridge exists before the kubelet starts: its address is the node's InternalIP.
  ip link add "$REAL_BRIDGE" type bridge 2>/dev/null || true
  ip addr replace "$REAL_NODE_IP/24" dev "$REAL_BRIDGE"
  ip link set "$REAL_BRIDGE" up
  for h in /sys/fs/cgroup/*/; do
    mountpoint -q "$h" || continue
    mkdir -p "$h$cg"
    if [[ -f "${h}cpuset.cpus" ]]; then
      cat "${h}cpuset.cpus" >"$h$cg/cpuset.cpus"
      cat "${h}cpuset.mems" >"$h$cg/cpuset.mems"
    fi
  done
}

# Starts the real nodes that are not running. Sets REAL_NODES (their names).
real_nodes_up() {
  local i name missing=() s m
  mapfile -t REAL_NODES < <(real_node_names)
  ((${#REAL_NODES[@]})) || return 0
  for name in "${REAL_NODES[@]}"; do pid_alive "real-node-$name" || missing+=("$name"); done
  if ((${#missing[@]} == 0)); then
    log "real nodes already running: ${REAL_NODES[*]}"
    return 0
  fi
  real_nodes_install_tools
  bash "$CLUSTER_SCRIPTS/build-kubelet.sh"
  [[ -f "$STATE_DIR/images/pause.name" ]] || bash "$CLUSTER_SCRIPTS/images.sh"

  # Host-wide state, recorded once for the real nodes of every checkout.
  if [[ ! -f "$REAL_SYSCTLS_SAVED" ]]; then
    for s in "${REAL_SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$REAL_SYSCTLS_SAVED"
  fi
  for m in "${REAL_MOUNTPOINTS[@]}"; do
    [[ -d "$m" ]] && continue
    mkdir -p "$m"
    echo "$m" >>"$REAL_CREATED_DIRS"
  done

  for ((i = 0; i < ${#REAL_NODES[@]}; i++)); do
    name="${REAL_NODES[i]}"
    [[ " ${missing[*]} " == *" $name "* ]] || continue
    real_node_cleanup "$i" "$name"
    setup_real_node "$i" "$name"
    log "starting real node $name (logs .cluster/logs/real-node-$name.log, $name-containerd.log)"
    start "real-node-$name" unshare -m --propagation private bash "$CLUSTER_SCRIPTS/real-node.sh" "$REAL_DIR/$name"
  done
  # A kubelet or containerd that dies at start shows its log here (up.sh then waits for Ready).
  for name in "${missing[@]}"; do
    wait_until 60 "real-node-$name" "real node $name to register" kubectl_ get node "$name"
  done
}

# real_node_cleanup <i> <name>: what one node leaves on the host once its kubelet and containerd are stopped: the
# shims, the containers (whatever is in its cgroups), the cgroups and the bridge. Its folders go with .cluster/.
real_node_cleanup() {
  local i="$1" name="$2"
  local d="$REAL_DIR/$name" cg pids pid h tries
  cg="$(real_node_cgroup "$name")"
  # containerd's shims run in process groups of their own; their command line names the node's containerd socket.
  for pid in $(pids_matching "$d/") $(pids_matching "real-node.sh $d"); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for ((tries = 0; tries < 50; tries++)); do
    pids="$(find /sys/fs/cgroup/*/"$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)"
    [[ -z "$pids" ]] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  for h in /sys/fs/cgroup/*/; do
    [[ -d "$h$cg" ]] || continue
    find "$h$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d "$h$cg" ]] && log "cgroup $h$cg could not be removed"
  done
  real_node_net "$i"
  ip link del "$REAL_BRIDGE" 2>/dev/null || true
  return 0
}

# Stops this checkout's real nodes and removes what they left on the host; the last real node on the machine also
# restores the sysctls and removes the mountpoint folders.
real_nodes_down() {
  local i name stopped=() line m
  for ((i = 0; i < ${#REAL_NODE_NAMES[@]}; i++)); do
    name="${REAL_NODE_NAMES[i]}"
    [[ -d "$REAL_DIR/$name" || -f "$PID_DIR/real-node-$name.pid" ]] || continue
    if pid_alive "real-node-$name"; then
      stop_pid "$(<"$PID_DIR/real-node-$name.pid")"
      stopped+=("$name")
    fi
    rm -f "$PID_DIR/real-node-$name.pid"
    real_node_cleanup "$i" "$name"
  done
  ((${#stopped[@]} == 0)) || log "stopped real nodes ${stopped[*]}"
  [[ -z "$(real_node_pids)" ]] || return 0
  if [[ -f "$REAL_SYSCTLS_SAVED" ]]; then
    while IFS= read -r line; do sysctl -q -w "$line" >/dev/null || log "could not restore $line"; done <"$REAL_SYSCTLS_SAVED"
    log "restored $(tr '\n' ' ' <"$REAL_SYSCTLS_SAVED")"
    rm -f "$REAL_SYSCTLS_SAVED"
  fi
  if [[ -f "$REAL_CREATED_DIRS" ]]; then
    sort -ru "$REAL_CREATED_DIRS" | while IFS= read -r m; do rmdir "$m" 2>/dev/null || true; done
    rm -f "$REAL_CREATED_DIRS"
  fi
  return 0
}
