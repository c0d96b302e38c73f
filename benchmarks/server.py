"""The service as a benchmark runs it: ``python -m fastlrnr.server.serve`` in a subprocess on a free
loopback port (the deployed configuration), and what can be read of that process from /proc.

Shared by ``classical_baseline``, ``load_test``, ``limits_probe`` and ``memory_soak``. Scripts
run as ``python benchmarks/<name>.py`` import this as ``server``; run as
``python -m benchmarks.<name>`` they import ``benchmarks.server`` (see ``timing``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def free_port() -> int:
    """A TCP port free on loopback now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_loopback(url: str) -> bool:
    """Whether ``url`` names a loopback host (the benchmarks never send load elsewhere)."""
    return urlparse(url).hostname in LOOPBACK


class Server:
    """``python -m fastlrnr.server.serve`` on a free loopback port, its stderr in ``log``; ``env`` on top
    of this process's environment (log level WARNING unless ``env`` says otherwise), serving
    ``artifact_dir`` when given (else the service's default), from the checkout ``root`` (default:
    this one; another, e.g. a ``git worktree`` of an earlier revision, runs its own code and its own
    artifacts). ``stop`` sends SIGTERM (then kills)."""

    def __init__(self, env: dict[str, str], log: Path, artifact_dir: Path | None = None, root: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "FASTLRNR_LOG_LEVEL": "WARNING"}
        if root != ROOT:
            environ["PYTHONPATH"] = str(root)
        if artifact_dir is not None:
            environ["FASTLRNR_ARTIFACT_DIR"] = str(artifact_dir)
        environ.update(env)
        cmd = [sys.executable, "-m", "fastlrnr.server.serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=subprocess.DEVNULL, stderr=err)
        self.log = log

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds until ``/readyz`` answers 200; RuntimeError (with the log's tail) when the
        process exits first, TimeoutError after ``timeout`` seconds."""
        import httpx

        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server not ready")

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM; kill after ``grace`` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``LABEL:VAR=VALUE[,VAR=VALUE...]`` → (label, {VAR: VALUE}): a server's settings on top of the defaults."""
    label, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return label, env


def proc_memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024.0, 1)
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (robust to other load on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
