# Redis and two stateless nodes for the stateless benchmarks (stateless.sh,
# spectators.sh); sourced after lib.sh. CPUS: where they run (default all).
# STATELESS_REPLICA=1 gives Redis a replica (on BENCH_REDIS_PORT + 1);
# STATELESS_NODE_ARGS adds flags to both nodes (e.g. "--redis-wait-replicas 1").

REDIS_PORT=${BENCH_REDIS_PORT:-28740}
PORT_B=$((PORT + 1))
REDIS_SERVER=${REDIS_SERVER:-redis-server}
CPUS=${STATELESS_CPUS:-0-$(( $(nproc) - 1 ))}
REDIS_PID=""
REPLICA_PID=""
REPLICA_PORT=$((REDIS_PORT + 1))
NODE_PIDS=()
read -r -a NODE_ARGS <<<"${STATELESS_NODE_ARGS:-}"

command -v "$REDIS_SERVER" >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }


# boosted NAME COMMAND...: starts COMMAND in the background like lib.sh's
# `pinned` (own session, nice NICE) on CPUS; sets BOOSTED_PID.
boosted() {
    local pidfile="$OUT/stateless-$1.pid"
    shift
    rm -f "$pidfile"
    pinned "$pidfile" "$CPUS" "$@" &
    for _ in $(seq 50); do
        [[ -s "$pidfile" ]] && break
        sleep 0.05
    done
    BOOSTED_PID=$(cat "$pidfile")
}

start_redis() {
    boosted redis "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        >"$OUT/redis.log" 2>&1
    REDIS_PID=$BOOSTED_PID
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "redis-server did not come up; see $OUT/redis.log" >&2
    exit 1
}

# With STATELESS_REPLICA=1: a replica of it, once in sync.
start_replica() {
    [[ "${STATELESS_REPLICA:-0}" == 1 ]] || return 0
    boosted replica "$REDIS_SERVER" --port "$REPLICA_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --replicaof 127.0.0.1 "$REDIS_PORT" >"$OUT/redis-replica.log" 2>&1
    REPLICA_PID=$BOOSTED_PID
    for _ in $(seq 300); do
        redis-cli -p "$REPLICA_PORT" INFO replication 2>/dev/null | grep -q '^master_link_status:up' && return 0
        sleep 0.05
    done
    echo "the replica did not sync; see $OUT/redis-replica.log" >&2
    exit 1
}

stop_redis() {
    local pid
    for pid in "$REPLICA_PID" "$REDIS_PID"; do
        [[ -n "$pid" ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    done
    REDIS_PID=""
    REPLICA_PID=""
}

start_nodes() {
    raise_nofile
    NODE_PIDS=()
    local id port
    for id in a b; do
        port=$PORT; [[ $id == b ]] && port=$PORT_B
        boosted "node-$id" "$BIN" serve --mode stateless --node-id "$id" \
            --redis "redis://127.0.0.1:$REDIS_PORT" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1000))" \
            --rate-limit 0 --max-connections 20000 --drain-timeout-ms 1000 "${NODE_ARGS[@]}" \
            >"$OUT/stateless-node-$id.log" 2>&1
        NODE_PIDS+=("$BOOSTED_PID")
    done
    for port in "$PORT" "$PORT_B"; do
        for _ in $(seq 100); do
            curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "node on $port not ready" >&2; exit 1; }
    done
}

stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    done
    NODE_PIDS=()
}

stateless_cleanup() {
    stop_nodes
    stop_redis
    cleanup
}
