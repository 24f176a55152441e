"""Load test with hostile traffic (issue 11): oversize and junk bodies from many clients, while an honest
client keeps looking risk rows up. Loopback only, bounded in time and in requests.

A real uvicorn server (``serving.app:create_app``, default limits: 16 MiB bodies, 50 requests/s per client
address, burst 100) on an SQLite store of scored entities. The attackers are threads, each bound to its
own loopback address (127.0.0.2 …), so the server sees many clients:

- ``declared``: POST with ``Content-Length: 1 GiB``, no token, then as much body as the server takes;
- ``chunked``: a chunked POST streaming junk past the limit, with a valid token (an insider);
- ``no-token``: 1 MiB of junk to a protected route without a token;
- ``junk``: 256 KiB of junk JSON with a valid token (read, parsed, refused);
- ``flood``: small requests pipelined, from threads sharing one address: one client asking too fast.

Meanwhile the honest client (127.0.0.1) looks up risk rows at a steady rate well under its limit, first
alone (the baseline), then under attack. The server's resident memory is sampled every 0.2 s. Prints the
answers each kind of attack got, the lookups' success and latency alone and under attack, and the server's
memory before, at its peak and after.

    python benchmarks/bench_abuse.py [--seconds 20] [--attackers 32] [--entities 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_service as svc  # noqa: E402  (the benchmark's servers, data and tokens)

WORK = svc.ROOT / "var" / "bench-abuse"
KINDS = ("declared", "chunked", "no-token", "junk", "flood")


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children (uvicorn runs the app in the process it starts)."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _status(data: bytes) -> str:
    if data.startswith(b"HTTP/1.1 "):
        return data[9:12].decode()
    return "closed" if not data else "garbled"


def attack(kind: str, address: str, port: int, token: str, stop: threading.Event, tally: Counter, cap: int) -> None:
    """Send ``kind`` requests from ``address`` until ``stop`` or ``cap`` requests; count the answers."""
    junk = os.urandom(1 << 20)
    sent = 0
    while not stop.is_set() and sent < cap:
        sent += 1
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0)) as conn:
                answer = _send(kind, conn, token, junk)
        except OSError as exc:
            answer = type(exc).__name__
        if "x" in answer:  # pipelined: one count per answer
            for part in answer.split(","):
                code, n = part.split("x")
                tally[f"{kind} {code}"] += int(n)
        else:
            tally[f"{kind} {answer}"] += 1
        if kind != "flood":
            time.sleep(random.uniform(0, 0.05))


def _send(kind: str, conn: socket.socket, token: str, junk: bytes) -> str:
    auth = f"Authorization: Bearer {token}\r\n"
    if kind == "declared":
        conn.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Content-Length: 1073741824\r\n\r\n")
        try:
            for _ in range(64):  # the server answers at once and stops reading
                conn.sendall(junk)
        except OSError:
            pass
    elif kind == "chunked":
        head = f"POST /v1/sampling/draws HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n"
        conn.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n")
        try:
            for _ in range(24):  # 24 MiB: past the 16 MiB limit
                conn.sendall(b"%x\r\n" % len(junk) + junk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass
    elif kind == "no-token":
        conn.sendall(b"POST /v1/entities/risk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Content-Length: %d\r\n\r\n" % len(junk))
        with contextlib.suppress(OSError):
            conn.sendall(junk)
    elif kind == "junk":
        body = junk[: 256 << 10]
        head = f"POST /v1/entities/risk HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
        conn.sendall(head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    else:  # 50 requests pipelined on one connection: faster than any client may ask
        conn.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 49
            + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                data += chunk
        codes = Counter(data[i + 9 : i + 12].decode() for i in _starts(data))
        return ",".join(f"{code}x{n}" for code, n in sorted(codes.items())) or "closed"
    try:
        return _status(conn.recv(64))
    except OSError as exc:
        return type(exc).__name__


def _starts(data: bytes) -> list[int]:
    found, i = [], data.find(b"HTTP/1.1 ")
    while i >= 0:
        found.append(i)
        i = data.find(b"HTTP/1.1 ", i + 1)
    return found


def _address(kind: str, i: int) -> str:
    """Each attacker its own loopback address; the flooders share one (one client sending too fast)."""
    return "127.0.9.9" if kind == "flood" else f"127.0.{1 + i // 250}.{2 + i % 250}"


def lookups(base_url: str, token: str, ids: list[str], seconds: float, rate: float) -> dict[str, float]:
    """Look up risk rows at ``rate`` per second for ``seconds``; success and latency."""
    latencies, failures = [], Counter()
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status = client.get(f"/v1/entities/{random.choice(ids)}/risk").status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            elapsed = time.perf_counter() - started
            if status == 200:
                latencies.append(elapsed * 1000)
            else:
                failures[str(status)] += 1
            time.sleep(max(0.0, 1 / rate - elapsed))
    ordered = sorted(latencies) or [float("nan")]
    return {
        "ok": len(latencies),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="length of the attack (and of the baseline)")
    parser.add_argument("--attackers", type=int, default=32, help="attacking threads, one address each")
    parser.add_argument("--cap", type=int, default=2000, help="requests per attacker at most")
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=25, help="the honest client's lookups per second")
    parser.add_argument("--kinds", default=",".join(KINDS), help="the attacks to run (comma-separated)")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k in KINDS]

    WORK.mkdir(parents=True, exist_ok=True)
    svc.WORK = WORK  # the servers' logs go here
    url = f"sqlite:///{WORK / 'abuse.db'}"
    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    entities, scores = svc.synthetic_run(args.entities, seed=5)
    svc.store(url, entities, scores)
    supervisor = svc.token(url, "supervisor")
    env = {
        "IPCREDIT_DATABASE_URL": url,
        "IPCREDIT_MODEL_URI": str(WORK / "no-model"),
        "IPCREDIT_DATA_DIR": str(WORK),
        "IPCREDIT_RATE_LIMIT_PER_SECOND": "50",  # the default: the benchmark's servers otherwise turn it off
    }
    port = svc.free_port()
    server = svc.uvicorn("serving.app:create_app", port, env, factory=True)
    ids = entities.entity_id.tolist()
    memory: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not sampling.is_set():
            memory.append((time.monotonic() - started, rss_mib(server.process.pid)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        lookups(server.url, supervisor, ids, 3, args.rate)  # warm up
        sampler.start()
        before = rss_mib(server.process.pid)
        alone = lookups(server.url, supervisor, ids, args.seconds, args.rate)
        stop, tally = threading.Event(), Counter()
        attackers = [
            threading.Thread(
                target=attack,
                args=(
                    kinds[i % len(kinds)],
                    _address(kinds[i % len(kinds)], i),
                    port,
                    supervisor,
                    stop,
                    tally,
                    args.cap,
                ),
                daemon=True,
            )
            for i in range(args.attackers)
        ]
        attack_started = time.monotonic()
        for t in attackers:
            t.start()
        under = lookups(server.url, supervisor, ids, args.seconds, args.rate)
        stop.set()
        for t in attackers:
            t.join(timeout=30)
        attack_seconds = time.monotonic() - attack_started
        time.sleep(3)
        after = rss_mib(server.process.pid)
        sampling.set()
        sampler.join()
        final = lookups(server.url, supervisor, ids, 3, args.rate)
    finally:
        server.stop()
    peak = max(m for _, m in memory)

    print(f"\nbench_abuse: {os.cpu_count()} cores, load average {svc.load_average()}")
    print(
        f"{args.attackers} attackers ({', '.join(kinds)}) for {attack_seconds:.1f} s, at most {args.cap} requests each"
    )
    print("\n| attack | answer | count |\n|---|---|---|")
    for key, count in sorted(tally.items()):
        kind, answer = key.split(" ", 1)
        print(f"| {kind} | {answer} | {count:,} |")
    print(f"\nattack requests in all: {sum(tally.values()):,} ({sum(tally.values()) / attack_seconds:,.0f}/s)")
    print("\n| honest lookups (GET /v1/entities/{id}/risk) | ok | failed | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for label, r in (("alone", alone), ("under attack", under), ("after", final)):
        failed = f"{r['failed']} {r['failures'] or ''}".strip()
        print(f"| {label} | {r['ok']} | {failed} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |")
    print(f"\nserver resident memory: before {before:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB")
    timeline = ", ".join(f"{t:.0f} s {m:.0f}" for t, m in memory[:: max(1, len(memory) // 12)])
    print(f"resident memory over time (MiB): {timeline}")


if __name__ == "__main__":
    main()
