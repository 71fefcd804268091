#!/usr/bin/env bash
# Benchmark 1, idle capacity: IDLE_CONNECTIONS (default 19,000) connected idle
# players on one node; reports the server's user-space RSS per connection
# (VmRSS delta / connections) 2 s after the last connection, and again
# IDLE_SETTLE (12) s later, once the allocator has given back what the
# handshakes freed. Target (issue 12): <= 1 KiB per connection (the first
# reading).
#
# Bots run in idle mode (connect, create or join a game that never starts,
# then only answer pings) in IDLE_PROCS bot processes (default 2), each with
# its own pair of loopback source addresses, all pinned to BOTS_CPU.
# IDLE_PARK_AFTER_MS, when set, is the server's --ws-park-after-ms (default
# 500; 0 = no parking; `make bench` measures both). Results: $OUT/idle.txt
# (idle-park-<ms>.txt when set). Takes about a minute.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${IDLE_CONNECTIONS:-19000}
PROCS=${IDLE_PROCS:-2}
SETTLE=${IDLE_SETTLE:-12}   # s between the two readings (the second: "settled")

build
log "idle: $N connections from $PROCS bot processes"
PARK=${IDLE_PARK_AFTER_MS:-}
RESULT="$OUT/idle.txt"
if [[ -n "$PARK" ]]; then
    RESULT="$OUT/idle-park-$PARK.txt"
    log "idle: --ws-park-after-ms $PARK"
fi
start_server --max-connections $((N + 500)) ${PARK:+--ws-park-after-ms "$PARK"}
sleep 1
rss_before=$(rss_kib "$SERVER_PID")

idle_bots idle-bots
total=$IDLE_TOTAL

# Wait until every connection is open (or the ramp-up is long over).
open=0
for _ in $(seq 600); do
    open=$(metric gridcap_connections)
    open=${open%.*}
    (( open >= total )) && break
    sleep 0.1
done
sleep 2  # let the last handshakes' transient buffers go
open=$(metric gridcap_connections); open=${open%.*}
rss_after=$(rss_kib "$SERVER_PID")
parked=$(metric gridcap_ws_parked); parked=${parked%.*}
# Once more after IDLE_SETTLE s of idleness: what an idle node keeps once the
# handshakes' freed memory has gone back to the system (an allocator returns
# it over a decay time: jemalloc's default is 10 s).
sleep "$SETTLE"
rss_settled=$(rss_kib "$SERVER_PID")
cpu=$(cpu_ticks "$SERVER_PID")
for pid in "${BOT_PIDS[@]}"; do wait "$pid" || true; done
BOT_PIDS=()
stop_server

delta=$((rss_after - rss_before))
per_conn=$(per_connection "$delta" "$open")
settled=$(per_connection "$((rss_settled - rss_before))" "$open")
errors=0; disconnects=0
for p in $(seq 0 $((PROCS - 1))); do
    errors=$((errors + $(jget "$OUT/idle-bots-$p.json" errors)))
    disconnects=$((disconnects + $(jget "$OUT/idle-bots-$p.json" disconnects)))
done
{
    provenance
    echo "--ws-park-after-ms: ${PARK:-default (500)}"
    echo "connections open: $open of $total (parked: $parked)"
    echo "server VmRSS before: ${rss_before} KiB, with connections: ${rss_after} KiB"
    echo "RSS per connection: ${per_conn} bytes (target <= 1024)"
    echo "RSS per connection ${SETTLE} s later (settled): ${settled} bytes"
    echo "server CPU ticks (total, ${CLK_TCK}/s): $cpu"
    echo "bot errors: $errors, bot disconnects: $disconnects"
    grep -h "connect+join" "$OUT"/idle-bots-*.txt | sed 's/^/bots /'
} | tee "$RESULT"
