# What the scripts that run a server share: a free loopback port, starting the server on
# it with a data directory, waiting for /ready, and cleaning up at exit. Source it:
#
#   . "$(dirname "$0")/lib.sh"
#   cleanup_on_exit "$WORK"                       # at exit: stop the server, remove $WORK
#   PORTCULLIS_LOG=warn start_server "$BIN" "$WORK/data" "$PORT" 2>"$WORK/server.log"
#   wait_ready "http://127.0.0.1:$PORT/ready"
#
# Environment assignments and redirections written on the `start_server` line apply to the
# server process, as they would on the command itself.

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server BIN DATA_DIR PORT [EXTRA ARGS…]: `BIN server` on 127.0.0.1:PORT with DATA_DIR,
# in the background; its process id is left in SERVER_PID.
start_server() {
  local bin=$1 data=$2 port=$3
  shift 3
  "$bin" server --listen "127.0.0.1:$port" --data-dir "$data" "$@" &
  SERVER_PID=$!
}

# wait_ready URL: poll URL (a server's /ready) every 0.1 s until it answers 2xx, for at most
# 10 s. It returns either way: a server that never got ready fails the first real request.
wait_ready() {
  for _ in $(seq 100); do
    curl -fs "$1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  return 0
}

# now_ms: milliseconds since the epoch.
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }

# start_timed BIN DATA PORT: start a server (PORTCULLIS_LOG=warn, stderr appended to
# $WORK/server.log) and set READY_MS to the milliseconds until its /ready answered 200.
start_timed() {
  local t0; t0=$(now_ms)
  PORTCULLIS_LOG=warn start_server "$1" "$2" "$3" 2>>"$WORK/server.log"
  until curl -fs "http://127.0.0.1:$3/ready" >/dev/null 2>&1; do sleep 0.01; done
  READY_MS=$(( $(now_ms) - t0 ))
}

# stop_server: stop the server started by start_server, if any, and wait for it to exit.
stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# cleanup_on_exit [DIR…]: at exit, stop the server and remove the DIRs.
cleanup_on_exit() {
  CLEANUP_DIRS=("$@")
  trap 'stop_server; rm -rf "${CLEANUP_DIRS[@]}"' EXIT
}

# cedar_policy_body: the body of `PUT /v1/policies/{name}` for a builtin:cedar policy made
# of cedar-examples' tags_n_roles use case (policies, entities, schema), on stdout.
cedar_policy_body() {
  python3 - tests/fixtures/cedar-examples/cedar-example-use-cases/tags_n_roles <<'PY'
import json, sys, pathlib
d = pathlib.Path(sys.argv[1])
print(json.dumps({"plugin": "builtin:cedar", "settings": {
    "policies": (d / "policies.cedar").read_text(),
    "entities": json.loads((d / "entities.json").read_text()),
    "schema": (d / "policies.cedarschema").read_text()}}))
PY
}

# wrk_report_lua FILE: a wrk script whose `done` prints one line
# `RESULT <req/s> <p50 ms> <p99 ms> <errors>` (other scripts `dofile` it).
wrk_report_lua() {
  cat > "$1" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA
}

# start_decision_server BIN DATA PORT PASSWORD: the server of the load and profile scripts
# (configured admin with PASSWORD, login rate limit lifted, 127.0.0.1 a trusted proxy) on
# PORT, ready; then IDLE_RSS (KiB, before any request but /ready), KEY (the admin's login
# key), and the account acme with the user rita (role acme:read:*), whom the decisions
# are about. Also defines `json PATH` (reads JSON on stdin, prints the value at PATH).
start_decision_server() {
  local bin=$1 data=$2 port=$3 password=$4 base="http://127.0.0.1:$3"
  PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$password" \
  PORTCULLIS_RATE_LIMIT_LOGIN_PER_MINUTE=100000000 PORTCULLIS_LOG=warn \
  PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES=127.0.0.1/32 \
    start_server "$bin" "$data" "$port" 2>"$data.log"
  wait_ready "$base/ready"
  sleep 1
  IDLE_RSS=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  KEY=$(curl -fs "$base/v1/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" | json "['api_key']")
  local auth=(-H "authorization: Bearer $KEY" -H 'content-type: application/json')
  curl -fs "${auth[@]}" "$base/v1/accounts" -d '{"name":"acme"}' >/dev/null
  curl -fs "${auth[@]}" "$base/v1/accounts/acme/users" -d '{"username":"rita","roles":["acme:read:*"]}' >/dev/null
}

# require_tool NAME HINT: stop with "NAME is not installed (HINT)" unless NAME is on PATH.
require_tool() {
  command -v "$1" >/dev/null || { echo "error: $1 is not installed ($2)" >&2; exit 1; }
}
