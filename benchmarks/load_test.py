"""Load and abuse test of the solve service on loopback: latency, throughput, memory, robustness.

    python -m benchmarks.load_test                      # serve artifacts/ (needs artifacts/cdr)
    python -m benchmarks.load_test --synthetic          # a random model of the CPU default's size
    python -m benchmarks.load_test --variant nosplit:FASTLRNR_FIELD_THREADS=1   # compare settings, same run
    python -m benchmarks.load_test --phases sequential,concurrent --transport npy
    python -m benchmarks.load_test --url http://127.0.0.1:8000 --pid 1234       # a running server

The server is started as ``python -m service.serve`` (the deployed configuration), once per
variant; a variant is ``LABEL:VAR=VALUE[,VAR=VALUE...]`` on top of the defaults, so every
figure has a baseline measured in the same run. Phases, each bounded by a request count
and a time budget:

  sequential   one client, /solve on the nx × nt grid with the model's default fast phase →
               p50/p99 and the server's own per-stage timings (median; ``encode`` included);
  concurrent   ``--concurrency`` clients → answers/s, p50/p99, errors, rows per pass;
  rss32        32 clients → the server's peak resident memory (VmHWM);
  flood        2 clients posting invalid 1 MiB bodies (four kinds in turn) while one client
               times a small /solve → its p50/p99 against the same probe without the flood;
  header       one client sends a 64 MiB header → bytes taken before the server cuts it
               off, and the slowest /healthz answered meanwhile;
  sigterm      (own server, graceful_shutdown_s = --grace) a client trickles a body; SIGTERM →
               seconds until the process exits.

The server's CPU time per solve (/proc/<pid>/stat) is printed too: a shared machine disturbs
it less than wall time. Parameters are drawn from the model's served domain (GET /models)
with a fixed seed. Loopback only.
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
PHASES = ("sequential", "concurrent", "rss32", "flood", "header", "sigterm")
MIB = 1 << 20


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def ms(values: list[float], q: float) -> float:
    return round(1e3 * percentile(values, q), 1)


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
    """``python -m service.serve`` on a free loopback port, stopped with SIGTERM."""

    def __init__(self, artifact_dir: Path, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {
            **os.environ,
            "FASTLRNR_ARTIFACT_DIR": str(artifact_dir),
            "FASTLRNR_LOG_LEVEL": "WARNING",
            "FASTLRNR_PORT": str(self.port),
            **env,
        }
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.serve"], cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=err
            )
        self.log = log

    def wait_ready(self, timeout: float) -> float:
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

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---------------------------------------------------------------------- requests


def served_params(url: str, model: str, n: int, seed: int) -> list[dict]:
    """``n`` parameter sets drawn uniformly from the model's served domain."""
    info = httpx.get(f"{url}/models", timeout=10).json()
    bounds = next(m for m in info["models"] if m["name"] == model)["served_domain"]["bounds"]
    rng = np.random.default_rng(seed)
    return [{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in bounds.items()} for _ in range(n)]


def solve_body(params: dict, args, nx: int | None = None, nt: int | None = None) -> dict:
    body = {"model": args.model, "params": params, "grid": {"nx": nx or args.nx, "nt": nt or args.nt}}
    if args.steps is not None:
        body["fast_phase"] = {"steps": args.steps}
    return body


def client(url: str, args) -> httpx.Client:
    headers = {"Accept": "application/x-npy"} if args.transport == "npy" else {}
    if args.accept_encoding is not None:
        headers["Accept-Encoding"] = args.accept_encoding
    return httpx.Client(base_url=url, timeout=120, headers=headers)


def diagnostics(r: httpx.Response, transport: str) -> dict:
    meta = json.loads(r.headers["x-solve-diagnostics"]) if transport == "npy" else r.json()
    return meta["diagnostics"]


def sequential(url: str, mus: list[dict], args) -> dict:
    lat, stages, errors = [], [], 0
    deadline = time.monotonic() + args.duration
    with client(url, args) as c:
        for mu in mus[:3]:  # warm the connection and the caches
            c.post("/solve", json=solve_body(mu, args))
        for mu in mus[: args.requests]:
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            r = c.post("/solve", json=solve_body(mu, args))
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
                continue
            stages.append(diagnostics(r, args.transport)["timings_ms"])
            encoding = r.headers.get("content-encoding", "identity")
    med = {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]} if stages else {}
    return {
        "requests": len(lat),
        "errors": errors,
        "p50_ms": ms(lat, 50),
        "p99_ms": ms(lat, 99),
        "mean_ms": round(1e3 * float(np.mean(lat)), 1),
        "server_stage_median_ms": med,
        "content_encoding": encoding if stages else None,
    }


def concurrent(url: str, mus: list[dict], args, clients: int, requests: int) -> dict:
    lat: list[float] = []
    errors: dict[str, int] = {}
    batch_sizes: list[int] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + args.duration

    def worker() -> None:
        with client(url, args) as c:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post("/solve", json=solve_body(mus[i % len(mus)], args))
                    status = str(r.status_code)
                except httpx.TransportError as exc:
                    r, status = None, type(exc).__name__
                dt = time.perf_counter() - t0
                with lock:
                    if status == "200":
                        lat.append(dt)
                        batch_sizes.append(diagnostics(r, args.transport)["batch_size"])
                    else:
                        errors[status] = errors.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "completed": len(lat),
        "errors": sum(errors.values()),
        "errors_by_status": errors,
        "wall_s": round(wall, 2),
        "throughput_per_s": round(len(lat) / wall, 2),
        "p50_ms": ms(lat, 50),
        "p99_ms": ms(lat, 99),
        "mean_rows_per_pass": round(float(np.mean(batch_sizes)), 2) if batch_sizes else None,
    }


