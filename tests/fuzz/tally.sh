#!/usr/bin/env bash
# Adds up the fuzzing campaign recorded in build/fuzz/fuzz-work: for each
# target, every run's executions (run-all.sh keeps one log per run, each run
# resuming from the same working corpus), the runs that found a problem, and
# the corpus now.
#
#   tests/fuzz/tally.sh [target...]
#
# A run that finished reports "Done N runs", one stopped by a finding its
# final stats (stat::number_of_executed_units). A run that was killed (the
# machine or session stopped) reports nothing at the end; its count is the
# last "#N" status line libFuzzer printed, which is a lower bound: libFuzzer
# prints one when coverage grows and at every power of two.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(cd "$here/../.." && pwd)/build/fuzz/fuzz-work
[[ -d $work ]] || { echo "no fuzzing recorded yet: $work does not exist" >&2; exit 1; }

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for d in "$work"/*/; do targets+=("$(basename "$d")"); done
fi

printf '%-18s %5s %12s %7s %8s %7s %9s %s\n' target runs executions failed timeouts corpus artifacts \
  "last status line"
for name in "${targets[@]}"; do
  dir=$work/$name
  logs=()
  for f in "$dir"/fuzz-*.log; do [[ -f $f ]] && logs+=("$f"); done
  # A log from before run-all.sh kept one per run.
  [[ -f $dir/fuzz.log && ! -L $dir/fuzz.log ]] && logs+=("$dir/fuzz.log")
  runs=0 total=0 failed=0 timeouts=0 last=""
  for log in "${logs[@]}"; do
    n=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    if [[ -z $n ]]; then  # stopped by a finding: the final stats still count
      n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    if [[ -z $n ]]; then
      n=$(grep -aoE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    fi
    runs=$((runs + 1))
    total=$((total + ${n:-0}))
    # A timeout is counted apart: rerun its input alone (in artifacts/) to
    # tell a real hang from a run that was stopped or starved of CPU.
    if grep -aqE 'ERROR: libFuzzer: timeout' "$log"; then
      timeouts=$((timeouts + 1))
    elif grep -aqE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:|invariant violated' "$log"; then
      failed=$((failed + 1))
    fi
    line=$(grep -aE '^#[0-9]+' "$log" | tail -1 || true)
    [[ -n $line ]] && last=$line
  done
  corpus=$(find "$dir/corpus" -type f 2>/dev/null | wc -l)
  artifacts=$(find "$dir/artifacts" -type f 2>/dev/null | wc -l)
  # cov/ft/corp of the latest status line.
  summary=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9A-Za-z]+' <<<"$last" || true)
  printf '%-18s %5d %12d %7d %8d %7d %9d %s\n' "$name" "$runs" "$total" "$failed" "$timeouts" \
    "$corpus" "$artifacts" "$summary"
done
