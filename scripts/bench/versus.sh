#!/usr/bin/env bash
# Two server builds side by side, in one session, under the same bots: the
# before/after figures of docs/benchmarks.md.
#
# VERSUS_BEFORE and VERSUS_AFTER are gridcap binaries (default: after =
# target/release/gridcap; before must be given, e.g. a release build of the
# last commit before a change, made in a worktree with its own target). The
# bots are VERSUS_AFTER's unless GRIDCAP_BOTS_BIN says otherwise. At every
# rate of VERSUS_RATES (default "6.25 25 50": about 25 % of the maximum and the
# issue's two shapes), VERSUS_ROUNDS rounds (default 3) of fanout.sh's step
# (FANOUT_STEP, default 10s), the two builds alternating so that the busy
# machine's drift hits both alike. FANOUT_SYSCALLS=1 (default here) counts
# the server's send() calls with perf. Prints the median per build and rate,
# and after/before ratios; rows in $OUT/versus.tsv, table in $OUT/versus.md.

source "$(dirname "${BASH_SOURCE[0]}")/fanout.sh"

BEFORE=${VERSUS_BEFORE:?set VERSUS_BEFORE to the gridcap binary to compare against}
AFTER=${VERSUS_AFTER:-$ROOT/target/release/gridcap}
BOTS_BIN=${GRIDCAP_BOTS_BIN:-$AFTER}
VRATES=${VERSUS_RATES:-"6.25 25 50"}
ROUNDS=${VERSUS_ROUNDS:-3}
export FANOUT_SYSCALLS=${FANOUT_SYSCALLS:-1}

versus_main() {
    local build rate round
    printf "build\t$HEADER" >"$OUT/versus.tsv"
    log "versus: $BEFORE vs $AFTER, rates $VRATES, $ROUNDS rounds of $STEP"
    for round in $(seq "$ROUNDS"); do
        for rate in $VRATES; do
            for build in before after; do
                if [[ $build == before ]]; then BIN=$BEFORE; else BIN=$AFTER; fi
                TSV="$OUT/versus.row" run_step "$rate" 2>/dev/null
                printf '%s\t%s\n' "$build" "$(tail -n 1 "$OUT/versus.row")" >>"$OUT/versus.tsv"
                rm -f "$OUT/versus.row"
            done
        done
        log "round $round of $ROUNDS done"
    done
    {
        provenance
        echo "before: $BEFORE"
        echo "after: $AFTER"
        echo "bots: $BOTS_BIN; $GAMES games x 4 players; $ROUNDS rounds of $STEP per build and rate; medians"
        echo
        echo "| rate/bot | build | deliveries/s | fan-out p50 ms | p99 ms | bots' send lag p99 ms | server CPU % | server CPU-s per M deliveries | bots CPU-s per M | frames per send() | frames per write (counter) |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        for rate in $VRATES; do
            for build in before after; do
                awk -F'\t' -v b="$build" -v r="$rate" '
                    $1 == b && $2 == r { n++; for (c = 3; c <= 15; c++) v[c, n] = $(c) }
                    function median(c,   i, j, t, a) {
                        for (i = 1; i <= n; i++) a[i] = v[c, i]
                        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                        return (a[1] == "n/a" ? "n/a" : a[int((n + 1) / 2)])
                    }
                    END { if (n) printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r, b,
                        median(3), median(4), median(5), median(6), median(7), median(8), median(9), median(15), median(14) }' "$OUT/versus.tsv"
            done
        done
    } | tee "$OUT/versus.md"
}

versus_main
