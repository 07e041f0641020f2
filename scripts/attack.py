#!/usr/bin/env python3
"""Replay the resource-exhaustion attacks of the security review (docs/security.md)
against a running Portcullis server and print, for each, what it cost the server:
resident memory (now and peak), data-directory growth and open file descriptors.

Used by scripts/attack.sh, which builds and starts a release server. Standard library
only; every client is on loopback.
"""
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

BASE_HOST, BASE_PORT = "127.0.0.1", int(os.environ["PORT"])
PID = int(os.environ["PID"])
DATA = os.environ["DATA"]
PASSWORD = os.environ["PASSWORD"]


def status_kib(field):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def data_bytes():
    total = 0
    for root, _, files in os.walk(DATA):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def request(method, path, body=None, key=None, headers=None, timeout=120):
    conn = http.client.HTTPConnection(BASE_HOST, BASE_PORT, timeout=timeout)
    h = dict(headers or {})
    if key:
        h["Authorization"] = f"Bearer {key}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body, ensure_ascii=False).encode()
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def login(username, password):
    status, data = request("POST", "/v1/login", {"username": username, "password": password})
    assert status == 200, (status, data)
    return json.loads(data)["api_key"]


def snapshot():
    return {
        "rss": status_kib("VmRSS"),
        "hwm": status_kib("VmHWM"),
        "data": data_bytes(),
        "fds": fds(),
    }


ROWS = []


def measure(name, attack):
    before = snapshot()
    started = time.time()
    note = attack() or ""
    after = snapshot()
    ROWS.append((name, before, after, time.time() - started, note))


# ------------------------------------------------------------------ the attacks

def huge_usernames():
    name = "é" * 450_000  # 0.9 MB of non-ASCII username (under the 1 MiB body limit)
    codes = set()
    for _ in range(20):
        status, _ = request("POST", "/v1/login", {"username": name, "password": "whatever pass"})
        codes.add(status)
    return f"answers {sorted(codes)}"


def batch_amplification(key):
    context = {f"k{i}": "x" * 4000 for i in range(64)}
    batch = {
        "subject": {"type": "user", "id": "admin"},
        "action": {"name": "read"},
        "resource": {"type": "document", "id": "1"},
        "context": context,
        "evaluations": [{} for _ in range(1000)],
    }
    codes = []

    def one():
        codes.append(request("POST", "/access/v1/evaluations", batch, key=key)[0])

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return f"answers {sorted(codes)}"


def slowloris(n=1000, hold=15):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((BASE_HOST, BASE_PORT), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    time.sleep(1)
    during = fds()
    # Is the server still answering while they hang?
    t0 = time.time()
    status, _ = request("GET", "/health", timeout=60)
    health_s = time.time() - t0
    time.sleep(hold)  # past http.header_read_timeout (10 s by default)
    closed = 0
    for s in socks:
        try:
            s.settimeout(0.01)
            if s.recv(1) == b"":
                closed += 1
        except (socket.timeout, BlockingIOError):
            pass
        except OSError:
            closed += 1
        s.close()
    return (f"{len(socks)} half-sent requests; server fds while held {during}; "
            f"/health {status} in {health_s:.2f} s; closed by the server after {hold} s: {closed}")


def made_up_methods(n=20000):
    conn = http.client.HTTPConnection(BASE_HOST, BASE_PORT, timeout=60)
    for i in range(n):
        conn.request(f"X{i:05d}", "/health")
        r = conn.getresponse()
        r.read()
        if r.getheader("connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(BASE_HOST, BASE_PORT, timeout=60)
    conn.close()
    _, metrics = request("GET", "/metrics")
    return f"/metrics is {len(metrics)} bytes after {n} made-up methods"


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def section(id_, payload):
    return bytes([id_]) + leb(len(payload)) + payload


def compile_bomb(locals_=40_000):
    """A component whose single core function declares `locals_` i64 locals."""
    types = section(1, leb(1) + b"\x60\x00\x00")  # one type: [] -> []
    funcs = section(3, leb(1) + leb(0))
    body = leb(1) + leb(locals_) + b"\x7e" + b"\x0b"  # one run of i64 locals; end
    code = section(10, leb(1) + leb(len(body)) + body)
    module = b"\x00asm\x01\x00\x00\x00" + types + funcs + code
    return b"\x00asm\x0d\x00\x01\x00" + section(1, module)


def bombs(key):
    bomb = compile_bomb()
    results = []

    def one(payload):
        t0 = time.time()
        status, body = request("POST", "/v1/plugins?name=bomb", payload, key=key,
                               headers={"Content-Type": "application/wasm"})
        results.append((status, round(time.time() - t0, 2), body[:120]))

    threads = [threading.Thread(target=one, args=(bomb,)) for _ in range(2)]
    for t in threads:
        t.start()
    t0 = time.time()
    status, _ = request("GET", "/health", timeout=60)
    health = time.time() - t0
    for t in threads:
        t.join()
    return f"uploads {[(s, t) for s, t, _ in results]}; /health {status} in {health:.2f} s; {results[0][2]!r}"


def main():
    admin = login("admin", PASSWORD)
    status, _ = request("POST", "/v1/accounts", {"name": "acme"}, key=admin)
    status, _ = request("POST", "/v1/accounts/acme/users",
                        {"username": "mallory", "password": "mallory passphrase 1"}, key=admin)
    mallory = login("mallory", "mallory passphrase 1")
    time.sleep(1)
    measure("20 logins with a 0.9 MB username (unauthenticated)", huge_usernames)
    measure("3 parallel AuthZEN batches, 1000 items x 256 KiB defaults, no permission",
            lambda: batch_amplification(mallory))
    measure("the same batches from an admin", lambda: batch_amplification(admin))
    measure("1000 half-sent requests (slowloris)", slowloris)
    measure("20 000 requests with made-up HTTP methods", made_up_methods)
    measure("2 compile bombs at once (40 000 locals)", lambda: bombs(admin))

    print(f"{'attack':<72} {'RSS before':>10} {'RSS after':>10} {'peak':>9} {'data +':>9} {'fds':>9}  note")
    for name, b, a, secs, note in ROWS:
        print(f"{name:<72} {b['rss']//1024:>7} MiB {a['rss']//1024:>7} MiB {a['hwm']//1024:>5} MiB "
              f"{(a['data']-b['data'])//1024:>6} KiB {b['fds']:>4}->{a['fds']:<4}  {note}")


if __name__ == "__main__":
    main()
