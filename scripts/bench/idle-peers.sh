#!/usr/bin/env bash
# Benchmark 1 against the Node.js peers (../shared/peers, installed in
# PEERS_DIR as its README says): idle.sh's method on their servers, driven
# by the same gridcap bots. IDLE_CONNECTIONS (19,000) idle players from
# IDLE_PROCS (2) bot processes; the server's RSS per connection 2 s after
# the last one connected and again IDLE_SETTLE (12) s later (a Node server's
# figure moves with its garbage collector's runs: quote both). PEERS picks
# the servers ("uws ws"). Results: $OUT/idle-peers.txt. About a minute each.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -n "${PEERS_DIR:-}" && -d "$PEERS_DIR" ]] || { echo "set PEERS_DIR to an installed copy of the peers" >&2; exit 1; }
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
N=${IDLE_CONNECTIONS:-19000}
PROCS=${IDLE_PROCS:-2}
PLAYERS=4
RAMP=${IDLE_RAMP:-20s}
HOLD=${IDLE_HOLD:-45s}
SETTLE=${IDLE_SETTLE:-12}
build

# Connections the server holds open on PORT now.
established() { ss -Htn state established "( sport = :$PORT )" | wc -l; }

per_conn() { awk -v d="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", d * 1024 / n; else print "n/a" }'; }

measure() {
    local peer=$1 server=$PEERS_DIR/node-$1/server.mjs
    [[ -f "$server" ]] || { echo "no $server" >&2; exit 1; }
    log "idle-peers: node-$peer, $N connections"
    raise_nofile
    rm -f "$OUT/server.pid"
    pinned "$OUT/server.pid" "$SERVER_CPU" env PEER_RATE=0 node "$server" "$PORT" >"$OUT/peer-$peer.log" 2>&1 &
    SERVER_WAIT=$!
    for _ in $(seq 50); do [[ -s "$OUT/server.pid" ]] && break; sleep 0.1; done
    SERVER_PID=$(cat "$OUT/server.pid")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    sleep 1
    local before after settled open errors=0
    before=$(rss_kib "$SERVER_PID")
    local per_proc=$((N / PROCS)) games p
    games=$((per_proc / PLAYERS))
    local total=$((games * PLAYERS * PROCS))
    for p in $(seq 0 $((PROCS - 1))); do
        (raise_nofile; BOTS_PIDFILE="$OUT/bots-$p.pid" bots --idle --games "$games" --players $PLAYERS --ramp-up "$RAMP" \
            --duration "$HOLD" --source-ip "127.0.0.$((2 * p + 1))" --source-ip "127.0.0.$((2 * p + 2))" \
            --json "$OUT/idle-peer-bots-$p.json" >"$OUT/idle-peer-bots-$p.txt") &
        BOT_PIDS+=($!)
    done
    for _ in $(seq 600); do (( $(established) >= total )) && break; sleep 0.1; done
    sleep 2
    open=$(established)
    after=$(rss_kib "$SERVER_PID")
    sleep "$SETTLE"
    settled=$(rss_kib "$SERVER_PID")
    for p in "${BOT_PIDS[@]}"; do wait "$p" || true; done
    BOT_PIDS=()
    stop_server
    for p in $(seq 0 $((PROCS - 1))); do
        errors=$((errors + $(jget "$OUT/idle-peer-bots-$p.json" errors)))
    done
    {
        echo "node-$peer: connections open: $open of $total; VmRSS before: $before KiB, with connections: $after KiB, ${SETTLE} s later: $settled KiB"
        echo "node-$peer: RSS per connection: $(per_conn $((after - before)) "$open") bytes; ${SETTLE} s later (settled): $(per_conn $((settled - before)) "$open") bytes; bot errors: $errors"
    } >>"$RESULT"
}

RESULT="$OUT/idle-peers.txt"
provenance >"$RESULT"
for peer in ${PEERS:-uws ws}; do measure "$peer"; done
cat "$RESULT"
