#!/usr/bin/env bash
# Soak: one long-lived server under a moderate steady load for SOAK_SECS
# (default 600 = 10 minutes), to show whether memory, file descriptors or
# latency grow over time.
#
# The bots run as consecutive rounds of SOAK_ROUND seconds (default 60)
# against the same server, each round with its own JSON report, so the
# fan-out p50/p99 can be compared round by round; between rounds every
# connection closes and the next round reconnects (connection churn).
# Default load: SOAK_GAMES (250) games x 4 players at SOAK_RATE (5)
# captures/s per bot, games re-created as they end (SOAK_GAME_DURATION 30s).
# Every SOAK_SAMPLE seconds (10) a sampler records the server's RSS, open
# fds, CPU ticks and its /metrics connection and game gauges, and goes on
# for SOAK_SETTLE seconds (40) after the last round, with no bots.
# Results: $OUT/soak.csv (samples), $OUT/soak-rounds.tsv (per round),
# $OUT/soak.txt (summary), $OUT/soak-rN.json (bots' reports).
# BENCH_PORT defaults to 28751 here so it does not clash with the others.

BENCH_PORT=${BENCH_PORT:-28751}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECS=${SOAK_SECS:-600}
ROUND=${SOAK_ROUND:-60}
GAMES=${SOAK_GAMES:-250}
RATE=${SOAK_RATE:-5}
GAME_DURATION=${SOAK_GAME_DURATION:-30s}
SAMPLE=${SOAK_SAMPLE:-10}
SETTLE=${SOAK_SETTLE:-40}
ROUNDS=$(( (SECS + ROUND - 1) / ROUND ))

CSV=$OUT/soak.csv
RTSV=$OUT/soak-rounds.tsv
SAMPLER_PID=""

# One CSV row of the server's state; t is seconds since the server started.
sample() {
    local now
    now=$(date +%s.%N)
    printf '%.1f,%s,%s,%s,%s,%s,%s,%s\n' \
        "$(awk -v a="$T0" -v b="$now" 'BEGIN { print b - a }')" \
        "$(cat "$OUT/soak-round" 2>/dev/null || echo 0)" \
        "$(rss_kib "$SERVER_PID")" \
        "$(ls "/proc/$SERVER_PID/fd" | wc -l)" \
        "$(cpu_ticks "$SERVER_PID")" \
        "$(metric gridcap_connections)" \
        "$(metric 'gridcap_games{status="active"}')" \
        "$(metric 'gridcap_games{status="completed"}')" >>"$CSV"
}

sampler() {
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        sample
        sleep "$SAMPLE"
    done
}

