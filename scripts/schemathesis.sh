#!/usr/bin/env bash
# Schemathesis against a live server, with every check (scripts/schemathesis.toml), from
# /openapi.json.
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]     # default 30 generated cases per operation
#   scripts/schemathesis.sh --prepare          # only install schemathesis (pinned)
#
# Builds the debug binary, starts it on a free loopback port with a fresh SQLite database in
# `configured` bootstrap mode, installs schemathesis (pinned) into target/schemathesis-venv,
# and runs `schemathesis run` with every check enabled, authenticated as the admin (scripts/
# schemathesis_hooks.py). The login rate limit and the lockout threshold are lifted for the
# run: both are tested on their own (tests/api/ratelimit.rs, tests/api/login.rs) and would
# otherwise turn generated logins into 429s. Exits non-zero on any failure; the report is in
# target/schemathesis-report.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

MAX_EXAMPLES="${1:-30}"
SCHEMATHESIS_VERSION="4.32.5"
VENV=target/schemathesis-venv

install_schemathesis() {
  if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}
# `--prepare`: install it and stop (CI does this while the build runs).
if [ "$MAX_EXAMPLES" = "--prepare" ]; then
  install_schemathesis
  exit 0
fi

# Not `cargo build -p portcullis`: building one package unifies features differently from
# the workspace and rebuilds dozens of crates. `cargo test --workspace --no-run` builds
# target/debug/portcullis exactly as the test step (which CI runs just before) does, so
# after it nothing is rebuilt.
cargo test -q --workspace --no-run
install_schemathesis

# (not PORTCULLIS_*: the server refuses environment variables it does not know)
DATA="$(mktemp -d)"
cleanup_on_exit "$DATA"
PORT="$(free_port)"
export ST_BASE_URL="http://127.0.0.1:$PORT"
export ST_ADMIN_PASSWORD="schemathesis-admin-$RANDOM$RANDOM"
PORTCULLIS_BOOTSTRAP_MODE=configured \
PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$ST_ADMIN_PASSWORD" \
PORTCULLIS_RATE_LIMIT_LOGIN_PER_MINUTE=1000000 \
PORTCULLIS_AUTH_LOCKOUT_THRESHOLD=1000000 \
PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES=127.0.0.1/32 \
  start_server target/debug/portcullis "$DATA" "$PORT" >"$DATA/server.log" 2>&1
wait_ready "$ST_BASE_URL/ready"

status=0
SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=scripts \
  "$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$ST_BASE_URL/openapi.json" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --workers 1 \
    --request-timeout 30 \
    --report junit,ndjson --report-dir target/schemathesis-report \
    || status=$?

if grep -q "panicked" "$DATA/server.log"; then
  echo "the server panicked during the run:" >&2
  grep -A5 "panicked" "$DATA/server.log" >&2
  status=1
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "the server is no longer running" >&2
  status=1
fi
exit $status
