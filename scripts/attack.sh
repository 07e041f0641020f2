#!/usr/bin/env bash
# Replay the resource-exhaustion attacks of the security review against a release server on
# loopback and print what each cost it: resident memory (now and peak), data-directory
# growth, open file descriptors (docs/security.md, "Measured").
#
#   scripts/attack.sh            (needs python3; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p portcullis
BIN=target/release/portcullis
WORK="$(mktemp -d)"
PORT="${PORTCULLIS_ATTACK_PORT:-18777}"
PASSWORD="attack admin passphrase"

# A soft file limit of 1024, as the review had: the connection cap must hold below it.
ulimit -Sn 1024
PORTCULLIS_BOOTSTRAP_MODE=configured PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" \
PORTCULLIS_RATE_LIMIT_LOGIN_PER_MINUTE=100000 PORTCULLIS_LOG=warn \
  "$BIN" server --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" 2>"$WORK/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.1; done

PORT=$PORT PID=$PID DATA="$WORK/data" PASSWORD="$PASSWORD" python3 scripts/attack.py
echo "server log: $(wc -c <"$WORK/server.log") bytes; still up: $(curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && echo yes || echo NO)"
