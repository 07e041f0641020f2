#!/usr/bin/env bash
# Load test of a release server on loopback (docs/benchmarks.md): POST /v1/authorize with a
# key, an AuthZEN evaluation through a builtin:cedar policy (cedar-examples'
# tags_n_roles), and a forward-auth check (Traefik's headers, a Cedar route policy), against
# GET /health (a trivial handler on the same server) at several concurrency levels, with
# the same decision asked of cedar-agent (when installed) beside its own trivial handler;
# then,
# when nginx is installed, requests through nginx with `auth_request` to Portcullis against
# nginx proxying the same upstream without it; then logins, then a 90 % authorize / 10 %
# management-write mix. Prints one table.
#
#   scripts/load.sh [SECONDS_PER_RUN]        (needs wrk, and nginx for the proxy rows:
#                                             apt-get install wrk nginx; cedar-agent for
#                                             the peer rows: cargo install cedar-agent)
#
# Client and server share this machine's cores, so compare the ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DURATION="${1:-10}"
require_tool wrk "apt-get install wrk"
cargo build --release -q -p portcullis
BIN=target/release/portcullis
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
PORT="${PORTCULLIS_LOAD_PORT:-18700}"
BASE="http://127.0.0.1:$PORT"
PASSWORD="load admin passphrase"

start_decision_server "$BIN" "$WORK/data" "$PORT" "$PASSWORD"
auth=(-H "authorization: Bearer $KEY" -H 'content-type: application/json')
cedar_policy_body >"$WORK/cedar.json"
curl -fs -X PUT "${auth[@]}" "$BASE/v1/policies/cedar" --data-binary @"$WORK/cedar.json" >/dev/null
# Forward auth: docs/proxies.md's rules in Cedar, and a key of rita's.
python3 -c 'import json; print(json.dumps({"plugin": "builtin:cedar", "settings": {"policies":
  "permit (principal, action == Action::\"get\", resource);\n"
  "permit (principal in Portcullis::Role::\"app-admin\", action, resource);\n"
  "permit (principal, action, resource) when { resource.path like \"/public/*\" };\n"}}))' >"$WORK/app.json"
curl -fs -X PUT "${auth[@]}" "$BASE/v1/policies/app" --data-binary @"$WORK/app.json" >/dev/null
# The same rules with decisions cached for 5 s (`ttl_ms`): the key is still verified on
# every request; identical questions skip the plugin.
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["settings"]["ttl_ms"]=5000; print(json.dumps(b))' "$WORK/app.json" >"$WORK/app-cached.json"
curl -fs -X PUT "${auth[@]}" "$BASE/v1/policies/app-cached" --data-binary @"$WORK/app-cached.json" >/dev/null
RITA=$(curl -fs "${auth[@]}" "$BASE/v1/users/rita/keys" -d '{"name":"load"}' | json "['key']")

wrk_report_lua "$WORK/report.lua"
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
cat > "$WORK/forward.lua" <<LUA
dofile("$WORK/report.lua")
wrk.headers["authorization"] = "Bearer $RITA"
wrk.headers["x-forwarded-method"] = "GET"
wrk.headers["x-forwarded-uri"] = "/docs/42?page=2"
wrk.headers["x-forwarded-host"] = "app.example.com"
wrk.headers["x-forwarded-proto"] = "https"
LUA
cat > "$WORK/through.lua" <<LUA
dofile("$WORK/report.lua")
wrk.headers["authorization"] = "Bearer $RITA"
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

run() { # name script path connections [base URL]
  local out
  out=$(wrk -t"$(( $4 < 2 ? $4 : 2 ))" -c"$4" -d"${DURATION}s" --latency -s "$WORK/$2.lua" "${5:-$BASE}$3" | awk '/^RESULT/ {print $2, $3, $4, $5}')
  printf '%-24s %4s %10s %9s %9s %7s\n' "$1" "$4" $out
}

# nginx in front of an upstream (an nginx server block answering 200), once with
# auth_request to Portcullis (docs/proxies.md's configuration, with kept-alive connections
# to Portcullis) and once without: the same upstream, the same proxy.
NGINX="$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)"
if [ -n "$NGINX" ]; then
  WITH=$(free_port); CACHED=$(free_port); WITHOUT=$(free_port); UPSTREAM=$(free_port)
  mkdir -p "$WORK/nginx"
  # auth_server PORT POLICY: a server block that asks POLICY about every request.
  auth_server() {
    cat <<BLOCK
  server {
    listen 127.0.0.1:$1;
    location = /_portcullis {
      internal;
      proxy_pass http://portcullis/v1/forward-auth/$2;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Uri "";
      proxy_set_header X-Forwarded-Method "";
    }
    location / {
      auth_request /_portcullis;
      auth_request_set \$portcullis_user \$upstream_http_x_portcullis_user;
      proxy_set_header X-Portcullis-User \$portcullis_user;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
  }
BLOCK
  }
  cat > "$WORK/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  upstream portcullis { server 127.0.0.1:$PORT; keepalive 64; }
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 64; }
  server { listen 127.0.0.1:$UPSTREAM; location / { return 200 "ok\n"; } }
