#!/usr/bin/env bash
# A playable 3-node stateful gridcap cluster on loopback, behind HAProxy.
#
#   deploy/local/cluster-stateful.sh        (or: make cluster-stateful)
#
# Starts nodes a, b and c (`gridcap serve --mode stateful`) and HAProxy with
# deploy/haproxy/haproxy.cfg, prints the URL to open, and stops everything on
# Ctrl-C or when HAProxy exits. Logs go to target/cluster-stateful/.
#
# Environment:
#   GRIDCAP_BIN      the binary (default: target/release/gridcap)
#   PORT             HAProxy's port for players (default 8080, or a free one)
#   GRIDCAP_WEB_ROOT the built browser client (default: web-client/dist)
#   any other GRIDCAP_* setting of `gridcap serve` reaches every node, e.g.
#   GRIDCAP_DRAIN_TIMEOUT_MS=5000 for quicker drains.
set -euo pipefail

# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
launcher_init cluster-stateful

pids=()
cleanup() {
  trap - EXIT INT TERM
  if ((${#pids[@]})); then
    echo
    echo "cluster-stateful: stopping (SIGTERM: the nodes drain their games first)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "cluster-stateful: stopped; logs in $logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$logs"
ids=(a b c)
declare -A port admin
peers=""
for id in "${ids[@]}"; do
  free_port 9001
  port[$id]=$REPLY
  # Its admin listener (/metrics, /api/node, /admin): what peers probe.
  free_port 9091
  admin[$id]=$REPLY
  peers+="${peers:+,}$id=127.0.0.1:${port[$id]}@127.0.0.1:${admin[$id]}"
done
free_port "${PORT:-8080}"
lb_port=$REPLY
free_port 8404
stats_port=$REPLY

names=()
for id in "${ids[@]}"; do
  "$bin" serve --mode stateful --node-id "$id" --peers "$peers" \
    --listen "127.0.0.1:${port[$id]}" --admin-listen "127.0.0.1:${admin[$id]}" \
    >"$logs/node-$id.log" 2>&1 &
  pids+=("$!")
  names+=("node-$id")
done

GRIDCAP_LB_BIND=127.0.0.1:$lb_port \
  GRIDCAP_LB_STATS=127.0.0.1:$stats_port \
  GRIDCAP_NODE_A=127.0.0.1:${port[a]} \
  GRIDCAP_NODE_B=127.0.0.1:${port[b]} \
  GRIDCAP_NODE_C=127.0.0.1:${port[c]} \
  "$haproxy" -db -f "$root/deploy/haproxy/haproxy.cfg" >"$logs/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")
names+=(haproxy)

# Ready when every node and HAProxy answer /readyz with 200 (10 s at most).
wait_ready "${port[@]}" "$lb_port"

cat <<MSG

  gridcap stateful cluster is up. Open:  http://127.0.0.1:$lb_port/

  nodes:   a http://127.0.0.1:${port[a]}  admin http://127.0.0.1:${admin[a]}/admin  (pid ${pids[0]})
           b http://127.0.0.1:${port[b]}  admin http://127.0.0.1:${admin[b]}/admin  (pid ${pids[1]})
           c http://127.0.0.1:${port[c]}  admin http://127.0.0.1:${admin[c]}/admin  (pid ${pids[2]})
  cluster: curl http://127.0.0.1:${admin[a]}/api/cluster
  HAProxy: http://127.0.0.1:$stats_port/ (its view of the nodes)
  logs:    $logs/
  try:     kill -TERM ${pids[1]}   (drain node b)   kill -9 ${pids[2]}   (lose node c)

  Ctrl-C stops everything.
MSG

# Until HAProxy exits or Ctrl-C (a trapped signal interrupts `wait`).
wait "$haproxy_pid" || true
echo "cluster-stateful: HAProxy exited; see $logs/haproxy.log" >&2
