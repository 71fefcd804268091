#!/usr/bin/env bash
# The server benchmarks of `make bench` (run after the rules micro-benchmark):
# builds the release binary once, then idle capacity, fan-out throughput and
# the latency curve, in that order. About five minutes in all; results in
# target/bench/, the plot in docs/. Environment knobs are documented at the
# top of each script; docs/benchmarks.md ("Server") has the figures.

set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/idle.sh"
BENCH_NO_BUILD=1 bash "$here/fanout.sh"
BENCH_NO_BUILD=1 bash "$here/curve.sh"
