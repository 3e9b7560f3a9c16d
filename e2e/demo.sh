#!/usr/bin/env bash
# make demo: the provisioner on a real control plane, binding a claim on a tainted node.
# Builds what it needs, brings the cluster up, runs the provisioner, applies a class, a claim and a tolerating pod,
# and tells the story. Leaves everything running; `make cluster-down` stops it all.
#
#   DEMO_PROVISIONER=pod   (default) the provisioner as users install it: the image built from the Dockerfile, a
#                          Deployment of manifests/base started by the real kubelets; the claim binds on the tainted
#                          real node hpp-real-gpu.
#   DEMO_PROVISIONER=host  faster: the provisioner as a process on this machine (as manifests/base's ServiceAccount);
#                          the claim binds on the tainted stand-in node hpp-gpu.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=cluster/lib.sh
source e2e/cluster/lib.sh
LOG_PREFIX=demo

K="$STATE_DIR/bin/kubectl --kubeconfig $KUBECONFIG_FILE"
k() { $K "$@"; }
NS=demo
PROV_NS=hostpath-provisioner
PORT="${DEMO_METRICS_PORT:-9090}"
MODE="${DEMO_PROVISIONER:-pod}"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
case "$MODE" in
  pod)
    NODE=hpp-real-gpu
    TOLERATIONS='[{ key: hpp.test/real-node, operator: Exists, effect: NoSchedule }, { key: dedicated, operator: Equal, value: gpu, effect: NoSchedule }]'
    ;;
  host)
    NODE=hpp-gpu
    TOLERATIONS='[{ key: dedicated, operator: Equal, value: gpu, effect: NoSchedule }]'
    ;;
  *)
    echo "demo: DEMO_PROVISIONER must be pod or host (got $MODE)" >&2
    exit 2
    ;;
esac
[[ "$MODE" != pod || "${HPP_REAL_NODES:-2}" != 0 ]] || {
  echo "demo: DEMO_PROVISIONER=pod needs the real nodes; unset HPP_REAL_NODES or use DEMO_PROVISIONER=host" >&2
  exit 2
}
HOST_PID_FILE="$PID_DIR/demo-provisioner.pid"
host_provisioner_running() { [[ -f "$HOST_PID_FILE" ]] && kill -0 "$(<"$HOST_PID_FILE")" 2>/dev/null; }

say "1/7 Control plane and nodes (the first run compiles Kubernetes from source: 10–13 minutes on 2 cores)"
bash e2e/cluster/up.sh

say "2/7 Nodes and their taints"
k get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{range .spec.taints[*]}{.key}={.value}:{.effect} {end}{"\n"}{end}' \
  | awk -F'\t' '{ printf "  %-24s %s\n", $1, ($2 == "" ? "(no taints)" : $2) }'

