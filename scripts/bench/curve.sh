#!/usr/bin/env bash
# Benchmark 3, latency curve: fan-out p50/p99 at 25/50/75/100 % of the
# maximum found by fanout.sh (run first; this script runs it when
# $OUT/fanout-max.env is missing). Each point is a CURVE_STEP (15 s) run
# with a fresh server. Writes $OUT/curve.tsv, $OUT/curve.md and an SVG plot
# (CURVE_SVG, default docs/bench-fanout-latency.svg). Takes about a minute.

source "$(dirname "${BASH_SOURCE[0]}")/fanout.sh"

STEP=${CURVE_STEP:-15s}
SVG=${CURVE_SVG:-$ROOT/docs/bench-fanout-latency.svg}

# svg TSV TITLE: a small line chart of p50 and p99 against deliveries/s.
svg() {
    awk -F'\t' -v title="$2" -v limit="$P99_MS" '
        NR == 1 { next }
        { n++; x[n] = $3; p50[n] = $4; p99[n] = $5; pct[n] = $1
          if ($3 > xmax) xmax = $3; if ($5 > ymax) ymax = $5 }
        function nice(v,   e, f) { e = 10 ^ int(log(v) / log(10)); f = v / e
            return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e }
        function px(v) { return L + (W - L - R) * v / xmax }
        function py(v) { return H - B - (H - B - T) * v / ymax }
        END {
            W = 640; H = 400; L = 70; R = 20; T = 40; B = 55
            if (ymax < limit) ymax = limit; ymax = nice(ymax * 1.1); xmax = nice(xmax * 1.05)
            printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
            printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            printf "<text x=\"%d\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n", W / 2, title
            for (i = 0; i <= 5; i++) {
                xv = xmax * i / 5; yv = ymax * i / 5
                printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", px(xv), T, px(xv), H - B
                printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px(xv), H - B + 16, xv / 1000
                printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py(yv), W - R, py(yv)
                printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, py(yv) + 4, yv
            }
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">captured deliveries per second (thousands)</text>\n", (L + W - R) / 2, H - 15
            printf "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">fan-out latency (ms)</text>\n", (T + H - B) / 2, (T + H - B) / 2
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\n", L, py(limit), W - R, py(limit)
            printf "<text x=\"%d\" y=\"%.1f\" fill=\"#c00\" text-anchor=\"end\">p99 limit %g ms</text>\n", W - R - 4, py(limit) - 5, limit
            split("p50 p99", names, " "); split("#1f77b4 #ff7f0e", colors, " ")
            for (s = 1; s <= 2; s++) {
                pts = ""
                for (i = 1; i <= n; i++) { v = (s == 1 ? p50[i] : p99[i]); pts = pts sprintf("%.1f,%.1f ", px(x[i]), py(v)) }
                printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", colors[s], pts
                for (i = 1; i <= n; i++) { v = (s == 1 ? p50[i] : p99[i])
                    printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s%% of max: %s ms</title></circle>\n", px(x[i]), py(v), colors[s], pct[i], v }
                printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">%s</text>\n", L + 12, T + 12 + 18 * s, L + 36, T + 12 + 18 * s, colors[s], L + 42, T + 16 + 18 * s, names[s]
            }
            print "</svg>"
        }' "$1"
}

curve_main() {
    if [[ ! -f "$OUT/fanout-max.env" ]]; then
        main
    else
        build
    fi
    # shellcheck disable=SC1091
    source "$OUT/fanout-max.env"
    if [[ "$MAX_RATE" == 0 ]]; then
        echo "fanout.sh found no rate within the p99 limit; nothing to plot" >&2
        exit 1
    fi
    log "curve: 25/50/75/100 % of rate $MAX_RATE ($MAX_DPS deliveries/s), steps of $STEP"
    printf "pct\t$HEADER" >"$OUT/curve.tsv"
    for pct in 25 50 75 100; do
        rate=$(awk -v m="$MAX_RATE" -v p="$pct" 'BEGIN { printf "%g", m * p / 100 }')
        TSV="$OUT/curve.row" run_step "$rate" 2>/dev/null
        printf '%s\t%s\n' "$pct" "$(tail -n 1 "$OUT/curve.row")" >>"$OUT/curve.tsv"
        rm -f "$OUT/curve.row"
    done
    svg "$OUT/curve.tsv" "gridcap fan-out latency, $GAMES games x 4 players, server on one core" >"$SVG"
    {
        provenance
        echo
        echo "| % of max | rate/bot | deliveries/s | fan-out p50 ms | p99 ms | bots' send lag p99 ms | server CPU % | server CPU-s per M deliveries |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
        tail -n +2 "$OUT/curve.tsv" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
        echo
        echo "plot: $SVG"
    } | tee "$OUT/curve.md"
}

curve_main
