#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz/ for SECONDS each.
#
#   tests/fuzz/run-all.sh SECONDS [extra libFuzzer flags...]
#
# Configures (if needed) and builds the "fuzz" preset in build/fuzz, then runs
# the targets one after another (HAVEN_FUZZ_PARALLEL=1: all at once). Each
# target keeps a working corpus in build/fuzz/fuzz-work/<name>/corpus that
# grows from run to run; the seeds in tests/fuzz/corpus/<name> are read but
# never written. Crash reproducers land in build/fuzz/fuzz-work/<name>/artifacts.
# HAVEN_FUZZ_TARGETS="a b" runs only those targets; HAVEN_FUZZ_NICE=19 runs
# them under nice; HAVEN_FUZZ_BUILD=0 runs the binaries as last built (so
# that a long campaign does not rebuild from a tree being edited).
# Dictionaries in tests/fuzz/dict/<name>.dict are used.
# Each run writes its own log, build/fuzz/fuzz-work/<name>/fuzz-<UTC time>.log
# (fuzz.log links to the latest), so that tests/fuzz/tally.sh can add up a
# campaign that resumed from the same working corpus over several runs.
# Exit status: 0 if no target found a problem.
set -euo pipefail

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [extra libFuzzer flags...]" >&2
  exit 2
fi
seconds=$1
shift

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/fuzz
cd "$root"

if [[ ${HAVEN_FUZZ_BUILD:-1} != 0 ]]; then
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake --preset fuzz
  fi
  cmake --build "$build" --target fuzz_targets
fi

# Every target CMake built (one source can make several, e.g. relay_*);
# HAVEN_FUZZ_TARGETS="a b" runs only those.
targets=()
for bin in "$build"/tests/fuzz/*_fuzz; do
  [[ -x $bin ]] && targets+=("$(basename "$bin" _fuzz)")
done
if [[ -n ${HAVEN_FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$HAVEN_FUZZ_TARGETS"
fi

run_one() {
  local name=$1 work=$build/fuzz-work/$1
  shift
  local dict=()
  [[ -f $here/dict/$name.dict ]] && dict=(-dict="$here/dict/$name.dict")
  mkdir -p "$work/corpus" "$work/artifacts"
  local log
  log=fuzz-$(date -u +%Y%m%dT%H%M%SZ).log
  # A fuzz.log from before logs were kept per run is kept under its time.
  if [[ -f $work/fuzz.log && ! -L $work/fuzz.log ]]; then
    mv "$work/fuzz.log" "$work/fuzz-$(date -u -r "$work/fuzz.log" +%Y%m%dT%H%M%SZ).log"
  fi
  ln -sfn "$log" "$work/fuzz.log"
  echo "=== $name: ${seconds}s, log $work/$log"
  (cd "$work" && ${HAVEN_FUZZ_NICE:+nice -n "$HAVEN_FUZZ_NICE"} "$build/tests/fuzz/${name}_fuzz" "${dict[@]}" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "$@" \
      "$work/corpus" "$here/corpus/$name") >"$work/$log" 2>&1
}

report() {
  local name=$1 rc=$2 log=$build/fuzz-work/$1/fuzz.log
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' \
      "$log" | sed "s/^/  $name /" || true
  # libFuzzer's last status line: coverage (cov), features (ft), corpus size.
  grep -E '^#[0-9]+' "$log" | tail -1 | sed "s/^/  $name /" || true
  if [[ $rc -ne 0 ]]; then
    echo "  $name FAILED (exit $rc); see $log and $build/fuzz-work/$name/artifacts/"
    grep -E 'ERROR|invariant violated|Test unit written' "$log" | sed "s/^/  $name /" || true
  fi
}

status=0
if [[ ${HAVEN_FUZZ_PARALLEL:-0} == 1 ]]; then
  pids=()
  for name in "${targets[@]}"; do
    run_one "$name" "$@" &
    pids+=($!)
  done
  for i in "${!targets[@]}"; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    report "${targets[$i]}" "$rc"
    [[ $rc -eq 0 ]] || status=1
  done
else
  for name in "${targets[@]}"; do
    rc=0
    run_one "$name" "$@" || rc=$?
    report "$name" "$rc"
    [[ $rc -eq 0 ]] || status=1
  done
fi
exit $status
