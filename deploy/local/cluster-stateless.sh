#!/usr/bin/env bash
# A playable 2-node stateless gridcap cluster on loopback: Redis, two nodes
# and HAProxy.
#
#   deploy/local/cluster-stateless.sh       (or: make cluster-stateless)
#
# Starts redis-server, nodes a and b (`gridcap serve --mode stateless`) and
# HAProxy with deploy/haproxy/haproxy.cfg (its node c left out), prints the
# URL to open, and stops everything on Ctrl-C or when HAProxy exits. Every
# game lives in Redis: kill -9 a node and its players resume on the other.
# Logs (and Redis's append-only file) go to target/cluster-stateless/.
#
# Environment:
#   GRIDCAP_BIN      the binary (default: target/release/gridcap)
#   PORT             HAProxy's port for players (default 8080, or a free one)
#   GRIDCAP_WEB_ROOT the built browser client (default: web-client/dist)
#   REDIS_SERVER     the redis-server binary (default: from PATH)
#   any other GRIDCAP_* setting of `gridcap serve` reaches every node.
set -euo pipefail

# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
launcher_init cluster-stateless
redis=${REDIS_SERVER:-$(PATH=$PATH:/usr/sbin:/sbin command -v redis-server)} ||
  die "redis-server is not installed (Debian: apt-get install redis-server)"

pids=()
redis_pid=""
cleanup() {
  trap - EXIT INT TERM
  if ((${#pids[@]})); then
    echo
    echo "cluster-stateless: stopping (SIGTERM: the nodes drain their games first)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  # Redis last: draining nodes still finish their games in it.
  if [[ -n $redis_pid ]]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  echo "cluster-stateless: stopped; logs in $logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$logs"
free_port 6390
redis_port=$REPLY
ids=(a b)
declare -A port admin
for id in "${ids[@]}"; do
  free_port 9101
  port[$id]=$REPLY
  # Its admin listener (/metrics, /api/node, /admin).
  free_port 9191
  admin[$id]=$REPLY
done
free_port "${PORT:-8080}"
lb_port=$REPLY
free_port 8404
stats_port=$REPLY

# Every acknowledged write is on disk before Redis answers it, so even a
# Redis restart loses no capture a player was told about.
"$redis" --port "$redis_port" --bind 127.0.0.1 --dir "$logs" \
  --save "" --appendonly yes --appendfsync always >"$logs/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
  listening "$redis_port" && break
  kill -0 "$redis_pid" 2>/dev/null || { tail -n 5 "$logs/redis.log" >&2; die "redis-server exited at start"; }
  sleep 0.05
done
listening "$redis_port" || die "redis-server not listening after 5 s; see $logs/redis.log"

names=()
for id in "${ids[@]}"; do
  "$bin" serve --mode stateless --node-id "$id" --redis "redis://127.0.0.1:$redis_port" \
    --listen "127.0.0.1:${port[$id]}" --admin-listen "127.0.0.1:${admin[$id]}" \
    >"$logs/node-$id.log" 2>&1 &
  pids+=("$!")
  names+=("node-$id")
done

# The project's HAProxy file, without its third node.
grep -v '^ *server c ' "$root/deploy/haproxy/haproxy.cfg" >"$logs/haproxy.cfg"
GRIDCAP_LB_BIND=127.0.0.1:$lb_port \
  GRIDCAP_LB_STATS=127.0.0.1:$stats_port \
  GRIDCAP_NODE_A=127.0.0.1:${port[a]} \
  GRIDCAP_NODE_B=127.0.0.1:${port[b]} \
  "$haproxy" -db -f "$logs/haproxy.cfg" >"$logs/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")
names+=(haproxy)

# Ready when both nodes (Redis reached) and HAProxy answer /readyz with 200.
wait_ready "${port[@]}" "$lb_port"

cat <<MSG

  gridcap stateless cluster is up. Open:  http://127.0.0.1:$lb_port/

  redis:   redis://127.0.0.1:$redis_port  (pid $redis_pid; redis-cli -p $redis_port)
  nodes:   a http://127.0.0.1:${port[a]}  admin http://127.0.0.1:${admin[a]}/admin  (pid ${pids[0]})
           b http://127.0.0.1:${port[b]}  admin http://127.0.0.1:${admin[b]}/admin  (pid ${pids[1]})
  HAProxy: http://127.0.0.1:$stats_port/ (its view of the nodes)
  logs:    $logs/
  try:     kill -9 ${pids[0]}   (lose node a: its players resume on b)
           redis-cli -p $redis_port CLIENT KILL TYPE pubsub   (drop the subscriptions)

  Ctrl-C stops everything.
MSG

# Until HAProxy exits or Ctrl-C (a trapped signal interrupts `wait`).
wait "$haproxy_pid" || true
echo "cluster-stateless: HAProxy exited; see $logs/haproxy.log" >&2
