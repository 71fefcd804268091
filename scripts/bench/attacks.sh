#!/usr/bin/env bash
# Issue 18's attacks by one client, measured on a real node with an honest
# game running beside each (docs/benchmarks.md, "Attacks (issue 18)"); the
# system tests of tests/tests/attacks.rs assert generous bounds on the same.
#
# Per build and run, a fresh server each time (pinned to SERVER_CPU; the load
# tool `gridcap-attack` of the test kit pinned to BOTS_CPU, the honest client
# at nice 5 below the attacking ones so that the measuring client is
# not starved by the attack's own client):
#   flood:  an honest two-player game capturing ATTACKS_RATE/s (default 15,
#           under the default --rate-limit of 20; 127.0.0.2), starting a new
#           game whenever its board is full, and an honest `create` a second
#           (127.0.0.3), while ATTACKS_FLOOD (default 150000: the default
#           --max-games 100000 and half as much again) create-and-drop
#           rounds run on ATTACKS_CONCURRENCY (8) connections: flood rate,
#           games created, flood connections failed (none: ports), honest creates refused, the honest game's new
#           rounds refused, capture p50/p99/max, VmRSS before/after, games
#           held after.
#   routes: ATTACKS_HELD (default 78000) games flooded in and held (after:
#           --max-unattended-games 0, so none is evicted, as before), then
#           the honest game's captures for ATTACKS_WINDOW seconds (10) idle,
#           then as long again while 16 clients GET /api/node and /metrics
#           on the admin listener in a loop. Games left 60 s are dropped
#           (protocol §5), so the windows follow the flood at once and
#           the games held are read at their start and end.
# Builds: this tree's (ATTACKS_AFTER, default target/release/gridcap) and,
# when ATTACKS_BEFORE=<gridcap binary> is given, that one, alternating, for
# ATTACKS_RUNS runs (default 1). Connections are short, so TIME_WAIT holds
# client ports for 60 s: the flood spreads over ATTACKS_SOURCES (default 16)
# source addresses from ATTACKS_ATTACKER (127.0.1.1), 28k ephemeral ports
# each; no limit of either build tells them apart (--max-creates-per-ip and
# --max-connections-per-ip are off by default). Rows in
# $OUT/attacks.tsv, tables in $OUT/attacks.md. A run of both builds takes
# about 2 minutes on the 2-core box.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AFTER=${ATTACKS_AFTER:-$BIN}
BEFORE=${ATTACKS_BEFORE:-}
TOOL=${ATTACKS_TOOL:-$ROOT/target/release/gridcap-attack}
FLOOD=${ATTACKS_FLOOD:-150000}
HELD=${ATTACKS_HELD:-78000}
CONCURRENCY=${ATTACKS_CONCURRENCY:-8}
SOURCES=${ATTACKS_SOURCES:-16}
# The attackers: 127.0.1.1 and up, apart from the honest 127.0.0.2 and .3.
ATTACKER=${ATTACKS_ATTACKER:-127.0.1.1}
RATE=${ATTACKS_RATE:-15}
WINDOW=${ATTACKS_WINDOW:-10}
RUNS=${ATTACKS_RUNS:-1}
GAME="127.0.0.1:$PORT"
ADMIN="127.0.0.1:$ADMIN_PORT"
TOOL_PIDS=()

if [[ "${BENCH_NO_BUILD:-0}" != 1 || ! -x "$TOOL" ]]; then
    log "building the load tool"
    (cd "$ROOT" && cargo build --release -p gridcap-testkit --bin gridcap-attack >&2)
fi
BIN=$AFTER build
[[ -x "$TOOL" ]] || { echo "no load tool at $TOOL" >&2; exit 1; }

# tool NAME [NICE_DELTA] ARGS...: the load tool pinned to BOTS_CPU, its PID
# file $OUT/attack-NAME.pid, its report on stdout.
tool() {
    local name=$1 delta=$2
    shift 2
    NICE=$((NICE + delta)) pinned "$OUT/attack-$name.pid" "$BOTS_CPU" "$TOOL" "$@"
}

# Stops the tools still running (checked to be ours), then the server.
attacks_cleanup() {
    local pid
    for pid in $(cat "$OUT"/attack-*.pid 2>/dev/null); do
        # A PID file may outlive its process: only a live tool of ours.
        grep -qsF -- "$TOOL" "/proc/$pid/cmdline" && kill -TERM "$pid" 2>/dev/null
    done
    rm -f "$OUT"/attack-*.pid
    cleanup
}
trap attacks_cleanup EXIT

