#!/usr/bin/env bash
# Issue 14: matchmaking under load. Quick-play seats per second and time to
# seat (quick_play sent -> joined) and to start (-> started) percentiles, in
# each server mode: one single node; two stateful nodes (a ring); two
# stateless nodes and one Redis.
#
# The load: QP_GAMES x QP_PLAYERS bots (default 250 x 4 = 1,000) enter with
# `gridcap bots --quick-play` over QP_RAMP (1 s), without capturing (rate 0),
# for QP_STEP (8 s). The server's round length is capped at QP_ROUND_MS
# (1,000: quick-play games take the server's default, clamped to
# --max-duration-ms), so every bot plays one-second games and queues again
# after each: the run is steady matchmaking churn, and seats/s is measured
# after the ramp-up. In the cluster modes bot i connects to node i mod 2, so
# the matchmaking of one size is asked from both nodes at once.
#
# The server side (the node or both nodes, and Redis) is pinned to
# SERVER_CPU and the bots to BOTS_CPU (lib.sh), so every mode gets the same
# one core. QP_RUNS runs per mode (default 3), fresh processes each;
# $OUT/quickplay.tsv has every run and $OUT/quickplay.md the medians.
# About two minutes with the defaults; stops everything it started.
#
#   scripts/bench/quickplay.sh
#   QP_MODES="single stateful" QP_RUNS=1 QP_STEP=5s scripts/bench/quickplay.sh

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GAMES=${QP_GAMES:-250}
PLAYERS=${QP_PLAYERS:-4}
STEP=${QP_STEP:-8s}
RAMP=${QP_RAMP:-1s}
RUNS=${QP_RUNS:-3}
ROUND_MS=${QP_ROUND_MS:-1000}
MODES=${QP_MODES:-"single stateful stateless"}
REDIS_PORT=${BENCH_REDIS_PORT:-28740}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
PORT_B=$((PORT + 1))
PEERS="a=127.0.0.1:$PORT@$((PORT + 1000)),b=127.0.0.1:$PORT_B@$((PORT_B + 1000))"
NODE_PIDS=()
REDIS_PID=""

# background NAME COMMAND...: COMMAND pinned to SERVER_CPU in the
# background (lib.sh's `pinned`), logging to $OUT/quickplay-NAME.log; sets
# BG_PID once its PID file is written.
background() {
    local name=$1 pidfile="$OUT/quickplay-$1.pid"
    shift
    rm -f "$pidfile"
    pinned "$pidfile" "$SERVER_CPU" "$@" >"$OUT/quickplay-$name.log" 2>&1 &
    for _ in $(seq 100); do
        [[ -s "$pidfile" ]] && break
        sleep 0.05
    done
    [[ -s "$pidfile" ]] || { echo "$name did not start; see $OUT/quickplay-$name.log" >&2; exit 1; }
    BG_PID=$(cat "$pidfile")
}

start_redis() {
    command -v "$REDIS_SERVER" >/dev/null && command -v redis-cli >/dev/null ||
        { echo "redis-server or redis-cli is not installed (apt-get install redis-server redis-tools)" >&2; exit 1; }
    background redis "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
    REDIS_PID=$BG_PID
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "redis-server did not come up; see $OUT/quickplay-redis.log" >&2
    exit 1
}

# start_mode MODE: the mode's nodes (and Redis), each ready; sets URLS.
start_mode() {
    raise_nofile
    local common=(--rate-limit 0 --max-connections 20000 --drain-timeout-ms 1000
        --max-duration-ms "$ROUND_MS")
    local ports=("$PORT" "$PORT_B") ids=(a b) i port
    case $1 in
        single)
            ports=("$PORT")
            background node-a "$BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" "${common[@]}"
            NODE_PIDS+=("$BG_PID") ;;
        stateful)
            for i in 0 1; do
                background "node-${ids[i]}" "$BIN" serve --mode stateful --node-id "${ids[i]}" \
                    --peers "$PEERS" --listen "127.0.0.1:${ports[i]}" \
                    --admin-listen "127.0.0.1:$((ports[i] + 1000))" "${common[@]}"
                NODE_PIDS+=("$BG_PID")
            done ;;
        stateless)
            start_redis
            for i in 0 1; do
                background "node-${ids[i]}" "$BIN" serve --mode stateless --node-id "${ids[i]}" \
                    --redis "redis://127.0.0.1:$REDIS_PORT" --listen "127.0.0.1:${ports[i]}" \
                    --admin-listen "127.0.0.1:$((ports[i] + 1000))" "${common[@]}"
                NODE_PIDS+=("$BG_PID")
            done ;;
        *) echo "unknown mode $1 (single, stateful, stateless)" >&2; exit 1 ;;
    esac
    URLS=()
    for port in "${ports[@]}"; do
        for _ in $(seq 100); do
            curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null ||
            { echo "node on $port not ready; see $OUT/quickplay-node-*.log" >&2; exit 1; }
        URLS+=(--url "ws://127.0.0.1:$port/ws")
    done
}

