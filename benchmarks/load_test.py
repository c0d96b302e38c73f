"""Load test of the solve service on loopback: latency, throughput, memory.

    python -m benchmarks.load_test                      # serve artifacts/ (needs artifacts/cdr)
    python -m benchmarks.load_test --synthetic          # a random model of the CPU default's size
    python -m benchmarks.load_test --compare-microbatch # the concurrent phase with and without it
    python -m benchmarks.load_test --url http://127.0.0.1:8000 --pid 1234   # a running server

Phases, each bounded by a request count and a time budget:
  1. sequential: one client, /solve for cdr on the 256×100 grid with the default fast phase
     → p50/p99 latency and the server's own per-stage timings (median);
  2. concurrent: ``--concurrency`` clients in threads → throughput (solves/s), p50/p99, errors;
  3. the server's resident memory (VmRSS, VmHWM from /proc/<pid>/status) and its CPU time
     per solve (/proc/<pid>/stat), which a shared machine disturbs less than wall time.
Parameters are drawn from the model's domain with a fixed seed. Loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def proc_memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (robust to other load on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_artifacts(directory: Path, width: int = 256, ranks=(12, 12, 12), eim_rank: int = 40) -> Path:
    """A random cdr model of the CPU default's size (N = 256, L = 3): timings only, no accuracy."""
    from core.pde import CDR
    from training.synthetic_artifact import write_synthetic  # needs the onnx package (train extra)

    write_synthetic(directory / "cdr", "cdr", CDR, width=width, ranks=ranks, points=256, rank=eim_rank, steps=8)
    return directory


class Server:
    """uvicorn serving ``service.app:app`` on a free loopback port, stopped with SIGTERM."""

    def __init__(self, artifact_dir: Path, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "FASTLRNR_ARTIFACT_DIR": str(artifact_dir), "FASTLRNR_LOG_LEVEL": "WARNING", **env}
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "service.app:app", "--host", "127.0.0.1",
                                          "--port", str(self.port), "--no-access-log", "--log-level", "warning"],
                                         cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=err)
        self.log = log

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def request_body(mu: np.ndarray, args) -> dict:
    body = {"model": args.model, "params": dict(zip(("beta", "nu", "rho"), map(float, mu))),
            "grid": {"nx": args.nx, "nt": args.nt}}
    if args.steps is not None:
        body["fast_phase"] = {"steps": args.steps}
    return body


def sequential(url: str, mus: np.ndarray, args) -> dict:
    lat, stages, errors = [], [], 0
    accept = {"Accept": "application/x-npy"} if args.transport == "npy" else {}
    deadline = time.monotonic() + args.duration
    with httpx.Client(base_url=url, timeout=120) as c:
        for mu in mus[:3]:  # warm the connection and the caches
            c.post("/solve", json=request_body(mu, args), headers=accept)
        for mu in mus[:args.requests]:
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            r = c.post("/solve", json=request_body(mu, args), headers=accept)
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
                continue
            meta = json.loads(r.headers["x-solve-diagnostics"]) if args.transport == "npy" else r.json()
            stages.append(meta["diagnostics"]["timings_ms"])
    med = {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]} if stages else {}
    return {"requests": len(lat), "errors": errors, "p50_ms": round(1e3 * percentile(lat, 50), 1),
            "p99_ms": round(1e3 * percentile(lat, 99), 1), "mean_ms": round(1e3 * float(np.mean(lat)), 1),
            "server_stage_median_ms": med}


def concurrent(url: str, mus: np.ndarray, args) -> dict:
    lat: list[float] = []
    errors: dict[str, int] = {}
    batch_sizes: list[int] = []
    lock = threading.Lock()
    counter = iter(range(args.concurrent_requests))
    accept = {"Accept": "application/x-npy"} if args.transport == "npy" else {}
    deadline = time.monotonic() + args.duration

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post("/solve", json=request_body(mus[i % len(mus)], args), headers=accept)
                    status = str(r.status_code)
                except httpx.TransportError as exc:
                    r, status = None, type(exc).__name__
                dt = time.perf_counter() - t0
                with lock:
                    if status == "200":
                        lat.append(dt)
                        if args.transport == "npy":
                            meta = json.loads(r.headers["x-solve-diagnostics"])
                            batch_sizes.append(meta["diagnostics"]["batch_size"])
                    else:
                        errors[status] = errors.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    out = {"clients": args.concurrency, "completed": len(lat), "errors": sum(errors.values()),
           "errors_by_status": errors, "wall_s": round(wall, 2), "throughput_per_s": round(len(lat) / wall, 2),
           "p50_ms": round(1e3 * percentile(lat, 50), 1), "p99_ms": round(1e3 * percentile(lat, 99), 1)}
    if batch_sizes:
        out["mean_rows_per_pass"] = round(float(np.mean(batch_sizes)), 2)
    return out


