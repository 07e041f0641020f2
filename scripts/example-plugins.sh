#!/usr/bin/env bash
# The three example plugins side by side (docs/benchmarks.md, "Plugins in three
# languages"): the Rust tutorial (examples/plugin-tutorial), JavaScript
# (examples/plugin-js) and Python (examples/plugin-python), same rules, same case table.
#
# 1. `plugins check --repeat N`: the median time of one decision per case, and the time to
#    compile and configure the component (a fresh cache: compiled; again: kept).
# 2. A release server: each component uploaded (time and RSS after), each made an
#    application policy, then wrk asks each policy the same AuthZEN question for
#    SECONDS_PER_RUN at 1 and 8 connections (requests/s, p99), RSS after.
# 3. Startup with the JavaScript and Python policies active: the data directory's
#    precompiled/ folder removed (compiled at start) and kept (every later start).
#
#   scripts/example-plugins.sh [SECONDS_PER_RUN]   (needs wrk; builds the examples with
#                                                   their build.sh when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DURATION="${1:-5}"
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p portcullis
BIN=target/release/portcullis
TUTORIAL=target/wasm-plugins/wasm32-wasip2/release/plugin_tutorial.wasm
for example in plugin-js plugin-python; do
  [ -f "examples/$example/plugin.wasm" ] || "examples/$example/build.sh" >/dev/null
done
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
declare -A WASM=([rust]="$TUTORIAL" [js]=examples/plugin-js/plugin.wasm [python]=examples/plugin-python/plugin.wasm)
LANGS=(rust js python)
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "== plugins check --repeat 2000 (median of one decision per case; compile + configure)"
printf '%-7s %10s %12s %12s %14s\n' plugin size compiled kept "median/decision"
for l in "${LANGS[@]}"; do
  rm -rf "$WORK/cache"
  check() {
    XDG_CACHE_HOME="$WORK/cache" "$BIN" plugins check "${WASM[$l]}" \
      --cases examples/plugin-tutorial/cases.json --repeat "$1" -o json
  }
  cold=$(check 1 | json "['load_ms']")
  out=$(check 2000)
  kept=$(json "['load_ms']" <<<"$out")
  median=$(json "['median_us']" <<<"$out")
  printf '%-7s %10s %10.0f ms %10.0f ms %11.1f µs\n' "$l" "$(stat -c %s "${WASM[$l]}")" "$cold" "$kept" "$median"
done

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
PASSWORD="example-plugins-$RANDOM$RANDOM"
export PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD"
PORTCULLIS_LOG=warn start_server "$BIN" "$WORK/data" "$PORT" 2>>"$WORK/server.log"
wait_ready "$BASE/ready"
rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status"; }
echo
echo "== a release server: upload, policy, decisions (AuthZEN evaluation through each)"
echo "idle RSS: $(rss) MiB"
KEY=$(curl -fs "$BASE/v1/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | json "['api_key']")
auth=(-H "authorization: Bearer $KEY" -H 'content-type: application/json')
curl -fs "${auth[@]}" "$BASE/v1/accounts" -d '{"name":"acme"}' >/dev/null
curl -fs "${auth[@]}" "$BASE/v1/accounts/acme/users" \
  -d '{"username":"dev","attributes":{"department":"r-and-d"}}' >/dev/null
for l in "${LANGS[@]}"; do
  t0=$(now_ms)
  id=$(curl -fs -H "authorization: Bearer $KEY" -H 'content-type: application/wasm' \
    "$BASE/v1/plugins?name=$l" --data-binary @"${WASM[$l]}" | json "['id']")
  t1=$(now_ms)
  curl -fs -X PUT "${auth[@]}" "$BASE/v1/policies/$l" \
    -d "{\"plugin\":\"$id\",\"settings\":{\"attribute\":\"department\"}}" >/dev/null
  echo "upload $l: $((t1 - t0)) ms (stored, checked, compiled); RSS after the policy: $(rss) MiB"
done
# What the compiles freed goes back to the OS (jemalloc's background purging, ~10 s decay).
sleep 30
echo "RSS 30 s later, before any decision: $(rss) MiB"

wrk_report_lua "$WORK/report.lua"
printf '%-7s %5s %10s %9s %9s %7s\n' policy conns "req/s" "p50 ms" "p99 ms" errors
for l in "${LANGS[@]}"; do
  cat > "$WORK/$l.lua" <<LUA
dofile("$WORK/report.lua")
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $KEY"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"subject":{"type":"user","id":"dev"},"action":{"name":"read"},"resource":{"type":"document","id":"1","properties":{"department":"r-and-d"}}}'
LUA
  answer=$(curl -fs "${auth[@]}" "$BASE/policies/$l/access/v1/evaluation" -d "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$WORK/$l.lua")")
  [ "$(json "['decision']" <<<"$answer")" = True ] || { echo "error: $l did not allow: $answer" >&2; exit 1; }
  for c in 1 8; do
    r=$(wrk -t1 -c"$c" -d"${DURATION}s" -s "$WORK/$l.lua" "$BASE/policies/$l/access/v1/evaluation" | awk '/^RESULT/ {print $2, $3, $4, $5}')
    read -r rps p50 p99 errors <<<"$r"
    printf '%-7s %5s %10s %9s %9s %7s\n' "$l" "$c" "$rps" "$p50" "$p99" "$errors"
  done
done
echo "RSS after the load: $(rss) MiB"
stop_server

echo
echo "== startup with the js and python policies (and rust) active: time to /ready"
measure() {
  local label=$1 clear=$2
  for i in 1 2 3; do
    [ "$clear" = yes ] && rm -rf "$WORK/data/precompiled"
    start_timed "$BIN" "$WORK/data" "$PORT"
    echo "$label start $i: $READY_MS ms to /ready; RSS $(rss) MiB"
    stop_server
  done
}
measure compiled yes
measure kept no