# Stops the nodes, then Redis: TERM, and wait until each is gone.
stop_mode() {
    local pid
    for pid in "${NODE_PIDS[@]}" $REDIS_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}" $REDIS_PID; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    done
    NODE_PIDS=()
    REDIS_PID=""
}
trap 'stop_mode; cleanup' EXIT

# run_once MODE N: one run, one row of $OUT/quickplay.tsv.
run_once() {
    local mode=$1 n=$2 json="$OUT/quickplay-$1-$2.json" c0 c1 t0 t1 pid
    start_mode "$mode"
    c0=0; for pid in "${NODE_PIDS[@]}" $REDIS_PID; do c0=$((c0 + $(cpu_ticks "$pid"))); done
    t0=$(date +%s.%N)
    pinned "$OUT/bots-quickplay.pid" "$BOTS_CPU" "$BOTS_BIN" bots "${URLS[@]}" --quiet --quick-play \
        --games "$GAMES" --players "$PLAYERS" --rate 0 --duration "$STEP" --ramp-up "$RAMP" \
        --json "$json" >"$OUT/quickplay-$mode-$n.txt"
    c1=0; for pid in "${NODE_PIDS[@]}" $REDIS_PID; do c1=$((c1 + $(cpu_ticks "$pid"))); done
    t1=$(date +%s.%N)
    stop_mode
    awk -v m="$mode" -v n="$n" -v sps="$(jget "$json" seats_per_sec)" -v seats="$(jget "$json" seats)" \
        -v s50="$(jget "$json" latency_us.seat.p50)" -v s99="$(jget "$json" latency_us.seat.p99)" \
        -v smax="$(jget "$json" latency_us.seat.max)" -v st99="$(jget "$json" latency_us.start.p99)" \
        -v games="$(jget "$json" games_started)" -v err="$(jget "$json" errors)" \
        -v cpu="$((c1 - c0))" -v hz="$CLK_TCK" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 'BEGIN {
            printf "%s\t%s\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%d\n", m, n, sps, seats,
                s50 / 1000, s99 / 1000, smax / 1000, st99 / 1000, games, 100 * cpu / hz / wall, err
        }' >>"$OUT/quickplay.tsv"
    tail -n 1 "$OUT/quickplay.tsv" >&2
}

# median MODE COLUMN: the median of a column over a mode's runs.
median() {
    awk -F'\t' -v m="$1" -v c="$2" '$1 == m { print $c }' "$OUT/quickplay.tsv" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

main() {
    build
    log "quick play: $GAMES x $PLAYERS bots, rounds of $ROUND_MS ms, $RUNS runs of $STEP per mode ($MODES)"
    printf 'mode\trun\tseats_per_s\tseats\tseat_p50_ms\tseat_p99_ms\tseat_max_ms\tstart_p99_ms\tgames_started\tserver_cpu_pct\terrors\n' \
        >"$OUT/quickplay.tsv"
    local mode n
    for mode in $MODES; do
        for n in $(seq "$RUNS"); do run_once "$mode" "$n"; done
    done
    {
        echo "# Quick play: seats per second and time to seat"
        echo
        provenance
        echo "load: $GAMES x $PLAYERS bots (--quick-play --rate 0), ramp-up $RAMP, $STEP per run, rounds of $ROUND_MS ms; server side on CPU $SERVER_CPU, bots on CPU $BOTS_CPU"
        echo
        echo "Medians of $RUNS runs:"
        echo
        echo "| mode | seats/s | time to seat p50 ms | p99 ms | time to start p99 ms | server CPU % | errors |"
        echo "| --- | --- | --- | --- | --- | --- | --- |"
        for mode in $MODES; do
            echo "| $mode | $(median "$mode" 3) | $(median "$mode" 5) | $(median "$mode" 6) | $(median "$mode" 8) | $(median "$mode" 10) | $(median "$mode" 11) |"
        done
    } >"$OUT/quickplay.md"
    cat "$OUT/quickplay.md"
}

main "$@"
