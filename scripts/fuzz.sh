#!/usr/bin/env bash
# Every cargo-fuzz target (tests/fuzz/fuzz_targets) for a bounded time each, with libFuzzer
# and AddressSanitizer. Prints the executions per target; exits non-zero on the first crash
# (the input is kept in tests/fuzz/artifacts/<target>/ and printed).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# cargo-fuzz passes unstable `-Z` flags to rustc; this project's one toolchain is stable,
# so the script sets RUSTC_BOOTSTRAP=1 for the fuzz build only (tests/fuzz is a workspace
# of its own with its own target directory; the main build never sees the flag).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(key_parse csv_import config_parse plugin_marshalling)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir tests/fuzz -O
for t in "${TARGETS[@]}"; do
  log="$(mktemp)"
  if ! cargo fuzz run --fuzz-dir tests/fuzz -O "$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz target $t found a crash:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  echo "$t: $runs executions in ${SECONDS_PER_TARGET} s, no crash"
  rm -f "$log"
done
