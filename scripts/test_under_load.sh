#!/usr/bin/env bash
# The suite beside a CPU hog, as CI's busy 2-core machine may be: stress-ng keeps 4 CPU-bound
# workers running for the whole suite, which then runs RUNS times in a row (default 2).
# Needs Debian's stress-ng (`apt-get install stress-ng`). Prints one line per run with its
# exit code and duration; exits non-zero if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-2}
command -v stress-ng >/dev/null || { echo "stress-ng is not installed" >&2; exit 2; }
stress-ng --cpu 4 --timeout 0 --quiet &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT
status=0
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  make test > "test-under-load-$run.log" 2>&1
  code=$?
  echo "run $run: exit $code in $(( $(date +%s) - started )) s, load $(cut -d' ' -f1 /proc/loadavg) ($(tail -1 "test-under-load-$run.log"))"
  [ "$code" -eq 0 ] || status=1
done
exit $status
