#!/usr/bin/env bash
# Run the provisioner as users install it, on the harness's real nodes: the image built from the Dockerfile, started by
# the real kubelets from `kubectl apply -k` of one of our kustomizations.
#
#   e2e/image/deploy.sh <kustomization> <namespace>
#
#   <kustomization>  manifests/base or manifests/overlays/microk8s (any kustomization with our Deployment)
#   <namespace>      where that kustomization puts the Deployment (for the rollout wait)
#
# Builds the image and imports it into the containerd of every running real node (import.sh), writes .cluster/deploy-<name of the kustomization>/kustomization.yaml, applies
# it and waits for the rollout. That overlay changes only what this harness needs and a user does not: the API server
# listens on 127.0.0.1 of this machine, so the pods use the host network, find the API server at 127.0.0.1 and serve
# their metrics and probes on the node's address; and they are placed on the real nodes (node selector, tolerations
# of the real nodes' taints). Prints the overlay's folder on the last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../cluster/lib.sh
source "$here/../cluster/lib.sh"
LOG_PREFIX=deploy
cd "$REPO_ROOT"

kustomization="${1:?usage: deploy.sh <kustomization> <namespace>}"
namespace="${2:?usage: deploy.sh <kustomization> <namespace>}"
[[ -f "$kustomization/kustomization.yaml" ]] || { log "no kustomization.yaml in $kustomization" >&2; exit 1; }
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)"
kubectl_() { "$STATE_DIR/bin/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
apiserver_port="$(sed -n 's/^APISERVER_PORT=//p' "$ENV_FILE")"
[[ -n "$apiserver_port" ]] || { log "the cluster is not up (no APISERVER_PORT in .cluster/cluster.env)" >&2; exit 1; }

bash "$here/import.sh" >&2

overlay="$STATE_DIR/deploy-$(basename "$kustomization")"
mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$overlay" "$kustomization")
images:
  - name: hostpath-provisioner
    newTag: "$version"
patches:
  - target: { kind: Deployment, name: hostpath-provisioner }
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: hostpath-provisioner
      spec:
        template:
          spec:
            hostNetwork: true
            dnsPolicy: ClusterFirstWithHostNet
            nodeSelector:
              hpp.test/real-node: "true"
            tolerations:
              - { key: hpp.test/real-node, operator: Exists, effect: NoSchedule }
              - { key: dedicated, operator: Exists, effect: NoSchedule }
            containers:
              - name: hostpath-provisioner
                env:
                  - { name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1 }
                  - { name: KUBERNETES_SERVICE_PORT, value: "$apiserver_port" }
                  - name: POD_IP
                    valueFrom: { fieldRef: { fieldPath: status.podIP } }
                  - { name: METRICS_ADDRESS, value: "\$(POD_IP):9090" }
YAML
kubectl_ apply -k "$overlay" >&2
kubectl_ -n "$namespace" rollout status deployment/hostpath-provisioner --timeout=180s >&2
echo "$overlay"