stop_sampler() {
    if [[ -n "$SAMPLER_PID" ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=""
    fi
}
trap 'stop_sampler; cleanup' EXIT

summary() {
    cat "$OUT/soak-head.txt"
    echo "load: $GAMES games x 4 players, $RATE captures/s per bot, game duration $GAME_DURATION,"
    echo "      $ROUNDS rounds of ${ROUND}s against one server, samples every ${SAMPLE}s"
    echo
    # Memory and fds: first/last/max and a least-squares slope per minute,
    # over the samples taken while bots were running (round > 0), then over
    # the second half of the rounds only (after the warm-up: the allocator's
    # pools and the retained completed games reach their steady size).
    local from
    for from in 1 $((ROUNDS / 2 + 1)); do
        awk -F, -v from="$from" 'NR > 1 && $2 >= from {
                n++; t[n] = $1; r[n] = $3; f[n] = $4
                if (r[n] > rmax) rmax = r[n]; if (f[n] > fmax) fmax = f[n]
                if (n == 1 || r[n] < rmin) rmin = r[n]
            }
            function slope(y,   i, st, sy, stt, sty, mt) {
                for (i = 1; i <= n; i++) { st += t[i]; sy += y[i]; stt += t[i] * t[i]; sty += t[i] * y[i] }
                mt = st / n
                return 60 * (sty - n * mt * (sy / n)) / (stt - n * mt * mt)
            }
            END {
                if (n < 2) { print "too few samples"; exit }
                printf "rounds %d and later, %d samples (t = %.0f..%.0f s):\n", from, n, t[1], t[n]
                printf "  RSS KiB: first %d, last %d, min %d, max %d, slope %+.1f KiB/min\n", r[1], r[n], rmin, rmax, slope(r)
                printf "  open fds: first %d, last %d, max %d, slope %+.2f /min\n", f[1], f[n], fmax, slope(f)
            }' "$CSV"
    done
    awk -F, -v s="$SETTLE" 'NR > 1 { last = $0 } END { split(last, a, ","); printf "~%ss after the last round (no bots): RSS %s KiB, %s fds, %s connections, %s active and %s completed games\n", s, a[3], a[4], a[6], a[7], a[8] }' "$CSV"
    echo
    echo "per round (fan-out and capture latency in ms; server CPU % over the round):"
    column -t -s $'\t' "$RTSV"
    awk -F'\t' 'NR > 1 { n++; p50[n] = $3; p99[n] = $4; e += $9 }
        END {
            printf "\nfan-out p99 ms: first round %.2f, last %.2f; fan-out p50 first %.2f, last %.2f; bot errors in all rounds: %d\n",
                p99[1], p99[n], p50[1], p50[n], e
        }' "$RTSV"
}

main() {
    build
    log "soak: $ROUNDS rounds of ${ROUND}s, $GAMES games x 4 players at $RATE/s, port $PORT"
    provenance >"$OUT/soak-head.txt"
    start_server --rate-limit 0 --max-connections 20000
    T0=$(date +%s.%N)
    echo 0 >"$OUT/soak-round"
    echo "t_s,round,rss_kib,fds,cpu_ticks,connections,games_active,games_completed" >"$CSV"
    printf 'round\tdeliveries_per_s\tfanout_p50_ms\tfanout_p99_ms\tcapture_p50_ms\tcapture_p99_ms\tsend_lag_p99_ms\tserver_cpu_pct\terrors\tattempts\tanswered\n' >"$RTSV"
    sampler &
    SAMPLER_PID=$!
    local r json c0 c1 t0 t1
    for r in $(seq "$ROUNDS"); do
        echo "$r" >"$OUT/soak-round"
        json=$OUT/soak-r$r.json
        c0=$(cpu_ticks "$SERVER_PID"); t0=$(date +%s.%N)
        bots --games "$GAMES" --players 4 --rate "$RATE" --duration "${ROUND}s" --ramp-up 2s \
            --game-duration "$GAME_DURATION" --seed "$r" --json "$json" >"$OUT/soak-r$r.txt"
        c1=$(cpu_ticks "$SERVER_PID"); t1=$(date +%s.%N)
        awk -v r="$r" -v dps="$(jget "$json" deliveries_per_sec)" \
            -v f50="$(jget "$json" latency_us.fanout.p50)" -v f99="$(jget "$json" latency_us.fanout.p99)" \
            -v c50="$(jget "$json" latency_us.capture.p50)" -v c99="$(jget "$json" latency_us.capture.p99)" \
            -v lag="$(jget "$json" latency_us.send_lag.p99)" -v sc="$((c1 - c0))" -v hz="$CLK_TCK" \
            -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
            -v err="$(jget "$json" errors)" -v att="$(jget "$json" attempts)" -v ans="$(jget "$json" answered)" 'BEGIN {
                printf "%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%d\t%d\t%d\n",
                    r, dps, f50 / 1000, f99 / 1000, c50 / 1000, c99 / 1000, lag / 1000,
                    100 * sc / hz / wall, err, att, ans
            }' >>"$RTSV"
        log "round $r/$ROUNDS: $(tail -n 1 "$RTSV")"
    done
    # After the bots are gone, keep sampling for SOAK_SETTLE seconds (longer
    # than a game) so abandoned games can end: what the idle server keeps.
    echo 0 >"$OUT/soak-round"
    echo "load average at the end of the last round: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/soak-head.txt"
    sleep "$SETTLE"
    stop_sampler
    stop_server
    summary | tee "$OUT/soak.txt"
}

# SOAK_SUMMARY_ONLY=1: only rewrite $OUT/soak.txt from an earlier run's files.
if [[ "${SOAK_SUMMARY_ONLY:-0}" == 1 ]]; then
    summary | tee "$OUT/soak.txt"
else
    main
fi
