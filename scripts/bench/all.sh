#!/usr/bin/env bash
# The server benchmarks of `make bench` (run after the rules micro-benchmark):
# builds the release binary once, then idle capacity (with, then without
# parking), fan-out throughput (with
# frames per write), the latency curve, quick-play matchmaking per mode and
# the fan-out to spectators (the stateless mode only when redis-server is
# installed), in that order, then issue 18's attacks (attacks.sh; with
# ATTACKS_BEFORE=<gridcap binary>, that build too),
# then the send() floor (send-floor.sh), then user-space instructions per delivery under callgrind when valgrind is
# installed. About nine minutes in all; results in target/bench/, the plot in docs/. Optional,
# by environment: VERSUS_BEFORE=<gridcap binary> adds versus.sh (that build
# against this one, medians of rounds); PEERS_DIR=<installed copy of the
# Node.js peers> adds their idle memory (idle-peers.sh) and their
# side-by-side.sh (gridcap, Node ws, uWebSockets.js).
# Environment knobs are documented at the top of each script;
# docs/benchmarks.md ("Server") has the figures.

set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/idle.sh"
BENCH_NO_BUILD=1 IDLE_PARK_AFTER_MS=0 bash "$here/idle.sh"
BENCH_NO_BUILD=1 bash "$here/fanout.sh"
BENCH_NO_BUILD=1 bash "$here/curve.sh"
if command -v redis-server >/dev/null; then
    BENCH_NO_BUILD=1 bash "$here/quickplay.sh"
else
    BENCH_NO_BUILD=1 QP_MODES="single stateful" bash "$here/quickplay.sh"
fi
BENCH_NO_BUILD=1 bash "$here/spectators.sh"
if command -v redis-server >/dev/null; then
    BENCH_NO_BUILD=1 SPECTATORS_MODE=stateless bash "$here/spectators.sh"
fi
# Builds its load tool (the server is built already: a no-op).
bash "$here/attacks.sh"
# The syscall floor under the fan-out's CPU figures (builds its tool).
bash "$here/send-floor.sh"
if command -v valgrind >/dev/null; then
    BENCH_NO_BUILD=1 bash "$here/callgrind.sh"
fi
if [[ -n "${VERSUS_BEFORE:-}" ]]; then
    BENCH_NO_BUILD=1 bash "$here/versus.sh"
fi
if [[ -n "${PEERS_DIR:-}" && -d "$PEERS_DIR" ]]; then
    BENCH_NO_BUILD=1 bash "$here/idle-peers.sh"
fi
if [[ -n "${PEERS_DIR:-}" && -x "$PEERS_DIR/side-by-side.sh" ]]; then
    root=$(cd "$here/../.." && pwd)
    # That script stops each server with a SIGTERM it does not wait for (the server is
    # not its shell's child), and a gridcap node then drains its rounds for up to
    # --drain-timeout-ms: the next gridcap step would find the default admin port
    # (9091) still taken and exit. An ephemeral admin port per node avoids it.
    (cd "$root" && GRIDCAP_ADMIN_LISTEN=127.0.0.1:0 \
        BIN="${GRIDCAP_BIN:-$root/target/release/gridcap}" "$PEERS_DIR/side-by-side.sh")
fi