def run_against(url: str, pid: int | None, args) -> dict:
    from core.pde import DOMAINS

    domain = DOMAINS.get(args.model, DOMAINS["cdr"])
    mus = domain.sample(max(args.requests, args.concurrent_requests) + 3, np.random.default_rng(args.seed))
    cpu0 = proc_cpu_seconds(pid) if pid else None
    result = {"sequential": sequential(url, mus, args)}
    if pid:
        cpu1 = proc_cpu_seconds(pid)
        result["sequential"]["server_cpu_ms_per_solve"] = round(
            1e3 * (cpu1 - cpu0) / max(1, result["sequential"]["requests"] + 3), 1)
        result["memory_after_sequential_mib"] = proc_memory(pid)
    result["concurrent"] = concurrent(url, mus, args)
    if pid:
        result["concurrent"]["server_cpu_ms_per_solve"] = round(
            1e3 * (proc_cpu_seconds(pid) - cpu1) / max(1, result["concurrent"]["completed"]), 1)
        result["memory_mib"] = proc_memory(pid)
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="target a running server (loopback only) instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    p.add_argument("--artifact-dir", type=Path, default=ROOT / "artifacts")
    p.add_argument("--synthetic", action="store_true", help="serve a random model of the CPU default's size")
    p.add_argument("--model", default="cdr")
    p.add_argument("--nx", type=int, default=256)
    p.add_argument("--nt", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="fast-phase steps (default: the model's)")
    p.add_argument("--transport", choices=("json", "npy"), default="json")
    p.add_argument("--requests", type=int, default=40, help="sequential requests")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--concurrent-requests", type=int, default=120)
    p.add_argument("--duration", type=float, default=60.0, help="time budget per phase, seconds")
    p.add_argument("--threads", type=int, default=2, help="FASTLRNR_SOLVER_THREADS of a started server")
    p.add_argument("--compare-microbatch", action="store_true", help="also run a server without micro-batching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)

    if args.url:
        host = urlparse(args.url).hostname
        if host not in LOOPBACK:
            p.error(f"--url must point at loopback ({sorted(LOOPBACK)}), got {host!r}")
        results = {"target": args.url, "run": run_against(args.url, args.pid, args)}
    else:
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            artifact_dir = synthetic_artifacts(Path(tmp)) if args.synthetic else args.artifact_dir
            if not (artifact_dir / args.model / "manifest.json").is_file():
                p.error(f"no artifact {artifact_dir / args.model}; train one or pass --synthetic")
            variants = [("microbatch", "true")] + ([("no_microbatch", "false")] if args.compare_microbatch else [])
            for label, flag in variants:
                env = {"FASTLRNR_SOLVER_THREADS": str(args.threads), "FASTLRNR_MICROBATCH": flag,
                       "FASTLRNR_MODELS": args.model, "FASTLRNR_DEFAULT_MODEL": args.model,
                       "OMP_NUM_THREADS": "1"}
                server = Server(artifact_dir, env, Path(tmp) / f"server-{label}.log")
                try:
                    t0 = time.perf_counter()
                    server.wait_ready(180)
                    startup = time.perf_counter() - t0
                    run = run_against(server.url, server.proc.pid, args)
                    run["startup_to_ready_s"] = round(startup, 2)
                    results[label] = run
                finally:
                    server.stop()
        results["settings"] = {"model": args.model, "grid": [args.nt, args.nx], "steps": args.steps or "default",
                               "transport": args.transport, "synthetic": args.synthetic,
                               "solver_threads": args.threads, "cpus": os.cpu_count()}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
