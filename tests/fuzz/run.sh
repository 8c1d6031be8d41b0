#!/usr/bin/env bash
# Runs each libFuzzer binary BUILD/fuzz-NAME for SECONDS on its committed seed
# corpus (tests/fuzz/corpus/NAME, read only) plus the inputs earlier runs found
# (BUILD/corpus/NAME, where new ones go), then prints one line per target and
# fails if any target crashed. Crash inputs are kept in BUILD/crashes/NAME/.
#   usage: tests/fuzz/run.sh BUILD SECONDS NAME...
set -uo pipefail
build=$1 seconds=$2
shift 2
cd "$(dirname "$0")/../.."
failed=0
summary=()
for name in "$@"; do
  mkdir -p "$build/corpus/$name" "$build/crashes/$name"
  log="$build/fuzz-$name.log"
  mark="$build/.start-$name"
  touch "$mark"  # crash files newer than it are this run's
  echo "fuzz: $name for ${seconds}s (log: $log)"
  "$build/fuzz-$name" "$build/corpus/$name" "tests/fuzz/corpus/$name" -max_total_time="$seconds" \
    -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crashes/$name/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$build/crashes/$name" -type f -newer "$mark" | wc -l)
  line=$(printf '%-12s %10s execs %7s/s  cov %5s  ft %6s  corpus %5s  crashes %s' "$name" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")
  summary+=("$line")
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    echo "fuzz: $name FAILED (exit $rc); the end of its log:"
    tail -40 "$log"
  fi
done
echo "fuzz summary (${seconds}s each; crashes: inputs this run kept in $build/crashes/NAME):"
printf '  %s\n' "${summary[@]}"
exit $failed
