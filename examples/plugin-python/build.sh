#!/usr/bin/env bash
# Builds plugin.wasm, a WebAssembly component of the WIT world `authorizer`
# (../../wit/authorizer.wit), from plugin.py with componentize-py. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# The toolchain lives in .venv, pinned (with hashes) by requirements.txt; create or update
# it only when it is missing or requirements.txt changed since the last install.
if [[ ! -f .venv/installed || requirements.txt -nt .venv/installed ]]; then
  "${PYTHON:-python3}" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
  touch .venv/installed
fi

# componentize-py generates the `wit_world` bindings from the WIT as it builds, so none
# are kept here. --stub-wasi replaces the WASI imports CPython links in (clocks,
# filesystem, sockets, ...) with stubs that trap if called: the sandbox provides none of
# them, and a component importing them would be refused. What is left imports the host
# interface only. (print() would trap: log through the host instead.)
.venv/bin/componentize-py --quiet --wit-path ../../wit --world authorizer \
  componentize --stub-wasi plugin --output plugin.wasm
rm -rf __pycache__

ls -l plugin.wasm
