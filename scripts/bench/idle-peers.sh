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
SETTLE=${IDLE_SETTLE:-12}
build

# Connections the server holds open on PORT now.
established() { ss -Htn state established "( sport = :$PORT )" | wc -l; }

measure() {
    local peer=$1 server=$PEERS_DIR/node-$1/server.mjs
    [[ -f "$server" ]] || { echo "no $server" >&2; exit 1; }
    log "idle-peers: node-$peer, $N connections"
    launch_server "$OUT/peer-$peer.log" env PEER_RATE=0 node "$server" "$PORT"
    sleep 1
    local before after settled open p errors=0
    before=$(rss_kib "$SERVER_PID")
    idle_bots idle-peer-bots
    for _ in $(seq 600); do (( $(established) >= IDLE_TOTAL )) && break; sleep 0.1; done
    sleep 2
    open=$(established)
    after=$(rss_kib "$SERVER_PID")
    sleep "$SETTLE"
    settled=$(rss_kib "$SERVER_PID")
    for p in "${BOT_PIDS[@]}"; do wait "$p" || true; done
    stop_server
    for p in $(seq 0 $((${#BOT_PIDS[@]} - 1))); do
        errors=$((errors + $(jget "$OUT/idle-peer-bots-$p.json" errors)))
    done
    BOT_PIDS=()
    {
        echo "node-$peer: connections open: $open of $IDLE_TOTAL; VmRSS before: $before KiB, with connections: $after KiB, ${SETTLE} s later: $settled KiB"
        echo "node-$peer: RSS per connection: $(per_connection $((after - before)) "$open") bytes; ${SETTLE} s later (settled): $(per_connection $((settled - before)) "$open") bytes; bot errors: $errors"
    } >>"$RESULT"
}

RESULT="$OUT/idle-peers.txt"
provenance >"$RESULT"
for peer in ${PEERS:-uws ws}; do measure "$peer"; done
cat "$RESULT"
