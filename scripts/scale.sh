#!/usr/bin/env bash
# Scaling (docs/benchmarks.md): a release server with 100 000 users and a decision log of
# 1 000 000 entries; then list and describe latencies (p50/p99 with wrk) and the server's
# memory at each step.
#
#   scripts/scale.sh [USERS] [DECISIONS]      (defaults 100000 1000000; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
USERS="${1:-100000}"
DECISIONS="${2:-1000000}"
require_tool wrk "apt-get install wrk"
cargo build --release -q -p portcullis
BIN=target/release/portcullis
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
PORT="${PORTCULLIS_LOAD_PORT:-18701}"
BASE="http://127.0.0.1:$PORT"
PASSWORD="scale admin passphrase"

PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" \
PORTCULLIS_AUTHORIZER_DECISION_LOG_SIZE="$DECISIONS" PORTCULLIS_LOG=warn \
  start_server "$BIN" "$WORK/data" "$PORT" 2>"$WORK/server.log"
wait_ready "$BASE/ready"
rss() { echo "$(( $(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status) / 1024 )) MiB"; }
echo "# portcullis scaling: $(nproc) cores, $USERS users, decision log of $DECISIONS"
echo "idle RSS: $(rss)"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
KEY=$(curl -fs "$BASE/v1/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | json "['api_key']")
auth=(-H "authorization: Bearer $KEY")

# Users: one CSV import (no passwords: no hashing), spread over 100 accounts.
python3 - "$USERS" > "$WORK/users.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("username,email,account,roles,created_at,access_token_status")
for i in range(n):
    print(f"user{i:06d},user{i:06d}@example.org,team{i % 100:02d},team{i % 100:02d}:read:*,,")
PY
start=$(date +%s.%N)
curl -fs "${auth[@]}" -H 'content-type: text/csv' --data-binary @"$WORK/users.csv" "$BASE/v1/users/import" \
  | python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"imported: {r['created']} users, {len(r['accounts_created'])} accounts\", end='')"
echo " in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s; RSS: $(rss)"

wrk_report_lua "$WORK/report.lua"
cat > "$WORK/get.lua" <<LUA
dofile("$WORK/report.lua")
wrk.headers["authorization"] = "Bearer $KEY"
LUA
cat > "$WORK/authorize.lua" <<LUA
dofile("$WORK/report.lua")
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $KEY"
wrk.headers["content-type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(
    '{"subject":{"username":"user%06d"},"action":"read","resource":{"kind":"document","id":"%d","account":"team%02d"}}',
    n % $USERS, n, n % 100))
end
LUA

# Fill the decision log: every /v1/authorize logs two decisions (the caller's
# authorize.evaluate and the outside one).
decisions() {
  curl -fs "${auth[@]}" "$BASE/v1/authorizer" \
    | python3 -c "import json,sys; c=json.load(sys.stdin)['counts']; print(sum(v for k, v in c.items() if k != 'cache_hits'))"
}
start=$(date +%s.%N)
while [ "$(decisions)" -lt "$DECISIONS" ]; do
  wrk -t2 -c8 -d10s -s "$WORK/authorize.lua" "$BASE/v1/authorize" >/dev/null
done
TOTAL=$(decisions)
echo "decision log filled: $TOTAL decisions made (the log keeps the newest $DECISIONS) in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s; RSS: $(rss)"

run() { # name path
  local out
  out=$(wrk -t2 -c4 -d5s --latency -s "$WORK/get.lua" "$BASE$2" | awk '/^RESULT/ {print $2, $3, $4, $5}')
  printf '%-44s %10s %9s %9s %7s\n' "$1" $out
}
printf '%-44s %10s %9s %9s %7s\n' "GET (4 connections, 5 s each)" "req/s" "p50 ms" "p99 ms" "errors"
run "/v1/users?limit=100 (first page)" "/v1/users?limit=100"
run "/v1/users?after=user050000&limit=100" "/v1/users?after=user050000&limit=100"
run "/v1/users/user099999 (describe)" "/v1/users/user0$((USERS - 1 < 99999 ? USERS - 1 : 99999))"
run "/v1/accounts/team42/users?limit=100" "/v1/accounts/team42/users?limit=100"
run "/v1/decisions?limit=100 (oldest)" "/v1/decisions?limit=100"
run "/v1/decisions?after=<newest-100>&limit=100" "/v1/decisions?after=$((TOTAL - 100))&limit=100"
run "/v1/decisions?username=user000042&limit=100" "/v1/decisions?username=user000042&limit=100"
echo "RSS after: $(rss), peak $(( $(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status) / 1024 )) MiB"
