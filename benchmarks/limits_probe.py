"""Black-box probes of the server's limits (issue #20), on loopback: what a hostile or careless
client can do to the metrics, the request places, the header limit and the error contract.
What one request may take in memory and time (issue #25) is ``benchmarks/budget_probe.py``.

    python -m benchmarks.limits_probe                      # starts python -m fastlrnr.server.serve on artifacts/
    python -m benchmarks.limits_probe --url http://127.0.0.1:8000 --pid 1234   # a running server

Probes, each bounded in requests and time:

  methods    ``--methods`` requests to /nope, each with its own 60 kB method (answered 404) →
             the /metrics size, the scrape's time and /healthz's time after them;
  trickle    ``--tricklers`` clients each declare a 5000-byte /solve body and send one byte
             every 0.5 s (reconnecting when the server closes them), for ``--trickle-seconds``;
             meanwhile another client posts a small /solve once a second → the share answered 200;
  header     a 100 kB and a 66 000-byte request head, each in one write → the status;
  contract   bad inputs with their documented status and error code;
  sigterm    (own server, ``graceful_shutdown_s`` 3) a client trickles a body, SIGTERM → what the
             client receives and the log levels.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from benchmarks.server import LOOPBACK, ROOT, Server, is_loopback, proc_memory

SMALL = {"params": {"beta": 2.0, "nu": 1.0, "rho": 1.0}, "grid": {"nx": 16, "nt": 8}, "fast_phase": {"enabled": False}}
PROBES = ("methods", "trickle", "header", "contract", "sigterm")


def exchange(host: str, port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` in one write; everything the server answers until it closes (or ``timeout``)."""
    reply = b""
    with socket.create_connection((host, port), timeout=timeout) as s, contextlib.suppress(OSError):
        s.sendall(data)
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def status_of(reply: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", reply)
    return int(m.group(1)) if m else None


def methods(url: str, count: int) -> dict:
    u = urlparse(url)
    t0 = time.perf_counter()
    answers: dict[str, int] = {}
    for i in range(count):
        head = b"X" * 60000 + str(i).encode() + b" /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        key = str(status_of(exchange(u.hostname, u.port, head)))
        answers[key] = answers.get(key, 0) + 1
    sent_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    scrape = httpx.get(f"{url}/metrics", timeout=60)
    scrape_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    health = httpx.get(f"{url}/healthz", timeout=60)
    return {
        "requests": count,
        "answers": answers,
        "seconds": round(sent_s, 2),
        "metrics_bytes": len(scrape.content),
        "metrics_scrape_s": round(scrape_s, 3),
        "healthz_s": round(time.perf_counter() - t2, 4),
        "healthz_status": health.status_code,
    }


class Trickler(threading.Thread):
    """Keeps one /solve open whose body arrives one byte per ``every`` seconds; reconnects when closed."""

    def __init__(self, host: str, port: int, stop: threading.Event, every: float = 0.5):
        super().__init__(daemon=True)
        self.host, self.port, self.stop, self.every = host, port, stop, every
        self.replies: dict[str, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=self.every) as s:
                    s.sendall(
                        b"POST /solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 5000\r\n\r\n{"
                    )
                    while not self.stop.is_set():
                        try:
                            data = s.recv(4096)
                        except TimeoutError:
                            s.sendall(b" ")
                            continue
                        key = str(status_of(data)) if data else "closed"
                        self.replies[key] = self.replies.get(key, 0) + 1
                        break
            except OSError:
                time.sleep(0.05)


def trickle(url: str, tricklers: int, seconds: float) -> dict:
    u = urlparse(url)
    stop = threading.Event()
    threads = [Trickler(u.hostname, u.port, stop) for _ in range(tricklers)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every trickler past the 0.5 s after which a body counts as slow
    probes: list[tuple[int | str, float]] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                status: int | str = httpx.post(f"{url}/solve", json=SMALL, timeout=10).status_code
            except httpx.TransportError as exc:
                status = type(exc).__name__
            dt = time.perf_counter() - t0
            probes.append((status, dt))
            time.sleep(max(0.0, 1.0 - dt))
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    replies: dict[str, int] = {}
    for t in threads:
        for k, v in t.replies.items():
            replies[k] = replies.get(k, 0) + v
    ok = [dt for s, dt in probes if s == 200]
    slow = re.search(r"^fastlrnr_slow_bodies (\S+)$", metrics, re.M)
    return {
        "tricklers": tricklers,
        "seconds": seconds,
        "probes": len(probes),
        "probes_200": len(ok),
        "share_200": round(len(ok) / max(len(probes), 1), 3),
        "probe_statuses": sorted({str(s) for s, _ in probes}),
        "slowest_200_s": round(max(ok), 3) if ok else None,
        "trickler_replies": replies,
        "slow_bodies_at_end": float(slow.group(1)) if slow else None,
    }


def header(url: str) -> dict:
    u = urlparse(url)
    out = {}
    for size in (100_000, 66_000):
        start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
        head = start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"
        out[f"{size}_bytes_one_write"] = status_of(exchange(u.hostname, u.port, head))
    return out


CONTRACT = [
    # (label, raw body, expected status, expected code)
    ("NaN", b'{"params": {"beta": NaN}}', 422, "validation_error"),
    ("Infinity", b'{"params": {"beta": Infinity}}', 422, "validation_error"),
    ("1e999", b'{"params": {"beta": 1e999}}', 422, "validation_error"),
    ("NaN as nx", b'{"params": {"beta": 2}, "grid": {"nx": NaN, "nt": 4}}', 422, "validation_error"),
    ("invalid UTF-8", b'{"params": {"beta": 2}, "model": "\xff"}', 422, "invalid_json"),
    ("syntax", b'{"params": ', 422, "invalid_json"),
    ("beta = 3 + 1e-10", b'{"params": {"beta": 3.0000000001}}', 422, "out_of_domain"),
    (
        "fixed nu extrapolated",
        b'{"model": "convection", "params": {"beta": 5, "nu": 0.5}, "allow_extrapolation": true}',
        422,
        "out_of_domain",
    ),
    ("huge grid", b'{"params": {"beta": 2}, "grid": {"nx": 100000, "nt": 100000}}', 413, "grid_too_large"),
    ("unknown model", b'{"model": "nope", "params": {"beta": 2}}', 404, "unknown_model"),
]


def contract(url: str) -> dict:
    out = {}
    with httpx.Client(base_url=url, timeout=30) as c:
        for label, raw, status, code in CONTRACT:
            r = c.post("/solve", content=raw, headers={"content-type": "application/json"})
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            out[label] = {
                "status": r.status_code,
                "code": body.get("error"),
                "as_documented": r.status_code == status and body.get("error") == code,
                "message": str(body.get("message"))[:160],
            }
    return out


def sigterm(artifact_dir: Path, base: dict, log: Path) -> dict:
    server = Server({**base, "FASTLRNR_GRACEFUL_SHUTDOWN_S": "3", "FASTLRNR_LOG_LEVEL": "INFO"}, log, artifact_dir)
    try:
        server.wait_ready(180)
        s = socket.create_connection(("127.0.0.1", server.port), timeout=0.3)
        s.sendall(b"POST /solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{")
        time.sleep(0.5)
        t0 = time.perf_counter()
        server.proc.send_signal(signal.SIGTERM)
        reply = b""
        while server.proc.poll() is None or not reply:
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            except TimeoutError:
                with contextlib.suppress(OSError):
                    s.sendall(b" ")
            except OSError:
                break
            if time.perf_counter() - t0 > 30:
                break
        server.proc.wait(30)
        exited = time.perf_counter() - t0
        s.close()
    finally:
        server.stop()
    levels: dict[str, int] = {}
    for line in log.read_text().splitlines():
        level = json.loads(line).get("level", "?")
        levels[level] = levels.get(level, 0) + 1
    head, _, body = reply.partition(b"\r\n\r\n")
    return {
        "exit_s_after_sigterm": round(exited, 2),
        "client_got": head.split(b"\r\n")[0].decode(errors="replace") if head else "connection closed",
        "client_body": body.decode(errors="replace")[:200],
        "log_levels": levels,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="probe a running server (loopback only) instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    p.add_argument("--artifact-dir", type=Path, default=ROOT / "artifacts")
    p.add_argument("--probes", default=",".join(PROBES), help=f"comma-separated subset of {PROBES}")
    p.add_argument("--methods", type=int, default=300)
    p.add_argument("--tricklers", type=int, default=64)
    p.add_argument("--trickle-seconds", type=float, default=20.0)
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    probes = set(args.probes.split(","))
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url, pid = args.url, args.pid
        if url:
            if not is_loopback(url):
                p.error(f"--url must point at loopback ({sorted(LOOPBACK)})")
        elif probes - {"sigterm"}:
            server = Server({}, Path(tmp) / "server.log", args.artifact_dir)
            server.wait_ready(180)
            url, pid = server.url, server.proc.pid
        try:
            for name, run in (
                ("methods", lambda: methods(url, args.methods)),
                ("trickle", lambda: trickle(url, args.tricklers, args.trickle_seconds)),
                ("header", lambda: header(url)),
                ("contract", lambda: contract(url)),
            ):
                if name in probes:
                    results[name] = run()
                    if pid:
                        results[name]["server_memory_mib"] = proc_memory(pid)
                    print(json.dumps({name: results[name]}), flush=True)
        finally:
            if server is not None:
                server.stop()
        if "sigterm" in probes and not args.url:
            results["sigterm"] = sigterm(args.artifact_dir, {}, Path(tmp) / "server-sigterm.log")
            print(json.dumps({"sigterm": results["sigterm"]}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
