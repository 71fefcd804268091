# Shared helpers of the server benchmarks; sourced by the other scripts.
#
# Every benchmark runs the release build on loopback only, with the server
# pinned to one core (SERVER_CPU, default 0) and the bots to another
# (BOTS_CPU, default 1), and cleans up the processes it started.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${GRIDCAP_BIN:-$ROOT/target/release/gridcap}
OUT=${BENCH_OUT:-$ROOT/target/bench}
SERVER_CPU=${SERVER_CPU:-0}
BOTS_CPU=${BOTS_CPU:-1}
PORT=${BENCH_PORT:-18080}
URL="ws://127.0.0.1:$PORT/ws"
CLK_TCK=$(getconf CLK_TCK)
SERVER_PID=""
BOT_PIDS=()

mkdir -p "$OUT"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Builds the release binary unless BENCH_NO_BUILD=1.
build() {
    if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
        log "building the release binary"
        (cd "$ROOT" && cargo build --release -p gridcap-server >&2)
    fi
    [[ -x "$BIN" ]] || { echo "no binary at $BIN" >&2; exit 1; }
}

# Raises the soft open-files limit to 20000 (server and bot processes each
# hold up to ~10-20k sockets); fails if the hard limit is lower.
raise_nofile() {
    local want=20000
    if (( $(ulimit -n) < want )); then
        ulimit -n "$want" || { echo "cannot raise ulimit -n to $want (hard: $(ulimit -Hn))" >&2; exit 1; }
    fi
}

# Starts the server pinned to SERVER_CPU with extra `gridcap serve` flags;
# waits for /healthz. Sets SERVER_PID.
start_server() {
    raise_nofile
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
        echo "something already serves port $PORT; set BENCH_PORT" >&2
        exit 1
    fi
    taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$PORT" \
        --drain-timeout-ms 1000 "$@" >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not come up; see $OUT/server.log" >&2
    exit 1
}

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

cleanup() {
    for pid in "${BOT_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    stop_server
}
trap cleanup EXIT

# User + system CPU ticks of a process.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Resident set size of a process, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# A value of the server's /metrics (first sample of that name), or 0.
metric() {
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v name="$1" '$1 == name { print $2; found = 1; exit } END { if (!found) print 0 }'
}

# jget FILE a.b.c: a scalar of a pretty-printed JSON report (serde_json's
# layout: one key per line), without needing jq.
jget() {
    awk -v want="$2" '
        /^[[:space:]]*}/ { depth--; next }
        {
            line = $0
            if (match(line, /^[[:space:]]*"[^"]+":/) == 0) next
            key = substr(line, RSTART, RLENGTH); sub(/^[[:space:]]*"/, "", key); sub(/":$/, "", key)
            rest = substr(line, RSTART + RLENGTH); sub(/^[[:space:]]*/, "", rest); sub(/,$/, "", rest)
            path[depth] = key
            full = path[0]; for (i = 1; i <= depth; i++) full = full "." path[i]
            if (rest ~ /^[{]$/) { depth++; next }
            if (full == want) { gsub(/"/, "", rest); print rest; exit }
        }' "$1"
}

# Runs the bots pinned to BOTS_CPU with the given flags (no progress line).
bots() {
    taskset -c "$BOTS_CPU" "$BIN" bots --url "$URL" --quiet "$@"
}

# Date, commit and machine load, for the results files.
provenance() {
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "cpus: $(nproc); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}
