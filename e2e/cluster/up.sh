#!/usr/bin/env bash
# Start a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) on 127.0.0.1, then the node agent if it is built. State lives in .cluster/.
# Idempotent: a healthy running cluster is left alone. Stop it with e2e/cluster/down.sh.
#
# Environment:
#   NODE_AGENT_CMD   command that starts the node agent (default: node dist/e2e/node-agent/main.js ...)
#   NODES_FILE       node list for the node agent (default e2e/node-agent/nodes.yaml)
#   NODE             node binary for the default node agent command
#   HPP_CACHE_DIR    binary cache (default ~/.cache/hostpath-provisioner)
#   HPP_REAL_NODES   how many real kubelet nodes to start next to the stand-ins (default 2; see real-nodes.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_SCRIPTS/real-nodes.sh"
LOG_PREFIX=cluster-up
cd "$REPO_ROOT"

NODES_FILE="${NODES_FILE:-e2e/node-agent/nodes.yaml}"
NODE_AGENT_JS="dist/e2e/node-agent/main.js"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1"

# ---------------------------------------------------------------- helpers
kubectl_() { "$STATE_DIR/bin/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# wait_until <seconds> <component-for-log> <description> <command...>
wait_until() {
  local timeout="$1" component="$2" what="$3"
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$component" ]] && ! pid_alive "$component"; then
      log "$component exited while waiting for $what"
      show_log "$component"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      [[ -n "$component" ]] && show_log "$component"
      log "the processes are left running for inspection; stop them with e2e/cluster/down.sh"
      exit 1
    fi
    sleep 0.5
  done
}

port_in_use() {
  if command -v ss >/dev/null; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# pick_port [preferred]: a free TCP port on loopback, the preferred one if it is free.
TAKEN_PORTS=" "
pick_port() {
  local p="${1:-}" tries=0
  if [[ -n "$p" && "$TAKEN_PORTS" != *" $p "* ]] && ! port_in_use "$p"; then
    TAKEN_PORTS+="$p "
    echo "$p"
    return
  fi
  while ((tries++ < 200)); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range used for outgoing connections
    if [[ "$TAKEN_PORTS" != *" $p "* ]] && ! port_in_use "$p"; then
      TAKEN_PORTS+="$p "
      echo "$p"
      return
    fi
  done
  log "no free port found"
  exit 1
}

# start <component> <command...>: run in its own session (process group = pid), log and pid files.
start() {
  local name="$1"
  shift
  local pidfile="$PID_DIR/$name.pid" i
  rm -f "$pidfile"
  # The pid is written from inside the new session: setsid may fork, so $! is not reliable.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    >"$LOG_DIR/$name.log" 2>&1 </dev/null &
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.05
  done
  log "$name did not start"
  show_log "$name"
  exit 1
}

# start_supervised <component> <command...>: like start, but the command is started again when it exits (as the
# kubelet restarts static control-plane pods; kube-scheduler exits on purpose when its cache turns out inconsistent,
# e.g. after an API server restart). The pid file names the supervising shell; down.sh stops its whole group.
start_supervised() {
  local name="$1"
  shift
  # shellcheck disable=SC2016
  start "$name" bash -c 'while :; do "$@"; echo "'"$name"' exited with $?; restarting in 1 s"; sleep 1; done' "$name" "$@"
}

http_ok() { [[ "$(curl -fsS --max-time 2 "$@" 2>/dev/null)" == ok ]]; }
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
apiserver_ready() { http_ok --cacert "$PKI_DIR/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$APISERVER_PORT/readyz"; }
component_healthy() { http_ok -k "https://127.0.0.1:$1/healthz"; }

control_plane_healthy() {
  [[ -f "$ENV_FILE" ]] || return 1
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  [[ -f "$PKI_DIR/admin.token" ]] || return 1
  ADMIN_TOKEN="$(<"$PKI_DIR/admin.token")"
  local c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do pid_alive "$c" || return 1; done
  etcd_healthy && apiserver_ready && component_healthy "$KCM_PORT" && component_healthy "$SCHEDULER_PORT"
}

# Node names from the nodes file: the `name:` keys with the smallest indentation.
node_names() {
  [[ -f "$NODES_FILE" ]] || return 0
  awk '
    /^[[:space:]]*(-[[:space:]]+)?name:[[:space:]]*[^[:space:]]/ {
      line = $0; sub(/#.*/, "", line)
      match(line, /^[[:space:]-]*/); indent = RLENGTH
      sub(/^[[:space:]-]*name:[[:space:]]*/, "", line); gsub(/["'\''[:space:]]/, "", line)
      if (line == "") next
      if (min == "" || indent < min) { min = indent; n = 0 }
      if (indent == min) names[n++] = line
    }
    END { for (i = 0; i < n; i++) print names[i] }' "$NODES_FILE"
}

# The node binary for the default node agent command: $NODE, a `node` >= 22.19 on PATH,
# or the pinned one the Makefile installs into .tools/.
resolve_node() {
  if [[ -n "${NODE:-}" ]]; then echo "$NODE"; return; fi
  if command -v node >/dev/null &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null; then
    echo node
    return
  fi
  local n
  for n in "$REPO_ROOT"/.tools/node-*/node_modules/node-linux-*/bin/node; do
    [[ -x "$n" ]] && { echo "$n"; return; }
  done
  echo node
}

# ---------------------------------------------------------------- binaries
bash "$CLUSTER_SCRIPTS/build.sh"
BIN="$(cluster_bin_dir)"

# ---------------------------------------------------------------- control plane
if control_plane_healthy; then
  log "control plane already up and healthy (https://127.0.0.1:$APISERVER_PORT)"
else
  if [[ -f "$ENV_FILE" || -d "$PID_DIR" ]]; then
    log "found a stopped or unhealthy cluster; cleaning it up first"
    bash "$CLUSTER_SCRIPTS/down.sh" >/dev/null
  fi
  mkdir -p "$PKI_DIR" "$LOG_DIR" "$PID_DIR" "$STATE_DIR/nodes"

  ETCD_PORT="$(pick_port)"
  ETCD_PEER_PORT="$(pick_port)"
  APISERVER_PORT="$(pick_port 6443)"
  # The default ports make the deprecated `kubectl get componentstatuses` meaningful.
  KCM_PORT="$(pick_port 10257)"
  SCHEDULER_PORT="$(pick_port 10259)"

  log "generating certificates, service-account keys and tokens in .cluster/pki/"
  (
    cd "$PKI_DIR"
    umask 077
    ossl() { openssl "$@" 2>/dev/null; }
    ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=hostpath-provisioner-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
    # leaf <name> <subject> <extendedKeyUsage> [subjectAltName]
    leaf() {
      ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
      {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"
        [[ -n "${4:-}" ]] && echo "subjectAltName=$4"
      } >"$1.ext"
      ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt"
      rm -f "$1.csr" "$1.ext"
    }
    leaf apiserver "/CN=kube-apiserver" serverAuth \
      "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP"
    # Served by the node agent (it plays the kubelet); the API server verifies it against ca.crt.
    leaf kubelet "/CN=hostpath-provisioner-node-agent" serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1"
    # The API server's client certificate towards kubelets (pods/log, exec, nodes/proxy).
    leaf kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    # Aggregation layer (request-header authentication); controllers and the scheduler read it.
    leaf front-proxy-client "/CN=front-proxy-client" clientAuth
    ossl genrsa -out sa.key 2048
    ossl rsa -in sa.key -pubout -out sa.pub
    rm -f ca.srl
    for who in admin kube-controller-manager kube-scheduler; do
      ossl rand -hex 24 >"$who.token"
    done
    {
      echo "$(<admin.token),admin,admin,system:masters"
      echo "$(<kube-controller-manager.token),system:kube-controller-manager,system:kube-controller-manager"
      echo "$(<kube-scheduler.token),system:kube-scheduler,system:kube-scheduler"
    } >tokens.csv
    chmod 0644 ca.crt apiserver.crt kubelet.crt kubelet-client.crt front-proxy-client.crt sa.pub
  )
  ADMIN_TOKEN="$(<"$PKI_DIR/admin.token")"

  write_kubeconfig() { # <file> <user> <token>
    local ca
    ca="$(base64 -w0 <"$PKI_DIR/ca.crt")"
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hostpath-provisioner-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@hostpath-provisioner-test
  context:
    cluster: hostpath-provisioner-test
    user: $2
    namespace: default
current-context: $2@hostpath-provisioner-test
EOF
    chmod 0600 "$1"
  }
  write_kubeconfig "$KUBECONFIG_FILE" admin "$ADMIN_TOKEN"
  write_kubeconfig "$PKI_DIR/kube-controller-manager.kubeconfig" system:kube-controller-manager "$(<"$PKI_DIR/kube-controller-manager.token")"
  write_kubeconfig "$PKI_DIR/kube-scheduler.kubeconfig" system:kube-scheduler "$(<"$PKI_DIR/kube-scheduler.token")"

  cat >"$ENV_FILE" <<EOF
# Written by e2e/cluster/up.sh; sourced by the cluster scripts.
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
KUBECONFIG_FILE=$KUBECONFIG_FILE
BIN_DIR=$BIN
EOF

  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start etcd "$BIN/etcd" --name default --data-dir "$STATE_DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_until 60 etcd "etcd /health" etcd_healthy

  # Audit log of the requests of ServiceAccounts outside kube-system (the provisioners under test; controllers
  # use kube-system accounts), one line per request at Metadata level: the benchmark counts API requests per claim
  # by verb and resource from it (BENCHMARKS.md).
  cat >"$STATE_DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
EOF

  log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
    --client-ca-file "$PKI_DIR/ca.crt" \
    --token-auth-file "$PKI_DIR/tokens.csv" \
    --authorization-mode Node,RBAC \
    --allow-privileged=true \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI_DIR/sa.pub" \
    --service-account-signing-key-file "$PKI_DIR/sa.key" \
    --kubelet-certificate-authority "$PKI_DIR/ca.crt" \
    --kubelet-client-certificate "$PKI_DIR/kubelet-client.crt" \
    --kubelet-client-key "$PKI_DIR/kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname,ExternalIP \
    --requestheader-client-ca-file "$PKI_DIR/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI_DIR/front-proxy-client.crt" --proxy-client-key-file "$PKI_DIR/front-proxy-client.key" \
    --audit-policy-file "$STATE_DIR/audit-policy.yaml" --audit-log-path "$LOG_DIR/audit.log" \
    --audit-log-format json --audit-log-maxsize 500 --audit-log-maxbackup 1 \
    --profiling=false
  wait_until 120 kube-apiserver "kube-apiserver /readyz" apiserver_ready

  log "starting kube-controller-manager (:$KCM_PORT) and kube-scheduler (:$SCHEDULER_PORT)"
  KCM_KC="$PKI_DIR/kube-controller-manager.kubeconfig"
  start_supervised kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$KCM_KC" --authentication-kubeconfig "$KCM_KC" --authorization-kubeconfig "$KCM_KC" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --controllers '*' --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI_DIR/sa.key" \
    --root-ca-file "$PKI_DIR/ca.crt" \
    --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
    --node-monitor-period 2s --node-monitor-grace-period 40s \
    --flex-volume-plugin-dir "$STATE_DIR/flexvolume" \
    --profiling=false
  SCHED_KC="$PKI_DIR/kube-scheduler.kubeconfig"
  start_supervised kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$SCHED_KC" --authentication-kubeconfig "$SCHED_KC" --authorization-kubeconfig "$SCHED_KC" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --leader-elect=false --profiling=false
  wait_until 60 kube-controller-manager "kube-controller-manager /healthz" component_healthy "$KCM_PORT"
  wait_until 60 kube-scheduler "kube-scheduler /healthz" component_healthy "$SCHEDULER_PORT"
  # The service-account controller works (pods need the `default` ServiceAccount of their namespace).
  wait_until 60 kube-controller-manager "the default ServiceAccount" kubectl_ get serviceaccount default -n default
  log "control plane ready: https://127.0.0.1:$APISERVER_PORT, kubeconfig .cluster/kubeconfig"
fi

# ---------------------------------------------------------------- real nodes
real_nodes_up

# ---------------------------------------------------------------- node agent
if pid_alive node-agent; then
  log "node agent already running (pid $(<"$PID_DIR/node-agent.pid"))"
elif [[ -n "${NODE_AGENT_CMD:-}" || -f "$NODE_AGENT_JS" ]]; then
  if [[ -n "${NODE_AGENT_CMD:-}" ]]; then
    log "starting node agent: $NODE_AGENT_CMD"
    start node-agent bash -c "$NODE_AGENT_CMD"
  else
    node_bin="$(resolve_node)"
    log "starting node agent for $NODES_FILE (log .cluster/logs/node-agent.log)"
    start node-agent "$node_bin" "$NODE_AGENT_JS" --kubeconfig .cluster/kubeconfig \
      --nodes "$NODES_FILE" --root .cluster/nodes
  fi
else
  log "no node agent built ($NODE_AGENT_JS missing): no stand-in nodes"
  ((${#REAL_NODES[@]})) || exit 0
  NODES_FILE=/dev/null
fi

# ---------------------------------------------------------------- nodes Ready
mapfile -t names < <(node_names)
names+=("${REAL_NODES[@]}")
nodes_exist() {
  if ((${#names[@]})); then
    kubectl_ get node "${names[@]}"
  else
    [[ -n "$(kubectl_ get nodes -o name)" ]]
  fi
}
no_not_ready_taint() {
  local taints
  taints="$(kubectl_ get nodes -o jsonpath='{range .items[*]}{.spec.taints[*].key}{"\n"}{end}')" || return 1
  [[ "$taints" != *node.kubernetes.io/not-ready* ]]
}
all_ready() {
  local not_ready
  not_ready="$(kubectl_ get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -v '=True$' || true)"
  [[ -z "$not_ready" ]] && no_not_ready_taint
}
wait_component=node-agent
pid_alive node-agent || wait_component=""
wait_until 60 "$wait_component" "nodes ${names[*]:-(any)} to register" nodes_exist
wait_until 90 "$wait_component" "nodes to be Ready without the not-ready taint" all_ready
log "nodes Ready: $(kubectl_ get nodes -o jsonpath='{.items[*].metadata.name}')"