# Games in memory: the sum of the gridcap_games gauge over its statuses.
games_held() {
    curl -sf "http://$ADMIN/metrics" | awk '/^gridcap_games\{/ { n += $2 } END { printf "%d\n", n }'
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# The steps run in this shell (not in $(...)), so that the EXIT trap knows
# the server to stop; each writes its row to stdout, redirected to a file.

# flood_step BUILD: prints "rate created failed refused ok rounds_refused
# p50 p99 max rss0 rss1 held".
flood_step() {
    local build=$1 honest_job honest_pid rss0 rss1 held j="$OUT/attacks-$1"
    start_server
    rss0=$(rss_kib "$SERVER_PID")
    rm -f "$OUT/attack-honest.pid"
    tool honest -5 honest --addr "$GAME" --rate "$RATE" --seconds 600 >"$j-honest.json" &
    honest_job=$!
    for _ in $(seq 50); do [[ -s "$OUT/attack-honest.pid" ]] && break; sleep 0.1; done
    honest_pid=$(cat "$OUT/attack-honest.pid")
    sleep 2 # the honest game under way before the flood
    tool flood 0 flood --addr "$GAME" --rounds "$FLOOD" --concurrency "$CONCURRENCY" \
        --source "$ATTACKER" --sources "$SOURCES" >"$j-flood.json"
    kill -TERM "$honest_pid" 2>/dev/null || true
    wait "$honest_job" || true
    rss1=$(rss_kib "$SERVER_PID")
    held=$(games_held)
    stop_server
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$(jget "$j-flood.json" rounds_per_s | xargs printf '%.0f')" "$(jget "$j-flood.json" created)" \
        "$(jget "$j-flood.json" creates.failed)" \
        "$(jget "$j-honest.json" honest_creates.refused_total)" "$(jget "$j-honest.json" honest_creates.ok)" \
        "$(jget "$j-honest.json" rounds.refused_total)" \
        "$(jget "$j-honest.json" capture_round_trip_ms.p50)" "$(jget "$j-honest.json" capture_round_trip_ms.p99)" \
        "$(jget "$j-honest.json" capture_round_trip_ms.max)" "$(mib "$rss0")" "$(mib "$rss1")" "$held"
}

# routes_step BUILD [SERVER FLAGS]: prints "held_start held_end idle_p50
# idle_p99 busy_p50 busy_p99 requests/s".
routes_step() {
    local build=$1 held0 held1 hammer_job j="$OUT/attacks-$1"
    shift
    start_server "$@"
    tool flood 0 flood --addr "$GAME" --rounds "$HELD" --concurrency "$CONCURRENCY" \
        --source "$ATTACKER" --sources "$SOURCES" >"$j-hold.json"
    held0=$(games_held)
    tool honest -5 honest --addr "$GAME" --rate "$RATE" --seconds "$WINDOW" >"$j-idle.json"
    tool hammer 0 hammer --addr "$ADMIN" --paths /api/node,/metrics --clients 16 \
        --seconds "$((WINDOW + 1))" >"$j-hammer.json" &
    hammer_job=$!
    tool honest -5 honest --addr "$GAME" --rate "$RATE" --seconds "$WINDOW" >"$j-busy.json"
    wait "$hammer_job" || true
    held1=$(games_held)
    stop_server
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$held0" "$held1" \
        "$(jget "$j-idle.json" capture_round_trip_ms.p50)" "$(jget "$j-idle.json" capture_round_trip_ms.p99)" \
        "$(jget "$j-busy.json" capture_round_trip_ms.p50)" "$(jget "$j-busy.json" capture_round_trip_ms.p99)" \
        "$(jget "$j-hammer.json" requests_per_s | xargs printf '%.0f')"
}

COLUMNS="build\trun\tflood rounds/s\tcreated\tflood connections failed\thonest creates refused\thonest creates ok\thonest new rounds refused\tcapture p50 ms\tp99 ms\tmax ms\tRSS before MiB\tRSS after MiB\tgames held after\tgames held (routes)\tat the end\tidle capture p50 ms\tidle p99 ms\thammered capture p50 ms\thammered p99 ms\tadmin requests/s"

attacks_main() {
    local run build builds=after
    [[ -n "$BEFORE" ]] && builds="before after"
    printf "$COLUMNS\n" >"$OUT/attacks.tsv"
    log "attacks: flood $FLOOD rounds, $HELD games held, $RUNS runs of: $builds"
    for run in $(seq "$RUNS"); do
        for build in $builds; do
            if [[ $build == before ]]; then BIN=$BEFORE; else BIN=$AFTER; fi
            flood_step "$build" >"$OUT/attacks-flood.row"
            if [[ $build == before ]]; then
                routes_step "$build" >"$OUT/attacks-routes.row"
            else
                routes_step "$build" --max-unattended-games 0 >"$OUT/attacks-routes.row"
            fi
            printf '%s\t%s\t%s\t%s\n' "$build" "$run" "$(cat "$OUT/attacks-flood.row")" "$(cat "$OUT/attacks-routes.row")" \
                | tee -a "$OUT/attacks.tsv" >&2
        done
        log "run $run of $RUNS done"
    done
    {
        provenance
        echo "before: ${BEFORE:-none}"
        echo "after: $AFTER"
        echo "flood: $FLOOD rounds on $CONCURRENCY connections from $SOURCES addresses; honest captures at $RATE/s; routes: $HELD games, windows of $WINDOW s, 16 clients"
        echo
        echo "Every run:"
        echo
        awk -F'\t' 'NR == 1 { for (c = 1; c <= NF; c++) { printf "| %s ", $c; sep = sep "| --- " } print "|"; print sep "|"; next }
            { for (c = 1; c <= NF; c++) printf "| %s ", $c; print "|" }' "$OUT/attacks.tsv"
        echo
        echo "Medians over the runs:"
        echo
        awk -F'\t' 'NR == 1 { for (c = 1; c <= NF; c++) if (c != 2) { printf "| %s ", $c; sep = sep "| --- " } print "|"; print sep "|"; next }
            { b = $1; if (!(b in n)) order[++builds] = b; n[b]++; for (c = 3; c <= NF; c++) v[b, c, n[b]] = $c; cols = NF }
            function median(b, c,   i, j, t, a, k) {
                k = n[b]; for (i = 1; i <= k; i++) a[i] = v[b, c, i]
                for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                return a[int((k + 1) / 2)]
            }
            END { for (i = 1; i <= builds; i++) { b = order[i]; printf "| %s ", b; for (c = 3; c <= cols; c++) printf "| %s ", median(b, c); print "|" } }' "$OUT/attacks.tsv"
    } | tee "$OUT/attacks.md"
}

attacks_main
