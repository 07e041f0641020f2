#!/usr/bin/env bash
# Lint the packaging: the systemd unit (examples/portcullis.service) with
# `systemd-analyze verify` — any line it prints is a failure (it exits 0 on unknown keys) —
# against the built binary. The Dockerfile's rules (non-root user, volume, health check on
# /ready) are checked by tests/tidy.rs; the image itself is built by
# scripts/docker-build.sh where a Docker engine runs.
#
#   scripts/lint-packaging.sh [BINARY]     # default target/debug/portcullis
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(realpath "${1:-target/debug/portcullis}")"
[ -x "$BIN" ] || { echo "error: $BIN is not built (cargo build -p portcullis)" >&2; exit 1; }
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt-get install -y -q systemd >/dev/null 2>&1 || true
fi
command -v systemd-analyze >/dev/null 2>&1 || { echo "error: systemd-analyze is not installed (apt-get install systemd)" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
sed "s#/usr/local/bin/portcullis#$BIN#g" examples/portcullis.service > "$WORK/portcullis.service"
OUT="$(systemd-analyze verify --man=no "$WORK/portcullis.service" 2>&1 || true)"
if [ -n "$OUT" ]; then
  echo "examples/portcullis.service:" >&2
  echo "$OUT" >&2
  exit 1
fi
echo "examples/portcullis.service: systemd-analyze verify clean"
