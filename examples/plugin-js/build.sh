#!/usr/bin/env bash
# Builds plugin.wasm, a WebAssembly component of the WIT world `authorizer`
# (../../wit/authorizer.wit), from plugin.js with ComponentizeJS. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# The toolchain is pinned by package-lock.json; install it only when it is missing or the
# lock file changed since the last install (npm records the install in node_modules).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

# -d disables every WASI feature of the JS engine (console output, Math.random's entropy,
# Date.now/timers, fetch): the sandbox offers none of them, and a component importing
# wasi:clocks or wasi:http would be refused. What is left imports the host interface only.
node_modules/.bin/componentize-js --wit ../../wit --world-name authorizer \
  -d stdio random clocks http fetch-event \
  -o plugin.wasm plugin.js

# Refuse a component that imports more than the sandbox provides.
imports=$(node_modules/.bin/jco wit plugin.wasm | grep -E '^\s*import ' || true)
echo "$imports"
if [[ -n $imports ]] && grep -vqE 'import (portcullis:authorizer/|wasi:(io|cli|random)/)' <<<"$imports"; then
  echo "plugin.wasm imports an interface the Portcullis sandbox does not provide" >&2
  exit 1
fi
ls -l plugin.wasm
