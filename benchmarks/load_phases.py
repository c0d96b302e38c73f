"""The load phases of ``load_test`` (and ``memory_soak``): /solve requests against a running
server on loopback, their latency and throughput.

  sequential   one client, /solve on the nx × nt grid with the model's default fast phase →
               p50/p99 and the server's own per-stage timings (median; ``encode`` included);
  concurrent   ``clients`` clients → answers/s, p50/p99, errors, rows per pass.

Each reads from ``args``: ``model``, ``nx``, ``nt``, ``steps`` (fast-phase steps or None),
``transport`` ("json" or "npy"), ``accept_encoding`` (or None), ``requests``, ``duration`` (a
time budget per phase, seconds). Parameters come from the model's served domain (GET /models).
"""

from __future__ import annotations

import json
import statistics
import threading
import time

import httpx
import numpy as np


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of values (NaN for none)."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def ms(values: list[float], q: float) -> float:
    """The q-th percentile of values (seconds) in milliseconds, to 0.1 ms."""
    return round(1e3 * percentile(values, q), 1)


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
