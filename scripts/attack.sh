#!/usr/bin/env bash
# Replay the resource-exhaustion attacks of the security review against a release server on
# loopback and print what each cost it: resident memory (now and peak), data-directory
# growth, open file descriptors (docs/security.md, "Measured").
#
#   scripts/attack.sh            (needs python3; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
cargo build --release -q -p portcullis
BIN=target/release/portcullis
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
PORT="${PORTCULLIS_ATTACK_PORT:-18777}"
PASSWORD="attack admin passphrase"

# A soft file limit of 1024, as the review had: the connection cap must hold below it.
ulimit -Sn 1024
PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" \
PORTCULLIS_RATE_LIMIT_LOGIN_PER_MINUTE=100000 PORTCULLIS_LOG=warn \
  start_server "$BIN" "$WORK/data" "$PORT" 2>"$WORK/server.log"
wait_ready "http://127.0.0.1:$PORT/ready"

PORT=$PORT PID=$SERVER_PID DATA="$WORK/data" PASSWORD="$PASSWORD" python3 scripts/attack.py
echo "server log: $(wc -c <"$WORK/server.log") bytes; still up: $(curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && echo yes || echo NO)"
