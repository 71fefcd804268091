#!/usr/bin/env bash
# The syscall floor under issue 12's CPU target: what writing small frames
# over loopback costs the sender alone, with no server, no WebSocket and no
# game around it. `gridcap-send-floor` (a tool of the test kit) writes
# FLOOR_FRAMES frames of 40 bytes round-robin over FLOOR_CONNECTIONS (800:
# the fan-out bench's 200 games of 4) connections, 1, 2, 4 and 8 frames per
# write syscall, pinned to SERVER_CPU, its reader pinned to BOTS_CPU, and
# reports the sender's CPU-seconds per million frames (loopback runs the
# reader's receive path on the sender's core, as for a node and its bots):
# the median of FLOOR_RUNS runs (default 3) and each run, in
# $OUT/send-floor.md. Takes about ten seconds.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOOL=${FLOOR_TOOL:-$ROOT/target/release/gridcap-send-floor}
if [[ "${BENCH_NO_BUILD:-0}" != 1 || ! -x "$TOOL" ]]; then
    (cd "$ROOT" && cargo build --release -p gridcap-testkit --bin gridcap-send-floor >&2)
fi

log "send floor"
{
    provenance
    echo
    taskset -c "$SERVER_CPU" "$TOOL" --reader-cpu "$BOTS_CPU" --markdown --runs "${FLOOR_RUNS:-3}" \
        --connections "${FLOOR_CONNECTIONS:-800}" --frames "${FLOOR_FRAMES:-400000}"
} | tee "$OUT/send-floor.md"
