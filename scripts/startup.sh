#!/usr/bin/env bash
# Startup with all three built-in plugins deciding: builtin:native (the management
# authorizer), a builtin:cedar policy and a builtin:rego policy. Prints the time from
# starting the binary to its first `/ready` 200, three times each:
#
# - "compile": the data directory's precompiled/ folder removed before each start, so the
#   built-ins are compiled (what a first start costs);
# - "kept":    precompiled/ as the previous start left it (every later start).
#
#   scripts/startup.sh [BIN]      # default target/release/portcullis (built if missing)
#
# Figures go in docs/benchmarks.md with the binary they were taken with.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

BIN="${1:-target/release/portcullis}"
if [ ! -x "$BIN" ]; then
  cargo build --release -p portcullis
fi
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
PASSWORD="startup-admin-$RANDOM$RANDOM"
export PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD"

PORTCULLIS_LOG=warn start_server "$BIN" "$WORK/data" "$PORT" 2>>"$WORK/server.log"
wait_ready "$BASE/ready"
KEY="$(curl -fs -X POST "$BASE/v1/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
cedar_policy_body >"$WORK/cedar.json"
python3 - >"$WORK/rego.json" <<'EOF'
import json, pathlib
print(json.dumps({"plugin": "builtin:rego", "settings": {
    "modules": {"native.rego": pathlib.Path("docs/policies/native.rego").read_text()}}}))
EOF
for p in cedar rego; do
  curl -fs -X PUT "$BASE/v1/policies/$p" -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' --data-binary @"$WORK/$p.json" >/dev/null
done
stop_server

measure() {
  local label=$1 clear=$2
  for i in 1 2 3; do
    [ "$clear" = yes ] && rm -rf "$WORK/data/precompiled"
    start_timed "$BIN" "$WORK/data" "$PORT"
    # Both policies decide (a question each), so they were loaded.
    for p in cedar rego; do
      curl -fs -X POST "$BASE/policies/$p/access/v1/evaluation" -H "authorization: Bearer $KEY" \
        -H 'content-type: application/json' \
        -d '{"subject":{"type":"User","id":"Alice"},"action":{"name":"ReadWorkspace"},"resource":{"type":"Workspace","id":"workspace-1"}}' >/dev/null
    done
    echo "$label start $i: $READY_MS ms to /ready"
    stop_server
  done
}
measure compile yes
measure kept no
ls -la "$WORK/data/precompiled" | sed 's/^/  /'
