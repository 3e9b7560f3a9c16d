#!/usr/bin/env bash
# make demo: the provisioner on a real control plane, binding a claim on a tainted node.
# Builds what it needs, brings the cluster up, runs the provisioner, applies a class, a claim and a tolerating pod,
# and tells the story. Leaves everything running; `make demo-stop` stops the provisioner, `make cluster-down` all.
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
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1/7 Control plane (the first run compiles Kubernetes from source: 10–13 minutes on 2 cores)"
bash e2e/cluster/up.sh

say "2/7 Nodes and their taints"
k get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{range .spec.taints[*]}{.key}={.value}:{.effect} {end}{"\n"}{end}' \
  | awk -F'\t' '{ printf "  %-24s %s\n", $1, ($2 == "" ? "(no taints)" : $2) }'

say "3/7 Provisioner (its own process, as ServiceAccount $PROV_NS/hostpath-provisioner; log .cluster/logs/demo-provisioner.log)"
if [[ -f "$PID_DIR/demo-provisioner.pid" ]] && kill -0 "$(<"$PID_DIR/demo-provisioner.pid")" 2>/dev/null; then
  log "already running (pid $(<"$PID_DIR/demo-provisioner.pid"))"
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
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fs "http://127.0.0.1:$PORT/readyz" | sed 's/^/  readyz: /' || { tail -20 "$LOG_DIR/demo-provisioner.log"; exit 1; }
fi

say "4/7 StorageClass microk8s-hostpath, claim $NS/data, and a pod that tolerates dedicated=gpu:NoSchedule on hpp-gpu"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply --server-side --force-conflicts -f manifests/base/storageclass.yaml | sed 's/^/  /'
k -n "$NS" delete pod writer --ignore-not-found --wait=true >/dev/null
k -n "$NS" delete pvc data --ignore-not-found --wait=true >/dev/null
k -n "$PROV_NS" get pods -l app.kubernetes.io/managed-by=hostpath-provisioner --watch --output-watch-events \
  -o jsonpath='{.object.metadata.name} {.object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]} {.object.spec.tolerations}{"\n"}' \
  >"$STATE_DIR/demo-helpers.txt" 2>/dev/null &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true' EXIT
k -n "$NS" apply -f - <<'YAML' | sed 's/^/  /'
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
    kubernetes.io/hostname: hpp-gpu
  tolerations:
    - { key: dedicated, operator: Equal, value: gpu, effect: NoSchedule }
  restartPolicy: Never
  containers:
    - name: writer
      image: busybox:1.37.0
      command: [sh, -c, 'echo "written by pod demo/writer on node $NODE_NAME at $(date)" > /data/hello.txt']
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
HELPER="$(grep -m1 "hostpath-create-$PV" "$STATE_DIR/demo-helpers.txt" || true)"
echo "  helper pod:   $(echo "$HELPER" | awk '{print $1, "on node", $2}')"
echo "  tolerations:  $(echo "$HELPER" | cut -d' ' -f3- | node -e '
  const ts = JSON.parse(require("fs").readFileSync(0, "utf8") || "[]");
  console.log(ts.map((t) => `${t.key}${t.value ? "=" + t.value : ""}:${t.effect}${t.tolerationSeconds ? ` (${t.tolerationSeconds}s, added by the API server)` : ""}`).join(", "));
')"
echo "  claim:        $NS/data $(k -n "$NS" get pvc data -o jsonpath='{.status.phase}') to $PV"
echo "  volume:       $(k get pv "$PV" -o jsonpath='hostPath {.spec.hostPath.path}, node affinity {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].key} In {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values}, reclaim {.spec.persistentVolumeReclaimPolicy}')"
DIR="$(k get pv "$PV" -o jsonpath='{.spec.hostPath.path}')"
FILE=".cluster/nodes/hpp-gpu$DIR/hello.txt"
echo "  file:         $FILE"
echo "                $(cat "$FILE")"
echo "  events:"
k -n "$NS" get events --field-selector involvedObject.name=data -o custom-columns='TYPE:.type,REASON:.reason,MESSAGE:.message' | sed 's/^/    /'

say "6/7 Provisioning latency in Prometheus format (http://127.0.0.1:$PORT/metrics)"
curl -fs "http://127.0.0.1:$PORT/metrics" \
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
echo "  make cluster-down                         # stop everything"
