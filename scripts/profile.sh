#!/usr/bin/env bash
# Where a `POST /v1/authorize` spends its CPU, beside the trivial handler (`GET /health`):
# the server's CPU time and context switches per request (`perf stat` on the server while
# wrk drives it: a per-request cost, steadier than requests/s on a shared machine), then a
# flat `perf record` of the authorize run grouped by component (kernel, HTTP, plugin
# runtime and JIT code, allocator, JSON, Portcullis…).
#
#   scripts/profile.sh [CONNECTIONS] [SECONDS]     # default 8 connections, 5 s per run
#
# Needs wrk and perf (apt-get install wrk linux-perf) and a release build (built here).
# The release binary has symbols but no frame pointers: the profile is flat (self time).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
CONNS="${1:-8}"
DURATION="${2:-5}"
require_tool wrk "apt-get install wrk"
require_tool perf "apt-get install linux-perf"
# PROFILE_BIN=PATH: measure that build instead (an A/B comparison of two commits);
# PROFILE_STAT_ONLY=1: the per-request table only, no perf record.
# PROFILE_PHASES=1: also call-graph records (DWARF unwinding: a few minutes of `perf
# script`) of both runs, read as inclusive CPU µs per request and phase, side by side.
BIN="${PROFILE_BIN:-target/release/portcullis}"
[ -n "${PROFILE_BIN:-}" ] || cargo build --release -q -p portcullis
WORK="$(mktemp -d)"
cleanup_on_exit "$WORK"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
PASSWORD="profile admin passphrase"
start_decision_server "$BIN" "$WORK/data" "$PORT" "$PASSWORD"
# The same decision as scripts/load.sh.
cat > "$WORK/authorize.lua" <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $KEY"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"subject":{"username":"rita"},"action":"read","resource":{"kind":"document","id":"42","account":"acme"}}'
LUA
# drive RUN SECONDS: wrk against the trivial handler or the decision; its report on stdout.
drive() {
  local target
  if [ "$1" = trivial ]; then target=("$BASE/health"); else target=(-s "$WORK/authorize.lua" "$BASE/v1/authorize"); fi
  wrk -t2 -c"$CONNS" -d"$2s" "${target[@]}"
}
drive authorize 2 >/dev/null

echo "# portcullis profile: $(nproc) cores, $CONNS connections, ${DURATION}s per run"
printf '%-22s %9s %12s %12s\n' run "req/s" "CPU µs/req" "switches/req"
for run in trivial authorize; do
  perf stat -x, -e task-clock,context-switches -p "$SERVER_PID" -o "$WORK/stat-$run" -- sleep "$DURATION" &
  stat_pid=$!
  out=$(drive "$run" "$DURATION")
  wait "$stat_pid" || true
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  python3 - "$WORK/stat-$run" "$requests" "$rps" "$run" <<'PY'
import sys
path, requests, rps, run = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
values = {}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0] and parts[0][0].isdigit():
        values[parts[2]] = float(parts[0])
label = {"trivial": "trivial (GET /health)", "authorize": "POST /v1/authorize"}[run]
cpu = values['task-clock'] * 1000 / requests
print(f"{label:<22} {rps:>9} {cpu:>12.1f} {values['context-switches'] / requests:>12.2f}")
open(path + ".cpu", "w").write(str(cpu))
PY
done

[ -z "${PROFILE_STAT_ONLY:-}" ] || exit 0
# A flat profile of the authorize run, grouped.
perf record -q -F 2000 -o "$WORK/perf.data" -p "$SERVER_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
record_pid=$!
drive authorize "$DURATION" >/dev/null
wait "$record_pid" || true
echo "# where the server's CPU goes during POST /v1/authorize (perf record, self time)"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol -F overhead,dso,sym 2>/dev/null \
  | python3 -c '
