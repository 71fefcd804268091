# Shared helpers of the server benchmarks; sourced by the other scripts.
#
# Every benchmark runs the release build on loopback only, with the server
# pinned to one core (SERVER_CPU, default 0) and the bots to another
# (BOTS_CPU, default 1), and cleans up the processes it started. The box is
# shared with other builds, so when run as root both get a higher CPU
# priority (BENCH_NICE, default -15). With autogroup scheduling (Linux's
# default for desktops and this VM) nice only ranks processes inside one
# session, so each benchmark process starts in a session of its own
# (setsid) whose autogroup gets that nice too. Unprivileged runs use 0.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${GRIDCAP_BIN:-$ROOT/target/release/gridcap}
# The bots' binary; set it to compare two servers with the same bots.
BOTS_BIN=${GRIDCAP_BOTS_BIN:-$BIN}
OUT=${BENCH_OUT:-$ROOT/target/bench}
SERVER_CPU=${SERVER_CPU:-0}
BOTS_CPU=${BOTS_CPU:-1}
PORT=${BENCH_PORT:-28731}
# Every benchmark node's admin listener (/metrics) is its port + 1000.
ADMIN_PORT=$((PORT + 1000))
URL="ws://127.0.0.1:$PORT/ws"
CLK_TCK=$(getconf CLK_TCK)
if [[ $(id -u) == 0 ]]; then NICE=${BENCH_NICE:--15}; else NICE=${BENCH_NICE:-0}; fi
SERVER_PID=""   # the server process (for /proc and kill)
SERVER_WAIT=""  # the background job that waits for it
BOT_PIDS=()     # background bot jobs (idle.sh) to wait for

mkdir -p "$OUT"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Builds the release binary unless BENCH_NO_BUILD=1.
build() {
    if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
        log "building the release binary"
        (cd "$ROOT" && cargo build --release -p gridcap-server >&2)
    fi
    [[ -x "$BIN" ]] || { echo "no binary at $BIN" >&2; exit 1; }
    [[ -x "$BOTS_BIN" ]] || { echo "no bots binary at $BOTS_BIN" >&2; exit 1; }
}

# Raises the soft open-files limit to 20000 (server and bot processes each
# hold up to ~10-20k sockets); fails if the hard limit is lower.
raise_nofile() {
    local want=20000
    if (( $(ulimit -n) < want )); then
        ulimit -n "$want" || { echo "cannot raise ulimit -n to $want (hard: $(ulimit -Hn))" >&2; exit 1; }
    fi
}

# pinned PIDFILE CPU COMMAND...: runs COMMAND pinned to CPU in a session of
# its own with priority NICE (see the top of this file), waits for it, and
# writes its PID to PIDFILE (setsid may fork, so $! is not its PID).
pinned() {
    local pidfile=$1 cpu=$2
    shift 2
    setsid --wait bash -c 'echo $$ >"$1"; echo "$2" >/proc/self/autogroup 2>/dev/null; n=$2 c=$3; shift 3; exec nice -n "$n" taskset -c "$c" "$@"' \
        _ "$pidfile" "$NICE" "$cpu" "$@"
}

# Starts the server pinned to SERVER_CPU with extra `gridcap serve` flags;
# waits for /healthz. Sets SERVER_PID.
start_server() {
    launch_server "$OUT/server.log" "$BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
        --drain-timeout-ms 1000 "$@"
}

# launch_server LOG COMMAND...: runs COMMAND, a server that listens on PORT
# (gridcap, or a Node.js peer), pinned to SERVER_CPU, output to LOG; waits
# for its /healthz. Sets SERVER_PID.
launch_server() {
    local log=$1
    shift
    raise_nofile
    if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
        echo "something already serves port $PORT; set BENCH_PORT" >&2
        exit 1
    fi
    rm -f "$OUT/server.pid"
    pinned "$OUT/server.pid" "$SERVER_CPU" "$@" >"$log" 2>&1 &
    SERVER_WAIT=$!
    for _ in $(seq 50); do
        [[ -s "$OUT/server.pid" ]] && break
        sleep 0.1
    done
    SERVER_PID=$(cat "$OUT/server.pid")
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not come up; see $log" >&2
    exit 1
}

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_WAIT" 2>/dev/null || true
        while kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.1; done
    fi
    SERVER_PID=""
}

# Stops what this script started: bot processes still running (from their
# PID files, checked to still be our binary), then the server.
cleanup() {
    local f pid
    for f in "$OUT"/bots*.pid; do
        [[ -s "$f" ]] || continue
        pid=$(cat "$f")
        if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$BOTS_BIN bots"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    stop_server
}
trap cleanup EXIT

# User + system CPU ticks of a process.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Resident set size of a process, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# A value of the server's /metrics (first sample of that name), or 0. awk
# reads the whole page: leaving early would end curl with SIGPIPE (exit 23)
# whenever the page outgrows the pipe, which pipefail turns into the
# benchmark's own failure.
metric() {
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v name="$1" '!found && $1 == name { value = $2; found = 1 } END { print (found ? value : 0) }'
}

# jget FILE a.b.c: a scalar of a pretty-printed JSON report (serde_json's
# layout: one key per line), without needing jq.
jget() {
    awk -v want="$2" '
        BEGIN { depth = 0 } # numeric: mawk keys path[""] and path[0] apart
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
    pinned "${BOTS_PIDFILE:-$OUT/bots.pid}" "$BOTS_CPU" "$BOTS_BIN" bots --url "$URL" --quiet "$@"
}

# Date, commit (BENCH_COMMIT when the binary was built elsewhere) and
# machine load, for the results files.
provenance() {
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit: ${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
    echo "cpus: $(nproc); load average at start: $(cut -d' ' -f1-3 /proc/loadavg); nice: $NICE"
}

# idle_bots NAME: about IDLE_CONNECTIONS (19,000) idle players in games of 4
# (connect, create or join a game that never starts, answer pings), from
# IDLE_PROCS (2) bot processes, each with its own pair of loopback source
# addresses, ramping up over IDLE_RAMP (20s) and leaving after IDLE_HOLD
# (45s). In the background: sets IDLE_TOTAL (the exact count) and BOT_PIDS;
# reports in $OUT/NAME-<process>.json and .txt.
idle_bots() {
    local name=$1 procs=${IDLE_PROCS:-2} p
    local games=$(( ${IDLE_CONNECTIONS:-19000} / procs / 4 ))
    IDLE_TOTAL=$((games * 4 * procs))
    for p in $(seq 0 $((procs - 1))); do
        (raise_nofile; BOTS_PIDFILE="$OUT/bots-$p.pid" bots --idle --games "$games" --players 4 \
            --ramp-up "${IDLE_RAMP:-20s}" --duration "${IDLE_HOLD:-45s}" \
            --source-ip "127.0.0.$((2 * p + 1))" --source-ip "127.0.0.$((2 * p + 2))" \
            --json "$OUT/$name-$p.json" >"$OUT/$name-$p.txt") &
        BOT_PIDS+=($!)
    done
}

# per_connection KIB N: KIB of RSS over N connections, in bytes.
per_connection() { awk -v d="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", d * 1024 / n; else print "n/a" }'; }
