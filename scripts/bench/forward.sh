#!/usr/bin/env bash
# Issue 6: the cost of the stateful cluster's forwarding hop. Two stateful
# nodes (a, b) pinned to SERVER_CPU; the same bot load twice, pinned to
# BOTS_CPU: (1) every player on node a (games and players on one node, no
# relay), (2) players alternating between a and b (seats 1 and 3 of each
# game relayed from b to a, where their game lives). Reports capture round
# trip and fan-out latency, and both nodes' CPU. Results: $OUT/forward.txt.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GAMES=${FORWARD_GAMES:-200}
RATE=${FORWARD_RATE:-10}
SECS=${FORWARD_SECS:-20}
PA=$PORT
PB=$((PORT + 1))
PEERS="a=127.0.0.1:$PA@$((PA + 1000)),b=127.0.0.1:$PB@$((PB + 1000))"
PIDS=()

start_node() { # id port
    pinned "$OUT/node-$1.pid" "$SERVER_CPU" "$BIN" serve --mode stateful --node-id "$1" --peers "$PEERS" \
        --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$(($2 + 1000))" --rate-limit 0 --max-connections 20000 --drain-timeout-ms 1000 \
        >"$OUT/node-$1.log" 2>&1 &
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    PIDS+=("$(cat "$OUT/node-$1.pid")")
}

stop_nodes() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
    PIDS=()
}
trap 'stop_nodes; cleanup' EXIT

run() { # label urls...
    local label=$1; shift
    local args=() u t0 t1
    for u in "$@"; do args+=(--url "$u"); done
    start_node a "$PA"
    start_node b "$PB"
    t0=$(( $(cpu_ticks "${PIDS[0]}") + $(cpu_ticks "${PIDS[1]}") ))
    pinned "$OUT/bots.pid" "$BOTS_CPU" "$BIN" bots "${args[@]}" --quiet --games "$GAMES" --players 4 \
        --rate "$RATE" --duration "${SECS}s" --game-duration 10s --ramp-up 3s --seed 7 \
        --json "$OUT/forward-$label.json" >"$OUT/forward-$label.txt"
    t1=$(( $(cpu_ticks "${PIDS[0]}") + $(cpu_ticks "${PIDS[1]}") ))
    stop_nodes
    local j="$OUT/forward-$label.json"
    printf '%-10s captures %8s  errors %3s  capture p50/p99 %7s/%7s us  fanout p50/p99 %7s/%7s us  nodes CPU %5.1f s  deliveries/s %s\n' \
        "$label" "$(jget "$j" captures)" "$(jget "$j" errors)" \
        "$(jget "$j" latency_us.capture.p50)" "$(jget "$j" latency_us.capture.p99)" \
        "$(jget "$j" latency_us.fanout.p50)" "$(jget "$j" latency_us.fanout.p99)" \
        "$(echo "($t1 - $t0) / $CLK_TCK" | bc -l)" "$(jget "$j" deliveries_per_sec)"
}

build
# Not a pipeline: the runs must stay in this shell so the EXIT trap sees PIDS.
exec > >(tee "$OUT/forward.txt")
provenance
echo "load: $GAMES games x 4 players, $RATE captures/s per bot, ${SECS}s"
run same-node "ws://127.0.0.1:$PA/ws"
run forwarded "ws://127.0.0.1:$PA/ws" "ws://127.0.0.1:$PB/ws"
