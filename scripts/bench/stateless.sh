#!/usr/bin/env bash
# Benchmark: stateless mode through one Redis with two nodes. Captures per
# second and fan-out p99 (capture sent -> `captured` received by every other
# player, through Redis pub/sub and the other node), beside Redis's own
# ceiling measured in the same run with redis-benchmark (EVALSHA of a
# trivial script, unpipelined and pipelined 16 deep).
#
# Steps the per-bot capture rate over STATELESS_RATES with STATELESS_GAMES
# games of STATELESS_PLAYERS bots (bot i connects to node i mod 2, so every
# game spans both nodes), a fresh Redis and fresh nodes per step, each step
# STATELESS_STEP long (2 s ramp-up included). Stops after two steps in a row
# miss the p99 limit (STATELESS_P99_MS, default 30). Results:
# $OUT/stateless.tsv and $OUT/stateless.md. Redis, both nodes and the bots
# share all the machine's cores (STATELESS_CPUS, default all; see `nproc` in
# the output), each in a session of its own with nice NICE (see lib.sh).
# Per capture: the CPU time of redis-server and of both nodes together over
# the step (user + system ticks) divided by the step's captures, in µs.
# GRIDCAP_BIN=<binary> with BENCH_NO_BUILD=1 measures another build (e.g.
# the base commit's, for a before/after in one session);
# STATELESS_CEILING=0 skips the redis-benchmark ceiling. Redis's own account
# is beside it: the usec `INFO commandstats` counts in the scripts (EVALSHA)
# over the step, per capture (wall time inside the scripts: a preempted
# Redis inflates it on a busy box, but it leaves out the I/O). With STATELESS_REPLICA=1 (see
# stateless-lib.sh) the replica's CPU per capture is a column too.
#
#   scripts/bench/stateless.sh                          (about two minutes)
#   STATELESS_RATES="20 40" STATELESS_STEP=8s scripts/bench/stateless.sh

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GAMES=${STATELESS_GAMES:-250}
PLAYERS=${STATELESS_PLAYERS:-2}
RATES=${STATELESS_RATES:-"10 20 40 60 80 120"}
STEP=${STATELESS_STEP:-10s}
P99_MS=${STATELESS_P99_MS:-30}

source "$(dirname "${BASH_SOURCE[0]}")/stateless-lib.sh"
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is not installed (apt-get install redis-tools)" >&2; exit 1; }

trap stateless_cleanup EXIT