# ---------------------------------------------------------------------- abuse


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
    server = Server(artifact_dir, {**env, "FASTLRNR_GRACEFUL_SHUTDOWN_S": str(grace)}, log)
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


# ---------------------------------------------------------------------- driver


def run_against(url: str, pid: int | None, args, phases: set[str]) -> dict:
    mus = served_params(url, args.model, max(args.requests, args.concurrent_requests) + 3, args.seed)
    result: dict = {}
    if "sequential" in phases:
        cpu0 = proc_cpu_seconds(pid) if pid else None
        result["sequential"] = sequential(url, mus, args)
        if pid:
            result["sequential"]["server_cpu_ms_per_solve"] = round(
                1e3 * (proc_cpu_seconds(pid) - cpu0) / max(1, result["sequential"]["requests"] + 3), 1
            )
    if "concurrent" in phases:
        cpu0 = proc_cpu_seconds(pid) if pid else None
        result["concurrent"] = concurrent(url, mus, args, args.concurrency, args.concurrent_requests)
        if pid:
            result["concurrent"]["server_cpu_ms_per_solve"] = round(
                1e3 * (proc_cpu_seconds(pid) - cpu0) / max(1, result["concurrent"]["completed"]), 1
            )
            result["memory_after_concurrent_mib"] = proc_memory(pid)
    if "rss32" in phases:
        result["rss32"] = concurrent(url, mus, args, 32, args.concurrent_requests)
        if pid:
            result["rss32"]["memory_mib"] = proc_memory(pid)
    if "flood" in phases:
        result["flood"] = flood(url, mus, args)
    if "header" in phases:
        result["header"] = big_header(url)
    if args.also_identity and phases & {"sequential", "concurrent"}:
        plain = argparse.Namespace(**{**vars(args), "accept_encoding": "identity", "also_identity": False})
        result["identity"] = run_against(url, pid, plain, phases & {"sequential", "concurrent"})
    return result


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    label, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return label, env


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="target a running server (loopback only) instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory and CPU time")
    p.add_argument("--artifact-dir", type=Path, default=ROOT / "artifacts")
    p.add_argument("--synthetic", action="store_true", help="serve a random model of the CPU default's size")
    p.add_argument("--model", default="cdr")
    p.add_argument("--nx", type=int, default=256)
    p.add_argument("--nt", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="fast-phase steps (default: the model's)")
    p.add_argument("--transport", choices=("json", "npy"), default="json")
    p.add_argument(
        "--accept-encoding", default=None, help="the clients' Accept-Encoding (default: httpx's, which accepts gzip)"
    )
    p.add_argument(
        "--also-identity",
        action="store_true",
        help="repeat the sequential and concurrent phases with Accept-Encoding: identity (no gzip)",
    )
    p.add_argument("--requests", type=int, default=40, help="sequential requests")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--concurrent-requests", type=int, default=160)
    p.add_argument("--duration", type=float, default=60.0, help="time budget per phase, seconds")
    p.add_argument("--flood-seconds", type=float, default=10.0)
    p.add_argument("--max-body", type=int, default=MIB, help="the server's max_body_bytes (flood body size)")
    p.add_argument("--grace", type=float, default=5.0, help="graceful_shutdown_s of the sigterm phase's server")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {PHASES}")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:VAR=VAL[,VAR=VAL]",
        help="also run --variant-phases on a server with these settings (environment variables)",
    )
    p.add_argument("--variant-phases", default="sequential,concurrent", help="the phases run for each variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    phases = set(args.phases.split(","))
    unknown = phases - set(PHASES)
    if unknown:
        p.error(f"unknown phases {sorted(unknown)}")

    if args.url:
        host = urlparse(args.url).hostname
        if host not in LOOPBACK:
            p.error(f"--url must point at loopback ({sorted(LOOPBACK)}), got {host!r}")
        results = {"target": args.url, "run": run_against(args.url, args.pid, args, phases - {"sigterm"})}
    else:
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            artifact_dir = synthetic_artifacts(Path(tmp)) if args.synthetic else args.artifact_dir
            if not (artifact_dir / args.model / "manifest.json").is_file():
                p.error(f"no artifact {artifact_dir / args.model}; train one or pass --synthetic")
            base = {
                "FASTLRNR_MODELS": args.model,
                "FASTLRNR_DEFAULT_MODEL": args.model,
                "FASTLRNR_MAX_BODY_BYTES": str(args.max_body),
            }
            variants = [("default", {})] + [parse_variant(v) for v in args.variant]
            for i, (label, env) in enumerate(variants):
                server = Server(artifact_dir, {**base, **env}, Path(tmp) / f"server-{label}.log")
                try:
                    startup = server.wait_ready(180)
                    todo = phases - {"sigterm"} if i == 0 else phases & set(args.variant_phases.split(","))
                    run = run_against(server.url, server.proc.pid, args, todo)
                    run["startup_to_ready_s"] = round(startup, 2)
                    run["settings"] = env
                    results[label] = run
                finally:
                    server.stop()
            if "sigterm" in phases:
                results["sigterm"] = sigterm_with_slow_client(
                    artifact_dir, base, args.grace, Path(tmp) / "server-sigterm.log"
                )
        results["settings"] = {
            "model": args.model,
            "grid": [args.nt, args.nx],
            "steps": args.steps or "default",
            "transport": args.transport,
            "synthetic": args.synthetic,
            "cpus": os.cpu_count(),
            "accept_encoding": args.accept_encoding or "httpx default (gzip, deflate)",
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
