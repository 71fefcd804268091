#!/usr/bin/env bash
# Benchmark 2, fan-out throughput: the most captured deliveries per second
# the node sustains with fan-out p99 <= FANOUT_P99_MS (20) in 4-player games.
#
# Steps the per-bot capture rate over FANOUT_RATES with FANOUT_GAMES games
# (default 200 games = 800 bots), a fresh server per step, each step
# FANOUT_STEP long (2 s ramp-up included). Stops after two steps in a row
# miss the p99 limit, then bisects FANOUT_BISECT times (default 2) between
# the best passing rate and the first failing one. Per step it records deliveries/s, fan-out p50/p99, the
# bots' own send lag, and the server's and the bots' CPU-seconds per million
# deliveries. Results: $OUT/fanout.tsv, $OUT/fanout.md, $OUT/fanout-max.env.
# Takes one to three minutes.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GAMES=${FANOUT_GAMES:-200}
RATES=${FANOUT_RATES:-"10 20 30 40 50 60 80 100"}
STEP=${FANOUT_STEP:-10s}
P99_MS=${FANOUT_P99_MS:-20}
BISECT=${FANOUT_BISECT:-2}

# The columns of the results table.
# frames_per_write: the server's gridcap_ws_frames_written_total /
# gridcap_ws_flushes_total over the step ("n/a" for builds without them).
# frames_per_send: with FANOUT_SYSCALLS=1 (root, perf), frames out
# (gridcap_messages_out_total) per send() syscall counted by `perf stat`
# during the bots' run, which works for any build; "n/a" otherwise.
HEADER='rate\tdeliveries_per_s\tp50_ms\tp99_ms\tsend_lag_p99_ms\tserver_cpu_pct\tserver_cpu_s_per_M\tbots_cpu_s_per_M\tbots_cpu_pct\terrors\tattempts\tanswered\tframes_per_write\tframes_per_send\n'

# One step: run_step RATE -> appends a row to $TSV (default $OUT/fanout.tsv)
# and sets STEP_DPS and STEP_P99 (µs).
run_step() {
    local rate=$1 json="$OUT/fanout-r$1.json"
    start_server --rate-limit 0 --max-connections 20000
    sleep 0.5
    local c0 t0 c1 t1
    local perf_pid="" m0 m1 sends=0
    if [[ "${FANOUT_SYSCALLS:-0}" == 1 ]]; then
        perf stat -x, -e syscalls:sys_enter_sendto -p "$SERVER_PID" -o "$OUT/fanout-perf.txt" &
        perf_pid=$!
    fi
    m0=$(metric gridcap_messages_out_total)
    c0=$(cpu_ticks "$SERVER_PID"); t0=$(date +%s.%N)
    bots --games "$GAMES" --players 4 --rate "$rate" --duration "$STEP" --ramp-up 2s \
        --game-duration 10s --json "$json" >"$OUT/fanout-r$rate.txt"
    c1=$(cpu_ticks "$SERVER_PID"); t1=$(date +%s.%N)
    m1=$(metric gridcap_messages_out_total)
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        sends=$(awk -F, '/sendto/ { print $1 }' "$OUT/fanout-perf.txt")
    fi
    local frames flushes
    frames=$(metric gridcap_ws_frames_written_total); flushes=$(metric gridcap_ws_flushes_total)
    stop_server
    STEP_DPS=$(jget "$json" deliveries_per_sec)
    STEP_P99=$(jget "$json" latency_us.fanout.p99)
    local p50 lag99 total bot_cpu errors attempts answered
    p50=$(jget "$json" latency_us.fanout.p50)
    lag99=$(jget "$json" latency_us.send_lag.p99)
    total=$(jget "$json" deliveries)
    bot_cpu=$(jget "$json" bot_cpu_s)
    errors=$(jget "$json" errors)
    attempts=$(jget "$json" attempts)
    answered=$(jget "$json" answered)
    awk -v r="$rate" -v dps="$STEP_DPS" -v p50="$p50" -v p99="$STEP_P99" -v lag="$lag99" \
        -v sc="$((c1 - c0))" -v hz="$CLK_TCK" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        -v total="$total" -v bc="$bot_cpu" -v err="$errors" -v att="$attempts" -v ans="$answered" \
        -v fw="$frames" -v fl="$flushes" -v mo="$((m1 - m0))" -v sends="${sends:-0}" 'BEGIN {
            scpu = sc / hz
            printf "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%s\t%s\n",
                r, dps, p50 / 1000, p99 / 1000, lag / 1000, 100 * scpu / wall,
                (total > 0 ? scpu / (total / 1e6) : 0), (total > 0 ? bc / (total / 1e6) : 0),
                bc / wall * 100, err, att, ans, (fl > 0 ? sprintf("%.2f", fw / fl) : "n/a"),
                (sends > 0 ? sprintf("%.2f", mo / sends) : "n/a")
        }' >>"${TSV:-$OUT/fanout.tsv}"
    tail -n 1 "${TSV:-$OUT/fanout.tsv}" >&2
}

main() {
    build
    log "fan-out: $GAMES games x 4 players, steps of $STEP, p99 limit $P99_MS ms"
    printf "$HEADER" >"$OUT/fanout.tsv"
    local best_rate=0 best_dps=0 misses=0 first_miss=""
    passes() { awk -v p="$STEP_P99" -v l="$P99_MS" 'BEGIN { exit !(p <= l * 1000) }'; }
    better() { awk -v a="$STEP_DPS" -v b="$best_dps" 'BEGIN { exit !(a > b) }'; }
    for rate in $RATES; do
        run_step "$rate"
        if passes; then
            misses=0 first_miss=""
            if better; then best_rate=$rate; best_dps=$STEP_DPS; fi
        else
            misses=$((misses + 1))
            [[ -z "$first_miss" ]] && first_miss=$rate
            (( misses >= 2 )) && break
        fi
    done
    # Narrow the gap between the best passing rate and the first miss.
    local low=$best_rate high=${first_miss:-0} mid
    for _ in $(seq "$BISECT"); do
        awk -v l="$low" -v h="$high" 'BEGIN { exit !(h > l && l > 0) }' || break
        mid=$(awk -v l="$low" -v h="$high" 'BEGIN { printf "%g", (l + h) / 2 }')
        run_step "$mid"
        if passes; then
            low=$mid
            if better; then best_rate=$mid; best_dps=$STEP_DPS; fi
        else
            high=$mid
        fi
    done
    printf 'MAX_RATE=%s\nMAX_DPS=%s\nGAMES=%s\n' "$best_rate" "$best_dps" "$GAMES" >"$OUT/fanout-max.env"
    {
        provenance
        echo
        echo "| rate/bot | deliveries/s | fan-out p50 ms | p99 ms | bots' send lag p99 ms | server CPU % | server CPU-s per M deliveries | bots CPU-s per M | bots CPU % | errors | frames per write |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        tail -n +2 "$OUT/fanout.tsv" | sort -t"$(printf '\t')" -k1,1g | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13 }'
        echo
        echo "max with fan-out p99 <= $P99_MS ms: $best_dps deliveries/s at rate $best_rate ($GAMES games x 4 players)"
    } | tee "$OUT/fanout.md"
}

# Sourced by curve.sh for run_step; run main only when executed.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main
fi
