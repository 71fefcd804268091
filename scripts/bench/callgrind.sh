#!/usr/bin/env bash
# User-space instructions per delivery, counted by valgrind's callgrind: the
# one CPU figure that the busy shared machine does not blur. The server runs
# under callgrind (one core), small bots load it (CALLGRIND_GAMES, default 25
# games of 4, CALLGRIND_RATE 4 captures/s per bot, so valgrind's ~50x
# slowdown keeps up); counting starts after the ramp-up (callgrind_control
# -z) and stops CALLGRIND_SECS (5) later (-d), and the instructions are
# divided by the deliveries queued in that window (gridcap_deliveries_total).
# Kernel time (the send() path) is not in this figure: see perf in
# docs/benchmarks.md. GRIDCAP_BIN picks the build; results in
# $OUT/callgrind.txt and $OUT/callgrind.out.*.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GAMES=${CALLGRIND_GAMES:-25}
RATE=${CALLGRIND_RATE:-4}
SECS=${CALLGRIND_SECS:-5}

build
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
rm -f "$OUT"/callgrind.out.*
# start_server with valgrind in front of the binary; it needs longer to come up.
REAL_BIN=$BIN
BIN=valgrind
start_server() {
    raise_nofile
    rm -f "$OUT/server.pid"
    pinned "$OUT/server.pid" "$SERVER_CPU" valgrind --tool=callgrind --collect-atstart=yes \
        --callgrind-out-file="$OUT/callgrind.out.%p" "$REAL_BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
        --drain-timeout-ms 1000 "$@" >"$OUT/server.log" 2>&1 &
    SERVER_WAIT=$!
    for _ in $(seq 50); do [[ -s "$OUT/server.pid" ]] && break; sleep 0.1; done
    SERVER_PID=$(cat "$OUT/server.pid")
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not come up under valgrind; see $OUT/server.log" >&2
    exit 1
}
BOTS_BIN=${GRIDCAP_BOTS_BIN:-$REAL_BIN}
log "callgrind: $REAL_BIN, $GAMES games x 4 players at $RATE/s, counting $SECS s"
start_server --rate-limit 0
bots --games "$GAMES" --players 4 --rate "$RATE" --duration "$((SECS + 8))s" --ramp-up 2s \
    --game-duration 10s --json "$OUT/callgrind-bots.json" >/dev/null &
bots_job=$!
sleep 5
callgrind_control -z "$SERVER_PID" >/dev/null
d0=$(metric gridcap_deliveries_total)
sleep "$SECS"
d1=$(metric gridcap_deliveries_total)
callgrind_control -d "$SERVER_PID" >/dev/null
wait "$bots_job" || true
stop_server
# The dump made by -d is the one with a part number (.1); its summary line is
# the instructions counted since -z.
ir=$(awk '/^summary:/ { print $2 }' "$(ls "$OUT"/callgrind.out.*.1 | head -1)")
{
    provenance
    echo "binary: $REAL_BIN"
    echo "deliveries counted: $((d1 - d0)); instructions (user space): $ir"
    awk -v ir="$ir" -v d="$((d1 - d0))" 'BEGIN { if (d > 0) printf "instructions per delivery: %.0f\n", ir / d }'
} | tee "$OUT/callgrind.txt"
