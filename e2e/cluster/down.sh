#!/usr/bin/env bash
# Stop the local cluster started by up.sh and remove its state (.cluster/ except the bin link).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_SCRIPTS/real-nodes.sh"
LOG_PREFIX=cluster-down

# stop_pid <pid>: TERM the process group (the component and its children), then KILL after 10 s.
stop_pid() {
  local pid="$1" i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# The real nodes first: their kubelets would otherwise report to a control plane that is going away.
real_nodes_down

stopped=()
# Processes started next to the cluster (the demo's provisioner) stop first.
for f in "$PID_DIR"/*.pid; do
  [[ -f "$f" ]] || continue
  c="$(basename "$f" .pid)"
  [[ " ${COMPONENTS[*]} " == *" $c "* ]] && continue
  if pid_alive "$c"; then
    stop_pid "$(<"$f")"
    stopped+=("$c")
  fi
done
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  c="${COMPONENTS[i]}"
  if pid_alive "$c"; then
    stop_pid "$(<"$PID_DIR/$c.pid")"
    stopped+=("$c")
  fi
done
if ((${#stopped[@]})); then log "stopped ${stopped[*]}"; else log "no cluster process running"; fi

# Leftovers (lost pid files): processes running a cached binary with this checkout's .cluster/ in
# their command line. Clusters of other checkouts share the cache and are left alone.
leftovers=()
for exe in /proc/[0-9]*/exe; do
  pid="${exe#/proc/}" pid="${pid%/exe}"
  target="$(readlink "$exe" 2>/dev/null)" || continue
  [[ "$target" == "$CACHE_ROOT"/bin-*/* ]] || continue
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE_DIR/" || continue
  leftovers+=("$pid")
done
if ((${#leftovers[@]})); then
  log "killing leftover processes ${leftovers[*]}"
  for pid in "${leftovers[@]}"; do stop_pid "$pid"; done
fi

# Never delete through a mount: the node agent bind-mounts node folders; unmount anything left below .cluster/.
if [[ -d "$STATE_DIR" ]]; then
  mapfile -t mounts < <(awk -v dir="$STATE_DIR/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for m in "${mounts[@]}"; do
    log "unmounting $m"
    umount -l "$m" 2>/dev/null || true
  done
  if awk -v dir="$STATE_DIR/" 'index($5, dir) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    log "mounts remain below $STATE_DIR; not removing the state"
    exit 1
  fi
  find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf --one-file-system {} +
  log "removed cluster state in .cluster/ (kept .cluster/bin)"
fi
