"""The abuse phases of ``load_test``: what a careless or hostile client does to a running server
on loopback.

  flood        2 clients posting invalid 1 MiB bodies (four kinds in turn) while one client
               times a small /solve → its p50/p99 against the same probe without the flood;
  header       one client sends a 64 MiB header → bytes taken before the server cuts it
               off, and the slowest /healthz answered meanwhile;
  sigterm      (own server, graceful_shutdown_s = ``grace``) a client trickles a body; SIGTERM →
               seconds until the process exits.

``benchmarks/limits_probe.py`` probes the server's limits one by one; these measure what the
abuse costs the clients that behave.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from benchmarks.load_phases import client, ms, percentile, solve_body
from benchmarks.server import Server

MIB = 1 << 20


def invalid_bodies(size: int = MIB - 4096) -> list[tuple[str, bytes]]:
    """Four kinds of ~1 MiB bodies the service must refuse (422), each costly in its own way."""
    n_pts = size // 14
    strings = json.dumps({"params": {"beta": 2}, "grid": {"points": [["a", "b"]] * (size // 12)}}).encode()
    out_of_domain = json.dumps({"params": {"beta": 99.0}, "grid": {"points": [[0.5, 0.5]] * n_pts}}).encode()
    bad_end = json.dumps({"params": {"beta": 2}, "grid": {"points": [[0.5, 0.5]] * n_pts}}).encode()[:-2] + b"]]"
    extra_keys = json.dumps({"params": {"beta": 2}, **{f"k{i}": i for i in range(size // 17)}}).encode()
    bodies = [
        ("many_errors", strings),
        ("out_of_domain", out_of_domain),
        ("invalid_json_at_end", bad_end),
        ("unknown_keys", extra_keys),
    ]
    return [(kind, body) for kind, body in bodies if len(body) <= size + 4096]


def probe_solves(url: str, mus: list[dict], args, seconds: float, stop: threading.Event | None = None) -> list[float]:
    lat: list[float] = []
    deadline = time.monotonic() + seconds
    with client(url, args) as c:
        i = 0
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            t0 = time.perf_counter()
            r = c.post("/solve", json=solve_body(mus[i % len(mus)], args, nx=32, nt=10))
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text[:300]
            i += 1
    return lat


def flood(url: str, mus: list[dict], args) -> dict:
    """2 clients flood invalid 1 MiB bodies; a third times small solves (compared with no flood)."""
    quiet = probe_solves(url, mus, args, args.flood_seconds / 2)
    bodies = invalid_bodies(args.max_body - 4096)
    stop = threading.Event()
    sent: dict[str, int] = {}
    lock = threading.Lock()

    def flooder(k: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            i = k
            while not stop.is_set():
                kind, body = bodies[i % len(bodies)]
                r = c.post("/solve", content=body, headers={"content-type": "application/json"})
                with lock:
                    key = f"{kind}:{r.status_code}"
                    sent[key] = sent.get(key, 0) + 1
                i += 1

    threads = [threading.Thread(target=flooder, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    try:
        loud = probe_solves(url, mus, args, args.flood_seconds)
    finally:
        stop.set()
        for th in threads:
            th.join()
    return {
        "probe_grid": [10, 32],
        "without_flood_p50_ms": ms(quiet, 50),
        "without_flood_p99_ms": ms(quiet, 99),
        "with_flood_p50_ms": ms(loud, 50),
        "with_flood_p99_ms": ms(loud, 99),
        "probe_solves": len(loud),
        "ratio_p50": round(percentile(loud, 50) / percentile(quiet, 50), 2),
        "flood_answers": sent,
        "body_bytes": {k: len(b) for k, b in bodies},
    }


def big_header(url: str, size: int = 64 * MIB) -> dict:
    """Send a ``size``-byte header; count what the server takes before it cuts the connection off,
    while another client polls /healthz."""
    host, port = urlparse(url).hostname, urlparse(url).port
    slowest, stop = [0.0], threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                c.get("/healthz")
                slowest[0] = max(slowest[0], time.perf_counter() - t0)
                time.sleep(0.02)

    th = threading.Thread(target=poll)
    th.start()
    sent, reply, t0 = 0, b"", time.perf_counter()
    chunk = b"a" * (64 * 1024)
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                while sent < size:
                    sent += s.send(chunk)
            except OSError:
                pass
            try:
                s.settimeout(2)
                reply = s.recv(200)
            except OSError:
                pass
    finally:
        time.sleep(0.3)
        stop.set()
        th.join()
    return {
        "header_bytes_offered": size,
        "bytes_taken_before_cutoff": sent,
        "cut_off": sent < size,
        "seconds": round(time.perf_counter() - t0, 2),
        "reply": reply.split(b"\r\n", 1)[0].decode("latin-1"),
        "healthz_slowest_ms": round(slowest[0] * 1e3, 1),
    }


def sigterm_with_slow_client(artifact_dir: Path, env: dict[str, str], grace: float, log: Path) -> dict:
    """A client trickles a body (1 byte / 0.5 s); SIGTERM → seconds until the server process exits."""
    server = Server({**env, "FASTLRNR_GRACEFUL_SHUTDOWN_S": str(grace)}, log, artifact_dir)
    try:
        server.wait_ready(180)
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST /solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
        stop = threading.Event()

        def trickle() -> None:
            while not stop.is_set():
                try:
                    s.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.5)

        th = threading.Thread(target=trickle)
        th.start()
        time.sleep(1.0)
        t0 = time.perf_counter()
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(grace + 30)
        finally:
            exit_s = time.perf_counter() - t0
            stop.set()
            th.join()
            s.close()
        return {
            "graceful_shutdown_s": grace,
            "exit_after_s": round(exit_s, 2),
            "within_grace": exit_s <= grace,
            "returncode": server.proc.returncode,
        }
    finally:
        server.stop()
