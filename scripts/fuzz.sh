#!/usr/bin/env bash
# Runs gridcap's fuzz targets (fuzz/, cargo-fuzz + libFuzzer), each for a
# bounded time or number of inputs. See SECURITY.md, "Fuzzing".
#
#   scripts/fuzz.sh [LIMIT] [TARGET...]
#
#   LIMIT    60 or 60s: seconds per target (default 60);
#            10000000runs: inputs per target (still capped by FUZZ_MAX_TIME).
#   TARGET   decode_client, game_machine (default: both, one after the other).
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none (2-3x faster; our crates forbid
#                   unsafe code, so ASan mostly watches the dependencies).
#   FUZZ_JOBS       parallel libFuzzer processes per target (default 1).
#   FUZZ_MAX_TIME   cap in seconds when LIMIT counts runs (default 7200).
#   FUZZ_MAX_LEN    longest input in bytes (default 4096, the protocol's
#                   default message limit; game_machine needs far less).
#   FUZZ_MERGE=1    afterwards, merge what the run found into the committed
#                   corpus fuzz/corpus/TARGET and minimize it (cargo fuzz cmin,
#                   set cover of the coverage edges; file names become hashes).
#
# cargo fuzz needs nightly compiler flags (-Zsanitizer, -Cpasses=sancov...).
# The machine has only stable Rust, so this sets RUSTC_BOOTSTRAP=1, which lets
# stable rustc accept them (an unsupported but working escape hatch).
# New inputs go to fuzz/target/corpus-work/TARGET, never straight into the
# committed corpus; findings (crashes) to fuzz/artifacts/TARGET.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

limit="${1:-60}"
if [ $# -gt 0 ]; then shift; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(decode_client game_machine); fi

sanitizer="${FUZZ_SANITIZER:-address}"
jobs="${FUZZ_JOBS:-1}"
max_time="${FUZZ_MAX_TIME:-7200}"
max_len="${FUZZ_MAX_LEN:-4096}"

case "$limit" in
  *runs) runs="${limit%runs}"; bound=(-runs="$runs" -max_total_time="$max_time") ;;
  *s) bound=(-max_total_time="${limit%s}") ;;
  *) bound=(-max_total_time="$limit") ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

mkdir -p target/logs
status=0
for target in "${targets[@]}"; do
  work="target/corpus-work/$target"
  mkdir -p "$work" "corpus/$target"
  dict=()
  if [ -f "dict/$target.dict" ]; then dict=(-dict="dict/$target.dict"); fi
  log="target/logs/$target.log"
  echo "fuzz.sh: $target (${bound[*]}, sanitizer $sanitizer, $jobs job(s)); log in fuzz/$log" >&2
  args=(-max_len="$max_len" -timeout=10 -print_final_stats=1 "${dict[@]}" "${bound[@]}")
  if [ "$jobs" -gt 1 ]; then args+=(-jobs="$jobs" -workers="$jobs"); fi
  start=$(date +%s)
  if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$work" "corpus/$target" -- "${args[@]}" >"$log" 2>&1; then
    echo "fuzz.sh: $target FAILED; see fuzz/$log and fuzz/artifacts/$target/" >&2
    tail -n 40 "$log" >&2
    status=1
    continue
  fi
  elapsed=$(( $(date +%s) - start ))
  # With -jobs, libFuzzer writes one fuzz-N.log per job in the current directory.
  if [ "$jobs" -gt 1 ]; then cat fuzz-*.log >>"$log" && rm -f fuzz-*.log; fi
  runs_done=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
  echo "fuzz.sh: $target ok: $runs_done inputs in ${elapsed}s; $(ls "$work" | wc -l) new inputs in fuzz/$work" >&2
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cp -n "$work"/* "corpus/$target"/ 2>/dev/null || true
    # Edge coverage only (no hit-count buckets) and libFuzzer's set-cover merge:
    # the smallest corpus that keeps every edge, a few hundred files at most.
    cargo fuzz cmin --sanitizer "$sanitizer" "$target" "corpus/$target" -- \
      -use_counters=0 -set_cover_merge=1 -max_len="$max_len" >>"$log" 2>&1
    kept=$(ls "corpus/$target" | wc -l)
    echo "fuzz.sh: corpus/$target minimized to $kept files" >&2
    if [ "$kept" -gt 500 ]; then
      echo "fuzz.sh: more than 500 files; consider committing only part of them" >&2
    fi
  fi
done
exit $status
