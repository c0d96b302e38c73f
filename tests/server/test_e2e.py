"""End to end: the deployed server (python -m fastlrnr.server.serve) in a subprocess on a free loopback
port, driven by the Python clients."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from fastlrnr.client.clients import AsyncSolveClient, SolveClient

REPO = Path(__file__).resolve().parents[2]
MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, log: Path, **env) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environ = {**os.environ, "FASTLRNR_ARTIFACT_DIR": str(root), "FASTLRNR_PORT": str(port), **env}
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastlrnr.server.serve"],
            cwd=REPO,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
def test_serve_solve_and_graceful_shutdown(artifact_root, tmp_path):
    log = tmp_path / "server.log"
    proc, url = start_server(artifact_root, log)
    try:
        with SolveClient(url, timeout=60, retries=2) as c:
            c.wait_ready(timeout=60)
            res = c.solve(MU, grid={"nx": 32, "nt": 10}, fast_phase={"steps": 20})
            assert res.u.shape == (10, 32) and np.all(np.isfinite(res.u))
            npy = c.solve(MU, grid={"nx": 32, "nt": 10}, fast_phase={"steps": 20}, transport="npy")
            np.testing.assert_allclose(npy.u, res.u, rtol=1e-6, atol=1e-6)
            batch = c.solve_batch([MU, {"beta": 1.2}], grid={"nx": 8, "nt": 4}, fast_phase={"steps": 20})
            assert batch.u.shape == (2, 4, 8)

            async def many():
                async with AsyncSolveClient(url, timeout=60) as ac:
                    return await asyncio.gather(
                        *[
                            ac.solve({"beta": 1.0 + 0.25 * i}, grid={"nx": 16, "nt": 4}, fast_phase={"steps": 20})
                            for i in range(6)
                        ]
                    )

            results = asyncio.run(many())
            assert [r.params["beta"] for r in results] == [1.0 + 0.25 * i for i in range(6)]
            assert 'route="/solve",status="200"' in httpx.get(f"{url}/metrics").text

            # SIGTERM while a solve runs: it finishes, then the process exits cleanly. (The largest
            # batch the limits allow: 64 rows × 32768 values, long enough to catch in flight.)
            slow: list = []
            th = threading.Thread(
                target=lambda: slow.append(
                    c.solve_batch([MU] * 64, grid={"nx": 256, "nt": 128}, fast_phase={"steps": 50})
                )
            )
            th.start()
            deadline = time.monotonic() + 30
            while "fastlrnr_solver_in_flight 1.0" not in httpx.get(f"{url}/metrics").text:
                assert time.monotonic() < deadline and th.is_alive(), "the slow solve never started"
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            th.join(60)
            assert slow and slow[0].u.shape == (64, 128, 256)
            assert slow[0].results[0].diagnostics.fast_phase.steps_requested == 50
            # uvicorn re-raises the signal it handled once shutdown is complete
            assert proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        stop(proc)
    text = log.read_text()
    assert '"msg": "ready"' in text and '"msg": "stopped"' in text and '"drained": true' in text


@pytest.mark.slow
def test_corrupt_default_model_stops_the_server(fresh_root, tmp_path):
    data = bytearray((fresh_root / "cdr" / "hyper.npz").read_bytes())
    data[50] ^= 0xFF
    (fresh_root / "cdr" / "hyper.npz").write_bytes(bytes(data))
    log = tmp_path / "server.log"
    proc, url = start_server(fresh_root, log)
    try:
        assert proc.wait(60) != 0
    finally:
        stop(proc)
    text = log.read_text()
    assert "artifact refused" in text and "hyper.npz" in text and "sha256 mismatch" in text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")
