"""Issue #20 against the deployed server (``python -m fastlrnr.server.serve``): one header limit whatever
the packet boundaries, metrics that unknown methods cannot grow, trickling bodies that cannot
starve the solves, and a clean end for a request still open at the shutdown deadline."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import threading
import time

import httpx
import pytest
from test_server import Served, connect

from fastlrnr.server.http.middleware import SLOW_BODY_AFTER_S

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
SMALL_SOLVE = {"params": MU, "grid": {"nx": 8, "nt": 4}, "fast_phase": {"enabled": False}}
LIMIT = 65_536  # FASTLRNR_MAX_HEADER_BYTES, the default


def head(size: int, method: bytes = b"GET", path: bytes = b"/healthz") -> bytes:
    """A request head (request line + headers + blank line) of exactly ``size`` bytes."""
    start = method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def exchange(port: int, data: bytes, piece: int | None = None) -> bytes:
    """Send ``data`` (in one write, or ``piece``-byte writes with a pause between them) and return
    everything the server answers until it closes the connection."""
    with connect(port) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(OSError):  # the server may close while the rest is on its way
            if piece is None:
                s.sendall(data)
            else:
                for i in range(0, len(data), piece):
                    s.sendall(data[i : i + piece])
                    time.sleep(0.002)
        reply = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                reply += chunk
    return reply


def statuses(reply: bytes) -> list[int]:
    """The status of every response in ``reply`` (a body is never followed by CRLF)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)]


class Trickler(threading.Thread):
    """POST /solve declaring ``length`` bytes, then one byte every ``every`` seconds; keeps the reply."""

    def __init__(self, port: int, length: int = 5000, every: float = 0.2):
        super().__init__(daemon=True)
        self.sock = connect(port, timeout=30)
        self.sock.sendall(
            b"POST /solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(length).encode() + b"\r\n\r\n{"
        )
        self.every, self.stop, self.reply = every, threading.Event(), b""

    def run(self) -> None:
        self.sock.settimeout(self.every)
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                self.reply += chunk
            except TimeoutError:
                with contextlib.suppress(OSError):
                    self.sock.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.sock.close()


@pytest.mark.slow
def test_one_header_limit_in_one_write_in_pieces_and_pipelined(artifact_root, tmp_path):
    with Served(artifact_root, tmp_path / "server.log") as srv:
        for piece in (None, 4096, 1000):
            assert statuses(exchange(srv.port, head(LIMIT), piece)) == [200], piece
            assert statuses(exchange(srv.port, head(LIMIT + 1), piece)) == [400], piece
            assert statuses(exchange(srv.port, head(100_000), piece)) == [400], piece
        # a small request with a 100 kB one behind it, in one write: the second is refused
        keep = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        assert statuses(exchange(srv.port, keep + head(100_000))) == [200, 400]
        assert statuses(exchange(srv.port, keep + head(LIMIT))) == [200, 200]
        # a small head with a large body in the same write: the body does not count
        body = json.dumps({"params": MU, "grid": {"points": [[0.5, 0.5]] * 12_000}}).encode()
        post = b"POST /solve HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        assert len(body) > 2 * LIMIT and statuses(exchange(srv.port, post + body)) == [200]
        assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200


@pytest.mark.slow
def test_unknown_methods_cannot_grow_the_metrics(artifact_root, tmp_path):
    with Served(artifact_root, tmp_path / "server.log") as srv:
        for i in range(40):  # each a unique 60 kB method: 404, counted as method="other"
            assert statuses(exchange(srv.port, head(62_000, method=b"X" * 60_000 + str(i).encode(), path=b"/nope")))
        t0 = time.perf_counter()
        metrics = httpx.get(f"{srv.url}/metrics", timeout=10)
        assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200
        assert time.perf_counter() - t0 < 0.5
        assert len(metrics.content) < 100_000, len(metrics.content)
        assert 'method="other",route="unmatched",status="404"} 40.0' in metrics.text
        assert max(len(line) for line in srv.log_lines()) < 2000  # the access log cuts the method and path


@pytest.mark.slow
def test_trickling_bodies_cannot_starve_the_solves(artifact_root, tmp_path):
    """More trickling clients than solve places: none of them holds a solve place while its body
    arrives; beyond max_slow_bodies they are refused (503, connection closed); small solves
    from another client are answered meanwhile."""
    with Served(artifact_root, tmp_path / "server.log", max_requests=4, max_slow_bodies=6) as srv:
        tricklers = [Trickler(srv.port) for _ in range(10)]
        for t in tricklers:
            t.start()
        try:
            time.sleep(SLOW_BODY_AFTER_S + 0.7)
            with httpx.Client(base_url=srv.url, timeout=10) as c:
                answers = [c.post("/solve", json=SMALL_SOLVE).status_code for _ in range(8)]
                metrics = c.get("/metrics").text
            refused = [t for t in tricklers if t.reply.startswith(b"HTTP/1.1 503")]
        finally:
            for t in tricklers:
                t.close()
        assert answers == [200] * 8
        assert "fastlrnr_slow_bodies 6.0" in metrics and "fastlrnr_slow_bodies_rejected_total 4.0" in metrics
        assert len(refused) == 4
        assert all(b"connection: close" in t.reply.lower() and b'"overloaded"' in t.reply for t in refused)


@pytest.mark.slow
def test_a_request_open_at_the_shutdown_deadline_gets_503_and_a_warning(artifact_root, tmp_path):
    grace = 3.0  # requests still open after max(grace − 2, 1) s are cancelled
    with Served(artifact_root, tmp_path / "server.log", graceful_shutdown_s=grace) as srv:
        trickler = Trickler(srv.port, every=0.3)
        trickler.start()
        try:
            time.sleep(0.5)
            t0 = time.perf_counter()
            srv.proc.send_signal(signal.SIGTERM)
            srv.proc.wait(grace + 20)
            elapsed = time.perf_counter() - t0
            trickler.join(5)
        finally:
            trickler.close()
        assert elapsed <= grace + 0.5
        head_, _, body = trickler.reply.partition(b"\r\n\r\n")
        assert head_.startswith(b"HTTP/1.1 503") and b"connection: close" in head_.lower()
        assert json.loads(body)["error"] == "shutting_down"
    records = [json.loads(line) for line in srv.log_lines()]
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL")] == []
    assert any(r["level"] == "WARNING" and r["msg"] == "request cancelled at shutdown" for r in records)