$(auth_server "$WITH" app)
$(auth_server "$CACHED" app-cached)
  server {
    listen 127.0.0.1:$WITHOUT;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://app; }
  }
}
NGINX
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
  NGINX_PID=$!
  trap 'kill $NGINX_PID 2>/dev/null; stop_server; rm -rf "${CLEANUP_DIRS[@]}"' EXIT
  wait_ready "http://127.0.0.1:$WITHOUT/"
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $RITA" "http://127.0.0.1:$WITH/docs/1")
  [ "$status" = 200 ] || { echo "error: nginx with auth_request answered $status" >&2; cat "$WORK/nginx/error.log" >&2; exit 1; }
fi

# The peer a user would pick for HTTP decisions: permitio's cedar-agent 0.2.0 (Rust,
# Rocket, cedar-policy; `cargo install cedar-agent`), asked the same decision — rita, in
# the role that reads acme, reads document 42 of acme — as a Cedar policy over its
# entities; its own trivial handler (`GET /v1/`, 204) beside it. Skipped with a note when
# it is not installed.
CEDAR_AGENT="$(command -v cedar-agent || true)"
if [ -n "$CEDAR_AGENT" ]; then
  AGENT_PORT=$(free_port)
  AGENT="http://127.0.0.1:$AGENT_PORT"
  "$CEDAR_AGENT" --addr 127.0.0.1 --port "$AGENT_PORT" -l error >"$WORK/cedar-agent.log" 2>&1 &
  AGENT_PID=$!
  trap 'kill ${NGINX_PID:-} $AGENT_PID 2>/dev/null; stop_server; rm -rf "${CLEANUP_DIRS[@]}"' EXIT
  wait_ready "$AGENT/v1/"
  curl -fs -X PUT -H 'content-type: application/json' "$AGENT/v1/policies" \
    -d '[{"id":"acme-read","content":"permit(principal in Role::\"acme-reader\", action == Action::\"read\", resource in Account::\"acme\");"}]' >/dev/null
  curl -fs -X PUT -H 'content-type: application/json' "$AGENT/v1/data" -d '[
    {"uid":{"type":"User","id":"rita"},"attrs":{},"parents":[{"type":"Role","id":"acme-reader"}]},
    {"uid":{"type":"Role","id":"acme-reader"},"attrs":{},"parents":[]},
    {"uid":{"type":"Document","id":"42"},"attrs":{},"parents":[{"type":"Account","id":"acme"}]},
    {"uid":{"type":"Account","id":"acme"},"attrs":{},"parents":[]}]' >/dev/null
  AGENT_QUESTION='{"principal":"User::\"rita\"","action":"Action::\"read\"","resource":"Document::\"42\""}'
  decision=$(curl -fs -X POST -H 'content-type: application/json' "$AGENT/v1/is_authorized" -d "$AGENT_QUESTION" | json "['decision']")
  [ "$decision" = Allow ] || { echo "error: cedar-agent answered $decision, not Allow" >&2; exit 1; }
  cat > "$WORK/agent.lua" <<LUA
dofile("$WORK/report.lua")
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = [[$AGENT_QUESTION]]
LUA
fi

echo "# portcullis load test: $(nproc) cores, ${DURATION}s per run, idle RSS $((IDLE_RSS / 1024)) MiB"
printf '%-24s %4s %10s %9s %9s %7s\n' "run" "conn" "req/s" "p50 ms" "p99 ms" "errors"
for c in 1 8 32; do
  run "trivial (GET /health)" health /health "$c"
  run "POST /v1/authorize" authorize /v1/authorize "$c"
  run "AuthZEN via Cedar" cedar /policies/cedar/access/v1/evaluation "$c"
  run "forward-auth direct" forward /v1/forward-auth/app "$c"
  run "forward-auth, ttl 5 s" forward /v1/forward-auth/app-cached "$c"
  if [ -n "$CEDAR_AGENT" ]; then
    run "cedar-agent GET /v1/" health /v1/ "$c" "$AGENT"
    run "cedar-agent decision" agent /v1/is_authorized "$c" "$AGENT"
  fi
done
[ -n "$CEDAR_AGENT" ] || echo "# cedar-agent is not installed: no peer rows (cargo install cedar-agent)"
if [ -n "$NGINX" ]; then
  for c in 8 32; do
    run "nginx, no auth" through /docs/1 "$c" "http://127.0.0.1:$WITHOUT"
    run "nginx + forward-auth" through /docs/1 "$c" "http://127.0.0.1:$WITH"
    run "nginx + f-a, ttl 5 s" through /docs/1 "$c" "http://127.0.0.1:$CACHED"
  done
else
  echo "# nginx is not installed: no proxy rows (apt-get install nginx)"
fi
run "POST /v1/login" login /v1/login 4
run "mixed 90/10" mixed /v1/authorize 8
echo "# RSS after the runs: $(( $(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status) / 1024 )) MiB, peak $(( $(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status) / 1024 )) MiB"
