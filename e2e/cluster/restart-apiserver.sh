#!/usr/bin/env bash
# Restart kube-apiserver of the running local cluster with the same command line (etcd and its data stay), for
# tests of watch and informer resilience. Usage: restart-apiserver.sh [seconds-down]
#   seconds-down: how long the API server stays down between stop and start (default 0).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=restart-apiserver
cd "$REPO_ROOT"

down_seconds="${1:-0}"
pidfile="$PID_DIR/kube-apiserver.pid"
if ! pid_alive kube-apiserver; then
  log "kube-apiserver is not running; start the cluster with e2e/cluster/up.sh"
  exit 1
fi
# shellcheck disable=SC1090
source "$ENV_FILE"
ADMIN_TOKEN="$(<"$PKI_DIR/admin.token")"
pid="$(<"$pidfile")"
mapfile -d '' cmd <"/proc/$pid/cmdline"

kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
for ((i = 0; i < 200; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -KILL -- "-$pid" 2>/dev/null || true
log "stopped kube-apiserver (pid $pid)"
sleep "$down_seconds"

rm -f "$pidfile"
# shellcheck disable=SC2016
setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "${cmd[@]}" \
  >>"$LOG_DIR/kube-apiserver.log" 2>&1 </dev/null &
ready() {
  [[ "$(curl -fsS --max-time 2 --cacert "$PKI_DIR/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null)" == ok ]]
}
for ((i = 0; i < 240; i++)); do
  if ready; then
    log "kube-apiserver ready again (pid $(<"$pidfile"))"
    exit 0
  fi
  sleep 0.5
done
log "kube-apiserver did not become ready within 120 s"
show_log kube-apiserver
exit 1
