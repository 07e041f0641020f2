#!/usr/bin/env bash
# Load test of a release server on loopback (docs/benchmarks.md): POST /v1/authorize with a
# key, and an AuthZEN evaluation through a builtin:cedar policy (cedar-examples'
# tags_n_roles), against GET /health (a trivial handler on the same server) at several
# concurrency levels, then logins, then a 90 % authorize / 10 % management-write mix.
# Prints one table.
#
#   scripts/load.sh [SECONDS_PER_RUN]        (needs wrk: apt-get install wrk)
#
# Client and server share this machine's cores, so compare the ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DURATION="${1:-10}"
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p portcullis
BIN=target/release/portcullis
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
PORT="${PORTCULLIS_LOAD_PORT:-18700}"
BASE="http://127.0.0.1:$PORT"
PASSWORD="load admin passphrase"

PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" \
PORTCULLIS_RATE_LIMIT_LOGIN_PER_MINUTE=100000000 PORTCULLIS_LOG=warn \
  start_server "$BIN" "$WORK/data" "$PORT" 2>"$WORK/server.log"
wait_ready "$BASE/ready"
sleep 1
IDLE_RSS=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
KEY=$(curl -fs "$BASE/v1/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | json "['api_key']")
auth=(-H "authorization: Bearer $KEY" -H 'content-type: application/json')
curl -fs "${auth[@]}" "$BASE/v1/accounts" -d '{"name":"acme"}' >/dev/null
curl -fs "${auth[@]}" "$BASE/v1/accounts/acme/users" -d '{"username":"rita","roles":["acme:read:*"]}' >/dev/null
cedar_policy_body >"$WORK/cedar.json"
curl -fs -X PUT "${auth[@]}" "$BASE/v1/policies/cedar" --data-binary @"$WORK/cedar.json" >/dev/null

cat > "$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA
cat > "$WORK/authorize.lua" <<LUA
dofile("$WORK/report.lua")
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $KEY"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"subject":{"username":"rita"},"action":"read","resource":{"kind":"document","id":"42","account":"acme"}}'
LUA
cat > "$WORK/cedar.lua" <<LUA
dofile("$WORK/report.lua")
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $KEY"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"subject":{"type":"User","id":"Alice"},"action":{"name":"ReadWorkspace"},"resource":{"type":"Workspace","id":"workspace-1"}}'
LUA
cat > "$WORK/health.lua" <<LUA
dofile("$WORK/report.lua")
LUA
cat > "$WORK/login.lua" <<LUA
dofile("$WORK/report.lua")
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"username":"admin","password":"$PASSWORD"}'
LUA
cat > "$WORK/mixed.lua" <<LUA
dofile("$WORK/report.lua")
-- Every wrk thread runs this file with the same random seed: name writes by thread id.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
local authorize = '{"subject":{"username":"rita"},"action":"read","resource":{"kind":"document","id":"42","account":"acme"}}'
request = function()
  n = n + 1
  local headers = { ["authorization"] = "Bearer $KEY", ["content-type"] = "application/json" }
  if n % 10 == 0 then
    return wrk.format("POST", "/v1/accounts", headers, string.format('{"name":"mix-%d-%d"}', tid, n))
  end
  return wrk.format("POST", "/v1/authorize", headers, authorize)
end
LUA

run() { # name script path connections
  local out
  out=$(wrk -t"$(( $4 < 2 ? $4 : 2 ))" -c"$4" -d"${DURATION}s" --latency -s "$WORK/$2.lua" "$BASE$3" | awk '/^RESULT/ {print $2, $3, $4, $5}')
  printf '%-22s %4s %10s %9s %9s %7s\n' "$1" "$4" $out
}

echo "# portcullis load test: $(nproc) cores, ${DURATION}s per run, idle RSS $((IDLE_RSS / 1024)) MiB"
printf '%-22s %4s %10s %9s %9s %7s\n' "run" "conn" "req/s" "p50 ms" "p99 ms" "errors"
for c in 1 8 32; do
  run "trivial (GET /health)" health /health "$c"
  run "POST /v1/authorize" authorize /v1/authorize "$c"
  run "AuthZEN via Cedar" cedar /policies/cedar/access/v1/evaluation "$c"
done
run "POST /v1/login" login /v1/login 4
run "mixed 90/10" mixed /v1/authorize 8
echo "# RSS after the runs: $(( $(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status) / 1024 )) MiB, peak $(( $(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status) / 1024 )) MiB"