# Redis's own ceiling for one-script round trips, on this box, now.
ceiling() {
    start_redis
    local sha unpiped piped
    sha=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "return 1")
    unpiped=$(redis-benchmark -p "$REDIS_PORT" -n 300000 -c 50 -q EVALSHA "$sha" 0 2>/dev/null |
        tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
    piped=$(redis-benchmark -p "$REDIS_PORT" -n 1000000 -c 50 -P 16 -q EVALSHA "$sha" 0 2>/dev/null |
        tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
    stop_redis
    CEIL_UNPIPED=$unpiped
    CEIL_PIPED=$piped
    log "Redis ceiling: EVALSHA $unpiped/s unpipelined, $piped/s pipelined (-P 16)"
}

# One step: run_step RATE -> a row in $OUT/stateless.tsv; sets STEP_CPS, STEP_P99 (µs).
run_step() {
    local rate=$1 json="$OUT/stateless-r$1.json"
    start_redis
    start_replica
    start_nodes
    local r0 t0 r1 t1 n0 n1 q0=0 q1=0 cmd_us
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    [[ -n "$REPLICA_PID" ]] && q0=$(cpu_ticks "$REPLICA_PID")
    r0=$(cpu_ticks "$REDIS_PID"); n0=$(( $(cpu_ticks "${NODE_PIDS[0]}") + $(cpu_ticks "${NODE_PIDS[1]}") )); t0=$(date +%s.%N)
    BOTS_PIDFILE="$OUT/bots-stateless.pid" pinned "$OUT/bots-stateless.pid" "$CPUS" "$BIN" bots --url "ws://127.0.0.1:$PORT/ws" --url "ws://127.0.0.1:$PORT_B/ws" --quiet \
        --games "$GAMES" --players "$PLAYERS" --rate "$rate" --duration "$STEP" --ramp-up 2s \
        --game-duration 10s --json "$json" >"$OUT/stateless-r$rate.txt"
    r1=$(cpu_ticks "$REDIS_PID"); n1=$(( $(cpu_ticks "${NODE_PIDS[0]}") + $(cpu_ticks "${NODE_PIDS[1]}") )); t1=$(date +%s.%N)
    [[ -n "$REPLICA_PID" ]] && q1=$(cpu_ticks "$REPLICA_PID")
    # Redis's own time in the scripts over the step (µs), from its counters
    # (the commands a script calls are counted inside it, and again apart).
    cmd_us=$(redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_evalsha:.*[^_]usec=\([0-9]*\),.*/\1/p')
    redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | grep '^cmdstat' >"$OUT/stateless-r$rate-commandstats.txt"
    stop_nodes
    stop_redis
    STEP_CPS=$(jget "$json" captures_per_sec)
    STEP_P99=$(jget "$json" latency_us.fanout.p99)
    local p50 cap99 dps errors
    p50=$(jget "$json" latency_us.fanout.p50)
    cap99=$(jget "$json" latency_us.capture.p99)
    dps=$(jget "$json" deliveries_per_sec)
    errors=$(jget "$json" errors)
    awk -v r="$rate" -v cps="$STEP_CPS" -v dps="$dps" -v p50="$p50" -v p99="$STEP_P99" -v c99="$cap99" \
        -v rc="$((r1 - r0))" -v nc="$((n1 - n0))" -v hz="$CLK_TCK" -v err="$errors" \
        -v qc="$((q1 - q0))" -v cmd="${cmd_us:-0}" \
        -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        -v caps="$(jget "$json" captures)" 'BEGIN {
            if (caps + 0 == 0) caps = 1
            printf "%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.1f\t%.1f\t%d\t%.1f\t%.1f\n", r, cps, dps, p50 / 1000,
                p99 / 1000, c99 / 1000, 100 * rc / hz / wall, 100 * nc / hz / wall,
                1e6 * rc / hz / caps, 1e6 * nc / hz / caps, err, cmd / caps, 1e6 * qc / hz / caps
        }' >>"$OUT/stateless.tsv"
    tail -n 1 "$OUT/stateless.tsv" >&2
}

main() {
    build
    log "stateless: Redis + 2 nodes, $GAMES games x $PLAYERS players, steps of $STEP, p99 limit $P99_MS ms"
    CEIL_UNPIPED=skipped CEIL_PIPED=skipped
    [[ "${STATELESS_CEILING:-1}" == 0 ]] || ceiling
    printf 'rate\tcaptures_per_s\tdeliveries_per_s\tfanout_p50_ms\tfanout_p99_ms\tcapture_p99_ms\tredis_cpu_pct\tnodes_cpu_pct\tredis_us_per_capture\tnodes_us_per_capture\terrors\tredis_script_us_per_capture\treplica_us_per_capture\n' >"$OUT/stateless.tsv"
    local best_rate=0 best_cps=0 best_p99=0 misses=0
    for rate in $RATES; do
        run_step "$rate"
        if awk -v p="$STEP_P99" -v l="$P99_MS" 'BEGIN { exit !(p <= l * 1000) }'; then
            misses=0
            if awk -v a="$STEP_CPS" -v b="$best_cps" 'BEGIN { exit !(a > b) }'; then
                best_rate=$rate best_cps=$STEP_CPS best_p99=$STEP_P99
            fi
        else
            misses=$((misses + 1))
            (( misses >= 2 )) && break
        fi
    done
    local verdict="NOT met"
    awk -v c="$best_cps" 'BEGIN { exit !(c >= 60000) }' && verdict="met"
    {
        echo "# Stateless (Redis): 2 nodes, one Redis"
        echo
        provenance
        echo
        echo "Redis ceiling (redis-benchmark EVALSHA of \`return 1\`, 50 clients): ${CEIL_UNPIPED}/s unpipelined, ${CEIL_PIPED}/s pipelined 16 deep."
        echo
        echo "| rate/bot | captures/s | deliveries/s | fan-out p50 ms | fan-out p99 ms | capture p99 ms | Redis CPU % | nodes CPU % | Redis µs/capture | nodes µs/capture | errors | Redis scripts µs/capture (commandstats) | replica µs/capture |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        tail -n +2 "$OUT/stateless.tsv" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }'
        echo
        echo "Best with fan-out p99 <= $P99_MS ms: $(printf '%.0f' "$best_cps") captures/s (rate $best_rate, p99 $(awk -v p="$best_p99" 'BEGIN { printf "%.2f", p / 1000 }') ms)."
        echo "Target (>= 60,000 captures/s at fan-out p99 <= 30 ms): $verdict."
    } >"$OUT/stateless.md"
    cat "$OUT/stateless.md"
}

main "$@"
