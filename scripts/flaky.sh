#!/usr/bin/env bash
# Run the README's test command N times while a CPU hog keeps every core busy, the way CI
# and a newcomer's first run share a loaded machine. Prints each run's result and every
# failing test by name; exits non-zero if any run failed.
#
#   scripts/flaky.sh [N]            (default 10; PostgreSQL variants run when
#                                    PORTCULLIS_TEST_DATABASE_URL is set)
#
# The hog is `stress-ng --cpu <cores>` when installed (apt-get install stress-ng), else one
# shell busy loop per core. The test binaries are built once before the first timed run.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
# The exact command the README prints as "run all tests".
TEST_CMD="$(grep -m1 -E '^cargo test.*# run all tests' README.md | sed 's/#.*//; s/[[:space:]]*$//')"
[ -n "$TEST_CMD" ] || { echo "error: no '# run all tests' line in README.md" >&2; exit 2; }
CORES="$(nproc)"
WORK="$(mktemp -d)"

HOG_PIDS=()
start_hog() {
  if command -v stress-ng >/dev/null; then
    stress-ng --cpu "$CORES" --quiet >/dev/null 2>&1 &
    HOG_PIDS+=($!)
  else
    for _ in $(seq "$CORES"); do
      bash -c 'while :; do :; done' &
      HOG_PIDS+=($!)
    done
  fi
}
stop_hog() {
  for p in "${HOG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  HOG_PIDS=()
}
trap 'stop_hog; rm -rf "$WORK"' EXIT

echo "== building the tests once: $TEST_CMD --no-run"
$TEST_CMD --no-run >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 2; }

echo "== $RUNS runs of '$TEST_CMD' with a CPU hog on $CORES cores" \
     "(PostgreSQL: ${PORTCULLIS_TEST_DATABASE_URL:-not set, skipped})"
start_hog
failed_runs=0
for i in $(seq "$RUNS"); do
  start=$(date +%s)
  $TEST_CMD >"$WORK/run-$i.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  passed=$(grep -E '^test result:' "$WORK/run-$i.log" | awk '{s += $4} END {print s + 0}')
  if [ "$rc" -eq 0 ]; then
    echo "run $i: ok      (${secs} s, $passed tests passed)"
  else
    failed_runs=$((failed_runs + 1))
    echo "run $i: FAILED  (${secs} s, exit $rc, $passed tests passed)"
    # Every failing test by name, and the first lines of its panic.
    grep -E '^test .* \.\.\. FAILED$' "$WORK/run-$i.log" | sed 's/^test /    failed: /; s/ \.\.\. FAILED$//'
    grep -E "^thread '.*' panicked at|^error: test failed" "$WORK/run-$i.log" | head -20 | sed 's/^/    /'
    cp "$WORK/run-$i.log" "target/flaky-run-$i.log" 2>/dev/null && echo "    log: target/flaky-run-$i.log"
  fi
done
stop_hog
echo "== $((RUNS - failed_runs)) of $RUNS runs green"
[ "$failed_runs" -eq 0 ]
