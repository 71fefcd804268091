#!/usr/bin/env bash
# Benchmark: fan-out to spectators (issue 15). SPECTATORS_GAMES games
# (default 200) of 4 bots, each watched by SPECTATORS_PER_GAME spectator bots
# (default 40): 8,800 connections, and every capture goes to 43 others.
# Steps the per-player capture rate over SPECTATORS_RATES, a fresh server
# (or Redis and two nodes) per step, each step SPECTATORS_STEP long (3 s
# ramp-up included); stops after two steps in a row over the p99 limit
# (SPECTATORS_P99_MS, default 20, on the players' and the spectators'
# fan-out alike). Reports deliveries/s (players + spectators), both fan-out
# p99s, and the server's CPU-seconds per million deliveries.
#
# SPECTATORS_MODE=single (default): one node pinned to SERVER_CPU, bots on
# BOTS_CPU, as in fanout.sh. SPECTATORS_MODE=stateless: Redis and two nodes
# (bots alternate between them, so players and spectators of a game sit on
# both), everything on all cores as in stateless.sh; the CPU column is both
# nodes', Redis's is its own column.
#
#   scripts/bench/spectators.sh                              (two to four minutes)
#   SPECTATORS_MODE=stateless SPECTATORS_RATES="1 2 4" scripts/bench/spectators.sh
#
# Results: $OUT/spectators-<mode>.tsv and .md.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=${SPECTATORS_MODE:-single}
GAMES=${SPECTATORS_GAMES:-200}
PER_GAME=${SPECTATORS_PER_GAME:-40}
RATES=${SPECTATORS_RATES:-"1 2 3 4 6 8 10"}
STEP=${SPECTATORS_STEP:-12s}
P99_MS=${SPECTATORS_P99_MS:-20}
TSV="$OUT/spectators-$MODE.tsv"

if [[ $MODE == stateless ]]; then
    source "$(dirname "${BASH_SOURCE[0]}")/stateless-lib.sh"
    trap stateless_cleanup EXIT
fi

# One step: run_step RATE -> a row in $TSV; sets STEP_DPS and STEP_P99 (µs,
# the worse of the two fan-outs).
run_step() {
    local rate=$1 json="$OUT/spectators-$MODE-r$1.json"
    local urls=(--url "$URL") server_pids redis_ticks=0 r0=0 r1=0 cpus=$BOTS_CPU
    if [[ $MODE == stateless ]]; then
        start_redis
        start_nodes
        server_pids=("${NODE_PIDS[@]}")
        urls+=(--url "ws://127.0.0.1:$PORT_B/ws")
        cpus=$CPUS
        r0=$(cpu_ticks "$REDIS_PID")
    else
        start_server --rate-limit 0 --max-connections 20000
        server_pids=("$SERVER_PID")
    fi
    sleep 0.5
    local c0=0 c1=0 pid t0 t1
    for pid in "${server_pids[@]}"; do c0=$((c0 + $(cpu_ticks "$pid"))); done
    t0=$(date +%s.%N)
    pinned "$OUT/bots-spectators.pid" "$cpus" "$BOTS_BIN" bots "${urls[@]}" --quiet \
        --games "$GAMES" --players 4 --spectators "$PER_GAME" --rate "$rate" \
        --duration "$STEP" --ramp-up 3s --game-duration 10s --json "$json" \
        >"$OUT/spectators-$MODE-r$rate.txt"
    t1=$(date +%s.%N)
    for pid in "${server_pids[@]}"; do c1=$((c1 + $(cpu_ticks "$pid"))); done
    if [[ $MODE == stateless ]]; then
        r1=$(cpu_ticks "$REDIS_PID")
        redis_ticks=$((r1 - r0))
        stop_nodes
        stop_redis
    else
        stop_server
    fi
    local players watchers total p99 s99
    players=$(jget "$json" deliveries)
    watchers=$(jget "$json" spectator_deliveries)
    total=$((players + watchers))
    p99=$(jget "$json" latency_us.fanout.p99)
    s99=$(jget "$json" latency_us.spectator_fanout.p99)
    STEP_P99=$(( p99 > s99 ? p99 : s99 ))
    STEP_DPS=$(awk -v a="$(jget "$json" deliveries_per_sec)" -v b="$(jget "$json" spectator_deliveries_per_sec)" 'BEGIN { printf "%.0f", a + b }')
    awk -v r="$rate" -v dps="$STEP_DPS" -v sdps="$(jget "$json" spectator_deliveries_per_sec)" \
        -v p50="$(jget "$json" latency_us.spectator_fanout.p50)" -v p99="$p99" -v s99="$s99" \
        -v lag="$(jget "$json" latency_us.send_lag.p99)" -v sc="$((c1 - c0))" -v rc="$redis_ticks" \
        -v hz="$CLK_TCK" -v total="$total" -v err="$(jget "$json" errors)" \
        -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" 'BEGIN {
            scpu = sc / hz; rcpu = rc / hz; m = total / 1e6
            printf "%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%d\n", r, dps, sdps,
                p50 / 1000, p99 / 1000, s99 / 1000, lag / 1000, 100 * scpu / wall,
                (m > 0 ? scpu / m : 0), (m > 0 ? rcpu / m : 0), err
        }' >>"$TSV"
    tail -n 1 "$TSV" >&2
}

main() {
    build
    log "spectators ($MODE): $GAMES games x 4 players + $PER_GAME spectators each, steps of $STEP, p99 limit $P99_MS ms"
    printf 'rate\tdeliveries_per_s\tto_spectators_per_s\tspectator_p50_ms\tplayer_p99_ms\tspectator_p99_ms\tsend_lag_p99_ms\tserver_cpu_pct\tserver_cpu_s_per_M\tredis_cpu_s_per_M\terrors\n' >"$TSV"
    local best_rate=0 best_dps=0 misses=0
    for rate in $RATES; do
        run_step "$rate"
        if awk -v p="$STEP_P99" -v l="$P99_MS" 'BEGIN { exit !(p <= l * 1000) }'; then
            misses=0
            if awk -v a="$STEP_DPS" -v b="$best_dps" 'BEGIN { exit !(a > b) }'; then
                best_rate=$rate best_dps=$STEP_DPS
            fi
        else
            misses=$((misses + 1))
            (( misses >= 2 )) && break
        fi
    done
    {
        echo "# Spectators ($MODE): $GAMES games x 4 players, $PER_GAME spectators each"
        echo
        provenance
        echo
        echo "| rate/player | deliveries/s | to spectators/s | spectator fan-out p50 ms | player fan-out p99 ms | spectator fan-out p99 ms | bots' send lag p99 ms | server CPU % | server CPU-s per M deliveries | Redis CPU-s per M | errors |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        tail -n +2 "$TSV" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
        echo
        echo "Most deliveries/s with both fan-out p99 <= $P99_MS ms: $best_dps (rate $best_rate per player)."
    } | tee "$OUT/spectators-$MODE.md"
}

main "$@"