import re, sys, collections
groups = collections.Counter()
rules = [
    ("plugin runtime (wasmtime) and JIT code", r"^\[JIT|wasmtime|cranelift"),
    ("allocator", r"rjem|__rust_alloc|__rust_dealloc|__rust_realloc|__rust_no_alloc"),
    ("HTTP (hyper, http, httparse)", r"hyper|^<?http::|httparse"),
    ("routing and middleware (axum, tower)", r"axum|tower"),
    ("async runtime (tokio)", r"tokio|mio::"),
    ("JSON (serde)", r"serde"),
    ("metrics (prometheus-client)", r"prometheus"),
    ("Portcullis", r"portcullis_"),
]
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\[kernel\.kallsyms\]|\[JIT\] tid \d+|\S+)\s+\[.\]\s+(.*)", line)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    if dso.startswith("[kernel"):
        groups["kernel (sockets, wake-ups, scheduling)"] += pct
        continue
    if dso.startswith("lib") and not re.search(r"rjem", sym):
        groups["libc (memmove, memcmp, …)"] += pct
        continue
    key = dso if dso.startswith("[JIT") else sym.lstrip("<&")
    for name, pattern in rules:
        if re.search(pattern, key):
            groups[name] += pct
            break
    else:
        groups["other (core, alloc, std, smaller crates)"] += pct
for name, pct in groups.most_common():
    print(f"{pct:6.1f} %  {name}")
'

[ -n "${PROFILE_PHASES:-}" ] || exit 0
# Inclusive time per phase of a request: a call-graph record of each run, each sample
# counted once in every phase one of its frames belongs to (so phases nest: the handler
# holds the key check, the body, the decision…), in µs per request from the CPU per request
# above. wasmtime runs the plugin on its own stack (a fiber), which the unwinder does not
# walk back into the handler: those samples are their own row.
for run in trivial authorize; do
  perf record -q -F 499 --call-graph dwarf,65528 -o "$WORK/phases-$run.data" -p "$SERVER_PID" -- sleep 2 >/dev/null 2>&1 &
  record_pid=$!
  drive "$run" 3 >/dev/null
  wait "$record_pid" || true
  perf script -i "$WORK/phases-$run.data" -F ip,sym 2>/dev/null >"$WORK/phases-$run.txt"
done
echo "# inclusive CPU per request by phase (call graphs; µs = share × CPU µs/req above)"
python3 - "$WORK" <<'PY'
import re, sys
work = sys.argv[1]
phases = [
    ("request handler (everything below)", r"Handler<\(M,T\d?(,T\d)*\),S>>::call"),
    ("  key check (bearer, SHA-256, caches)", r"session::authenticate_as|session::bearer"),
    ("  reading the body", r"into_limited_body|combinators::collect::Collect"),
    ("  JSON in (serde_json)", r"serde_json::de::"),
    ("  the decision (host side of the plugin call, log)", r"App::decide_request"),
    ("    converting the request for the plugin", r"convert::request_to_v2"),
    ("    decision log entry", r"Authz<Q>::log"),
    ("  decision id", r"authorizer::decision_id"),
    ("  JSON out", r"Json<T> as axum_core::response::into_response::IntoResponse>::into_response"),
    ("plugin code and wasmtime on the fiber stack", r"wasmtime_fiber_start"),
    ("middleware and routing, outside the handler", r"RouteFuture|from_fn|MapFuture|Trace<S>|tower::util", r"Handler<"),
    ("reading requests (hyper, recv)", r"poll_read_head|poll_read_body|poll_read_keep_alive"),
    ("writing answers (hyper, writev, loopback delivery)", r"Buffered<T,B>::poll_flush"),
    ("tokio scheduling and parking", r"worker::Context::park|Context::maybe_maintenance|Driver::park"),
]
compiled = [(name, re.compile(p[0]), re.compile(p[1]) if len(p) > 1 else None) for name, *p in phases]
def read(run):
    counts = {name: 0 for name, *_ in phases}
    total = unknown = 0
    frames = []
    def flush():
        nonlocal total, unknown
        if not frames:
            return
        total += 1
        if not any(f in ("clone3", "start_thread") or "fiber_start" in f for f in frames[-3:]):
            unknown += 1
        for name, p, unless in compiled:
            if any(p.search(f) for f in frames) and not (
                unless and any(unless.search(f) for f in frames)
            ):
                counts[name] += 1
    for line in open(f"{work}/phases-{run}.txt"):
        if not line.strip():
            flush(); frames = []; continue
        if line[0] not in " \t":
            frames = []; continue
        parts = line.split(None, 1)
        frames.append(parts[1].strip() if len(parts) > 1 else parts[0])
    flush()
    cpu = float(open(f"{work}/stat-{run}.cpu").read())
    total = max(total, 1)
    return {k: v / total for k, v in counts.items()}, unknown / total, cpu
t, tu, tcpu = read("trivial")
a, au, acpu = read("authorize")
print(f"{'phase':<52} {'trivial µs':>10} {'authorize µs':>12}")
for name, *_ in phases:
    print(f"{name:<52} {t[name] * tcpu:>10.1f} {a[name] * acpu:>12.1f}")
print(f"{'all (CPU µs per request)':<52} {tcpu:>10.1f} {acpu:>12.1f}")
print(f"{'(share of samples not unwound to a thread start)':<52} {100 * tu:>9.1f}% {100 * au:>11.1f}%")
PY