if [[ "$MODE" == pod ]]; then
  say "3/7 Provisioner: the image built from the Dockerfile, a Deployment of manifests/base started by the real kubelets (the first build takes a few minutes; log .cluster/logs/demo-image.log)"
  if host_provisioner_running; then
    kill "$(<"$HOST_PID_FILE")" && log "stopped the host-process provisioner of an earlier DEMO_PROVISIONER=host run"
  fi
  rm -f "$HOST_PID_FILE"
  if ! bash e2e/image/deploy.sh manifests/base "$PROV_NS" >"$STATE_DIR/demo-deployment" 2>"$LOG_DIR/demo-image.log"; then
    tail -30 "$LOG_DIR/demo-image.log" >&2
    exit 1
  fi
  k -n "$PROV_NS" get pods -l app.kubernetes.io/name=hostpath-provisioner \
    -o custom-columns='  POD:.metadata.name,NODE:.spec.nodeName,READY:.status.containerStatuses[0].ready,IMAGE:.status.containerStatuses[0].image'
  LEADER=""
  for _ in $(seq 1 60); do
    HOLDER="$(k -n "$PROV_NS" get lease microk8s.io-hostpath -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)"
    LEADER="$(k -n "$PROV_NS" get pods -l app.kubernetes.io/name=hostpath-provisioner --field-selector status.phase=Running \
      -o jsonpath="{range .items[?(@.spec.nodeName==\"${HOLDER%%_*}\")]}{.metadata.name}{end}" 2>/dev/null || true)"
    [[ -n "$HOLDER" && -n "$LEADER" ]] && break
    sleep 1
  done
  [[ -n "$LEADER" ]] || { echo "demo: no replica took the Lease $PROV_NS/microk8s.io-hostpath" >&2; exit 1; }
  metrics() { k get --raw "/api/v1/namespaces/$PROV_NS/pods/http:$LEADER:9090/proxy/metrics"; }
  METRICS_WHERE="pod $PROV_NS/$LEADER, the leader, through the API server's pod proxy"
  echo "  leader: $LEADER (Lease $PROV_NS/microk8s.io-hostpath); readyz: $(k get --raw "/api/v1/namespaces/$PROV_NS/pods/http:$LEADER:9090/proxy/readyz")"
else
  say "3/7 Provisioner (its own process, as ServiceAccount $PROV_NS/hostpath-provisioner; log .cluster/logs/demo-provisioner.log)"
  if [[ -s "$STATE_DIR/demo-deployment" ]]; then
    k -n "$PROV_NS" delete deployment hostpath-provisioner --ignore-not-found --cascade=foreground --wait=true --timeout=90s >/dev/null
    log "deleted the provisioner Deployment of an earlier DEMO_PROVISIONER=pod run"
    rm -f "$STATE_DIR/demo-deployment"
  fi
  if host_provisioner_running; then
    log "already running (pid $(<"$HOST_PID_FILE"))"
  else
    # The namespace, ServiceAccount and RBAC of manifests/base; the provisioner runs with that ServiceAccount's token.
    k kustomize manifests/base \
      | node -e '
        const docs = require("fs").readFileSync(0, "utf8").split(/^---$/m);
        const kinds = /^kind: (Namespace|ServiceAccount|ClusterRole|ClusterRoleBinding|Role|RoleBinding)$/m;
        process.stdout.write(docs.filter((d) => kinds.test(d)).join("---"));
      ' \
      | k apply --server-side --force-conflicts -f - >/dev/null
    PROV_KUBECONFIG="$STATE_DIR/demo-provisioner.kubeconfig"
    cp "$KUBECONFIG_FILE" "$PROV_KUBECONFIG"
    $STATE_DIR/bin/kubectl --kubeconfig "$PROV_KUBECONFIG" config set-credentials demo-provisioner \
      --token="$(k -n "$PROV_NS" create token hostpath-provisioner --duration=24h)" >/dev/null
    $STATE_DIR/bin/kubectl --kubeconfig "$PROV_KUBECONFIG" config set-context --current --user=demo-provisioner >/dev/null
    LOG_FORMAT=pretty setsid node dist/src/cli/main.js run --kubeconfig "$PROV_KUBECONFIG" --namespace "$PROV_NS" \
      --node-name hpp-plain --metrics-address "127.0.0.1:$PORT" >"$LOG_DIR/demo-provisioner.log" 2>&1 &
    echo $! >"$PID_DIR/demo-provisioner.pid"
    # Ready first as a standby; leader once the Lease is free (at once, or when a replaced leader's lease expires).
    for _ in $(seq 1 80); do
      curl -fs "http://127.0.0.1:$PORT/readyz" 2>/dev/null | grep -q leader && break
      sleep 0.5
    done
    curl -fs "http://127.0.0.1:$PORT/readyz" | sed 's/^/  readyz: /' || { tail -20 "$LOG_DIR/demo-provisioner.log"; exit 1; }
  fi
  metrics() { curl -fs "http://127.0.0.1:$PORT/metrics"; }
  METRICS_WHERE="http://127.0.0.1:$PORT/metrics"
fi

say "4/7 StorageClass microk8s-hostpath, claim $NS/data, and a pod that tolerates dedicated=gpu:NoSchedule on $NODE"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply --server-side --force-conflicts -f manifests/base/storageclass.yaml | sed 's/^/  /'
k -n "$NS" delete pod writer --ignore-not-found --wait=true >/dev/null
k -n "$NS" delete pvc data --ignore-not-found --wait=true >/dev/null
# kubectl itself in the background (not through the function k), so that $! is its pid and the trap stops it.
$K -n "$PROV_NS" get pods -l app.kubernetes.io/managed-by=hostpath-provisioner --watch --output-watch-events \
  -o jsonpath='{.object.metadata.name} {.object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]} {.object.spec.tolerations}{"\n"}' \
  >"$STATE_DIR/demo-helpers.txt" 2>/dev/null &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true' EXIT
k -n "$NS" apply -f - <<YAML | sed 's/^/  /'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  storageClassName: microk8s-hostpath
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  nodeSelector:
    kubernetes.io/hostname: $NODE
  tolerations: $TOLERATIONS
  restartPolicy: Never
  containers:
    - name: writer
      image: busybox:1.37.0
      command: [sh, -c, 'echo "written by pod demo/writer on node \$NODE_NAME at \$(date)" > /data/hello.txt']
      env:
        - name: NODE_NAME
          valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
      volumeMounts:
        - { name: data, mountPath: /data }
  volumes:
    - name: data
      persistentVolumeClaim:
        claimName: data
YAML
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=90s >/dev/null
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/writer --timeout=60s >/dev/null

say "5/7 What happened"
PV="$(k -n "$NS" get pvc data -o jsonpath='{.spec.volumeName}')"
HELPER="$(grep -a -m1 "hostpath-create-$PV" "$STATE_DIR/demo-helpers.txt" || true)"
echo "  helper pod:   $(echo "$HELPER" | awk '{print $1, "on node", $2}')"
echo "  tolerations:  $(echo "$HELPER" | cut -d' ' -f3- | node -e '
  const ts = JSON.parse(require("fs").readFileSync(0, "utf8") || "[]");
  console.log(ts.map((t) => `${t.key}${t.value ? "=" + t.value : ""}:${t.effect}${t.tolerationSeconds ? ` (${t.tolerationSeconds}s, added by the API server)` : ""}`).join(", "));
')"
echo "  claim:        $NS/data $(k -n "$NS" get pvc data -o jsonpath='{.status.phase}') to $PV"
echo "  volume:       $(k get pv "$PV" -o jsonpath='hostPath {.spec.hostPath.path}, node affinity {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].key} In {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values}, reclaim {.spec.persistentVolumeReclaimPolicy}')"
DIR="$(k get pv "$PV" -o jsonpath='{.spec.hostPath.path}')"
FILE=".cluster/nodes/$NODE$DIR/hello.txt"
echo "  file:         $FILE"
echo "                $(cat "$FILE")"
echo "  events:"
k -n "$NS" get events --field-selector "involvedObject.uid=$(k -n "$NS" get pvc data -o jsonpath='{.metadata.uid}')" -o custom-columns='TYPE:.type,REASON:.reason,MESSAGE:.message' | sed 's/^/    /'

say "6/7 Provisioning latency in Prometheus format ($METRICS_WHERE)"
metrics \
  | grep -E '^(controller_persistentvolumeclaim_provision_total|hostpath_provisioner_provision_latency_seconds_(sum|count)|hostpath_provisioner_helper_pods_total)' \
  | sed 's/^/  /'

say "7/7 hostpath-provisioner doctor --namespace $NS (read-only; exit 0: healthy)"
set +e
node dist/src/cli/main.js doctor --kubeconfig "$KUBECONFIG_FILE" --provisioner-namespace "$PROV_NS" --namespace "$NS" \
  | sed 's/^/  /'
DOCTOR=${PIPESTATUS[0]}
set -e
[[ $DOCTOR -le 1 ]] || { echo "demo: doctor could not look at the cluster (exit $DOCTOR)" >&2; exit 1; }

say "The cluster and the provisioner keep running."
echo "  export KUBECONFIG=$KUBECONFIG_FILE"
echo "  .cluster/bin/kubectl get pvc,pv -A        # look around"
echo "  .cluster/bin/kubectl -n $NS describe pvc data"
[[ "$MODE" != pod ]] || echo "  .cluster/bin/kubectl -n $PROV_NS logs $LEADER   # the leader's log"
echo "  make cluster-down                         # stop everything"
