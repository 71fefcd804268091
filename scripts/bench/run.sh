#!/usr/bin/env bash
# `make bench` for the server: builds the release binary once, then runs the
# three server benchmarks in order (idle capacity, fan-out throughput, latency
# curve). About five to seven minutes in all; results in target/bench/, the
# plot in docs/. Environment knobs are documented at the top of each script.

set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
bash "$here/idle.sh"
BENCH_NO_BUILD=1 bash "$here/fanout.sh"
BENCH_NO_BUILD=1 bash "$here/curve.sh"
