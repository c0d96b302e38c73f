"""The deployed server (``python -m fastlrnr.server.serve``) in a subprocess: defects D2, D3, D4 of the
black-box probe, the request-body deadline, gzip over the wire and JSON-only logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``python -m fastlrnr.server.serve`` on a free port with FASTLRNR_* overrides; stderr kept in a file."""

    def __init__(self, root: Path, log: Path, **settings: object):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "FASTLRNR_ARTIFACT_DIR": str(root),
            "FASTLRNR_PORT": str(self.port),
            "FASTLRNR_WARMUP": "false",
            **{f"FASTLRNR_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fastlrnr.server.serve"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(self.log.read_text()[-3000:])

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def connect(port: int, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


class Poller(threading.Thread):
    """GET /healthz in a loop on fresh connections; keeps the slowest answer and any failure."""

    def __init__(self, url: str):
        super().__init__()
        self.url, self.stop, self.slowest, self.failures, self.count = url, threading.Event(), 0.0, [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                assert httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
                self.count += 1
            except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
                self.failures.append(repr(exc))
            self.slowest = max(self.slowest, time.perf_counter() - t0)
            time.sleep(0.02)


# ------------------------------------------------------------------ D2: header size limit


@pytest.mark.slow
def test_d2_huge_header_is_cut_off_early_and_health_stays_fast(artifact_root, tmp_path):
    with Served(artifact_root, tmp_path / "server.log") as srv:
        poller = Poller(srv.url)
        poller.start()
        sent, reply = 0, b""
        try:
            with connect(srv.port) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
                chunk = b"a" * (64 * 1024)
                with contextlib.suppress(OSError):  # the server closes the connection mid-header
                    while sent < 64 * MIB:
                        sent += s.send(chunk)
                with contextlib.suppress(OSError):
                    reply = s.recv(100)
            time.sleep(0.3)
        finally:
            poller.stop.set()
            poller.join(10)
        assert sent < 8 * MIB, f"the server took {sent} bytes of header"
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply
        assert poller.failures == [] and poller.count > 0 and poller.slowest < 1.0, (poller.slowest, poller.failures)


# ------------------------------------------------------------------ D3: connection cap, header deadline


@pytest.mark.slow
def test_d3_slow_connections_cannot_exhaust_the_server(artifact_root, tmp_path):
    with Served(artifact_root, tmp_path / "server.log", max_connections=40, header_timeout_s=1.5) as srv:
        base = srv.open_fds()
        slow = []
        try:
            for _ in range(150):  # slowloris: a request line, never the end of the headers
                s = connect(srv.port)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)
            time.sleep(0.2)
            assert srv.open_fds() <= base + 40 + 2  # never more than the cap, whatever was opened
            t0 = time.perf_counter()
            assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200  # room made at once
            assert time.perf_counter() - t0 < 1.0
            time.sleep(2.0)  # past the header deadline: the ones still open got 408 and were closed
            answers = []
            for s in slow:
                s.settimeout(0.5)
                try:
                    answers.append(s.recv(100))
                except OSError:
                    answers.append(b"")
            assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers)
            assert any(a.startswith(b"HTTP/1.1 408") for a in answers)
            assert srv.open_fds() <= base + 2
        finally:
            for s in slow:
                s.close()


# ------------------------------------------------------------------ D4: SIGTERM with a slow client


@pytest.mark.slow
def test_d4_sigterm_exits_within_the_grace_period_despite_a_trickling_client(artifact_root, tmp_path):
    grace = 3.0
    with Served(artifact_root, tmp_path / "server.log", graceful_shutdown_s=grace) as srv:
        s = connect(srv.port)
        s.sendall(b"POST /solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{")
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.3):
                try:
                    s.sendall(b" ")
                except OSError:
                    return

        th = threading.Thread(target=trickle)
        th.start()
        try:
            time.sleep(0.5)
            t0 = time.perf_counter()
            srv.proc.send_signal(signal.SIGTERM)
            srv.proc.wait(grace + 20)
            elapsed = time.perf_counter() - t0
        finally:
            stop.set()
            th.join(5)
            s.close()
        assert elapsed <= grace + 0.5, f"exited {elapsed:.2f} s after SIGTERM; the grace period is {grace} s"
        assert srv.proc.returncode in (0, -signal.SIGTERM)


# ------------------------------------------------------------------ deadlines, compression, logs


@pytest.mark.slow
def test_body_deadline_answers_408_and_closes(artifact_root, tmp_path):
    with Served(artifact_root, tmp_path / "server.log", body_timeout_s=1) as srv:
        with connect(srv.port) as s:
            s.sendall(
                b"POST /solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            t0 = time.perf_counter()
            reply = b""
            while True:
                data = s.recv(4096)
                if not data:
                    break
                reply += data
        assert time.perf_counter() - t0 < 5
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
        assert json.loads(body)["error"] == "body_timeout"


@pytest.mark.slow
def test_gzip_over_the_wire_and_every_log_line_is_json(artifact_root, tmp_path):
    with Served(artifact_root, tmp_path / "server.log", gzip_min_bytes=1000) as srv:
        body = {"params": MU, "grid": {"nx": 64, "nt": 20}, "fast_phase": {"enabled": False}}
        with httpx.Client(base_url=srv.url) as c:
            plain = c.post("/solve", json=body, headers={"Accept-Encoding": "identity"})
            packed = c.post("/solve", json=body, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers and packed.headers["content-encoding"] == "gzip"
        assert packed.json()["u"] == plain.json()["u"] and "compress;dur=" in packed.headers["server-timing"]
        assert packed.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
        assert packed.num_bytes_downloaded < 0.7 * plain.num_bytes_downloaded
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(30)
    lines = srv.log_lines()
    assert len(lines) > 5
    records = [json.loads(line) for line in lines]  # every line on stderr is one JSON object
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "fastlrnr.app", "fastlrnr.access"} <= loggers
    assert all({"ts", "level", "msg"} <= set(r) for r in records)
