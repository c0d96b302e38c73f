"""Black-box probes of what one request may take (issue #25), on loopback, each case of the issue
re-run with its figure: wall times, the server's peak resident memory per request (VmHWM after
resetting it through /proc/<pid>/clear_refs), statuses, and a small /solve timed meanwhile.

    python -m benchmarks.budget_probe                        # starts python -m fastlrnr.server.serve on artifacts/
    python -m benchmarks.budget_probe --cases npz,ladder     # a subset
    python -m benchmarks.budget_probe --json out.json

Cases (every loop bounded in requests and seconds):

  npz          a 261 KB .npz whose int8 points widen to 2 GiB → /solve/sweep; then two such clients
               while a third times a small /solve;
  npy_header   an .npz member whose header declares (10¹¹, 3) float64 in 582 bytes;
  ladder       /solve/batch 48 rows × 40 000 points at distinct times, tolerance 1e-9,
               time_budget_ms 3000 (and 10 000); one row with 200 ms; two ladder clients with a small
               /solve meanwhile;
  v2           /v2 infer through tritonclient, 16 rows × 60 000 FP32 points, tolerance 1e-9, the
               default budget;
  budget16     16 clients posting /solve with tolerance 1e-9 and time_budget_ms 300 for ``--seconds``;
  sweep        correction=true with time_budget_ms=1 on 256 rows; a 200 000-row corrected sweep;
  pinned       two sweeps of 2048 rows with tolerance 1e-12 and the largest budget the server takes
               (and one asking 600 000 ms), a small /solve and /readyz polled meanwhile;
  disconnect   the same sweep, its client gone after 2 s → the server's CPU seconds afterwards;
  site_split   one row × 2²² points (and one × 2²⁴) → passes, wall, peak memory;
  reload       20 reloads (SIGHUP after a symlink swap) while 2 clients post multi-pass sweeps;
  nits         a gzip /v2 body, ``Inference-Header-Content-Length: ²``, a duplicate .npz member,
               the OpenAPI document.

The server is limited to ``--max-server-gib`` of address space (RLIMIT_AS), so that a case that
would take more fails inside it instead of exhausting the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import resource
import shutil
import signal
import statistics
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np

from benchmarks.server import ROOT, Server, proc_cpu_seconds

CASES = (
    "npz",
    "npy_header",
    "ladder",
    "v2",
    "budget16",
    "sweep",
    "pinned",
    "disconnect",
    "site_split",
    "reload",
    "nits",
)
NPZ = {"content-type": "application/x-npz"}
SMALL = {"params": {"beta": 2.0, "nu": 1.0, "rho": 1.0}, "grid": {"nx": 32, "nt": 10}}
MIB = 1 << 20


# ---------------------------------------------------------------------- the server's memory and CPU


class Memory:
    """The server's resident memory from /proc: ``reset`` the peak, then ``peak_mib`` after a request."""

    def __init__(self, pid: int):
        self.pid = pid

    def _status(self) -> dict[str, float]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
        return out

    def reset(self) -> float:
        """Reset VmHWM to the current RSS (Linux ≥ 4.0); the RSS now, MiB."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self._status()["VmRSS"]

    def peak(self) -> float:
        return self._status()["VmHWM"]


def measured(memory: Memory, fn) -> dict:
    """Run ``fn() -> dict``; add its wall time and the server's RSS before and at its peak (MiB)."""
    before = memory.reset()
    t0 = time.perf_counter()
    out = fn()
    out.update(
        wall_s=round(time.perf_counter() - t0, 3),
        rss_before_mib=round(before, 1),
        peak_rss_mib=round(memory.peak(), 1),
        peak_growth_mib=round(memory.peak() - before, 1),
    )
    return out


class Sampler(threading.Thread):
    """A small /solve posted in a loop (one client) until ``stop``: its latencies and statuses."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.lat, self.statuses = url, threading.Event(), [], {}

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    key = str(c.post("/solve", json=SMALL).status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                self.lat.append(time.perf_counter() - t0)
                self.statuses[key] = self.statuses.get(key, 0) + 1
                time.sleep(0.05)

    def summary(self) -> dict:
        self.stop.set()
        self.join(130)
        lat = sorted(self.lat)
        return {
            "small_solves": len(lat),
            "small_p50_ms": round(1e3 * statistics.median(lat), 1) if lat else None,
            "small_max_ms": round(1e3 * lat[-1], 1) if lat else None,
            "small_statuses": self.statuses,
        }


def meanwhile(url: str, fns, memory: Memory) -> dict:
    """Run each of ``fns`` on its own thread while a small /solve is timed; their results and the peak RSS."""
    sampler = Sampler(url)
    before = memory.reset()
    sampler.start()
    time.sleep(0.5)
    results: list = [None] * len(fns)

    def go(i: int) -> None:
        try:
            results[i] = fns[i]()
        except Exception as exc:  # noqa: BLE001 - a probe reports what happened
            results[i] = {"error": repr(exc)[:200]}

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(fns))]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    wall = time.perf_counter() - t0
    return {
        "requests": results,
        "wall_s": round(wall, 2),
        "peak_growth_mib": round(memory.peak() - before, 1),
        **sampler.summary(),
    }


def answer(r: httpx.Response, **extra) -> dict:
    """A response as the probe reports it: status, error code and message (or the extra fields)."""
    out: dict = {"status": r.status_code}
    if r.headers.get("content-type", "").startswith("application/json") and r.status_code >= 400:
        body = r.json()
        code, message = str(body.get("error")), body.get("message")
        if message is None:  # the Open Inference Protocol's body: {"error": "<code>: <message>"}
            code, _, message = code.partition(": ")
        out["code"], out["message"] = code, str(message)[:200]
    out.update(extra)
    return out


# ---------------------------------------------------------------------- bodies


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def npy_header_body() -> bytes:
    """An archive whose points.npy declares (10¹¹, 3) float64 and holds 24 bytes."""
    head = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 3), }"
    head += b" " * (63 - (len(head) + 10) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + b"\0" * 24
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        inner = io.BytesIO()
        np.save(inner, np.array([[2.0, 1.0, 1.0]]))
        z.writestr("params.npy", inner.getvalue())
        z.writestr("points.npy", npy)
    return buf.getvalue()


def ladder_body(rows: int, points: int, budget_ms: int, tolerance: float = 1e-9) -> dict:
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(0, 2 * np.pi, points), rng.uniform(0, 1, points)].round(6)
    mus = [
        {"beta": float(b), "nu": float(n), "rho": float(r)}
        for b, n, r in rng.uniform([1, 0.05, 0], [3, 2, 2], (rows, 3))
    ]
    return {"params": mus, "grid": {"points": pts.tolist()}, "tolerance": tolerance, "time_budget_ms": budget_ms}


def sweep_params(rows: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform([1, 0.05, 0], [3, 2, 2], (rows, 3)).round(2)


# ---------------------------------------------------------------------- cases


def case_npz(url: str, memory: Memory) -> dict:
    body = npz(params=np.array([[2.0, 1.0, 1.0]]), points=np.zeros(((1 << 27) - 200, 2), np.int8))
    with httpx.Client(base_url=url, timeout=120) as c:
        one = measured(memory, lambda: answer(c.post("/solve/sweep", content=body, headers=NPZ), body_bytes=len(body)))

    def post() -> dict:
        with httpx.Client(base_url=url, timeout=120) as c:
            return [answer(c.post("/solve/sweep", content=body, headers=NPZ)) for _ in range(20)][-1]

    wide = npz(params=np.array([[2.0, 1.0, 1.0]]), points=np.zeros((1 << 23, 2), np.int8))
    with httpx.Client(base_url=url, timeout=120) as c:
        past = measured(memory, lambda: answer(c.post("/solve/sweep", content=wide, headers=NPZ), body_bytes=len(wide)))
    return {"one": one, "widens_past_the_budget": past, "two_clients_x20": meanwhile(url, [post, post], memory)}


def case_npy_header(url: str, memory: Memory) -> dict:
    body = npy_header_body()
    with httpx.Client(base_url=url, timeout=60) as c:
        return measured(memory, lambda: answer(c.post("/solve/sweep", content=body, headers=NPZ), body_bytes=len(body)))


def _ladder(url: str, body: dict) -> dict:
    with httpx.Client(base_url=url, timeout=300) as c:
        t0 = time.perf_counter()
        r = c.post("/solve/batch", json=body, headers={"accept": "application/x-npy"})
        wall = time.perf_counter() - t0
    extra = {"wall_s": round(wall, 3), "budget_ms": body["time_budget_ms"]}
    if r.status_code == 200:
        diag = json.loads(r.headers["x-solve-diagnostics"])
        rows = diag["results"]
        extra.update(
            rungs=sorted({row["rung"] for row in rows}),
            flags=sorted({f["code"] for row in rows for f in row["flags"]}),
            timings_ms=diag["timings_ms"],
        )
    return answer(r, **extra)


def case_ladder(url: str, memory: Memory) -> dict:
    big = ladder_body(48, 40_000, 3000)
    size = len(json.dumps(big))
    out = {"body_bytes": size, "batch": measured(memory, lambda: _ladder(url, big))}
    out["batch_10000ms"] = measured(memory, lambda: _ladder(url, ladder_body(48, 40_000, 10_000)))
    out["one_row_200ms"] = measured(memory, lambda: _ladder(url, ladder_body(1, 40_000, 200)))
    out["two_clients"] = meanwhile(url, [lambda: _ladder(url, big), lambda: _ladder(url, big)], memory)
    return out


def case_v2(url: str, memory: Memory) -> dict:
    import tritonclient.http as httpclient

    rng = np.random.default_rng(2)
    mu = rng.uniform([1, 0.05, 0], [3, 2, 2], (16, 3))
    pts = np.c_[rng.uniform(0, 2 * np.pi, 60_000), rng.uniform(0, 1, 60_000)].astype(np.float32)

    def infer() -> dict:
        host = url.removeprefix("http://")
        with httpclient.InferenceServerClient(host, network_timeout=300, connection_timeout=300) as c:
            p = httpclient.InferInput("params", list(mu.shape), "FP64")
            p.set_data_from_numpy(mu)
            q = httpclient.InferInput("points", list(pts.shape), "FP32")
            q.set_data_from_numpy(pts)
            t0 = time.perf_counter()
            try:
                res = c.infer("cdr", [p, q], parameters={"tolerance": 1e-9})
                status, flags = (
                    200,
                    sorted({f["code"] for d in res.as_numpy("diagnostics") for f in json.loads(d)["flags"]}),
                )
            except Exception as exc:  # noqa: BLE001 - tritonclient raises its own type with the status
                status, flags = getattr(exc, "status", lambda: None)() or repr(exc)[:120], []
            return {"status": status, "flags": flags, "wall_s": round(time.perf_counter() - t0, 3)}

    return {"one": measured(memory, infer), "two_clients": meanwhile(url, [infer, infer], memory)}


def case_budget16(url: str, memory: Memory, seconds: float) -> dict:
    body = {"params": {"beta": 2.0, "nu": 0.05, "rho": 2.0}, "tolerance": 1e-9, "time_budget_ms": 300}
    lat: list[float] = []
    server_ms: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = c.post("/solve", json=body, headers={"accept": "application/x-npy"})
                dt = time.perf_counter() - t0
                with lock:
                    statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                    if r.status_code == 200:
                        lat.append(dt)
                        server_ms.append(
                            json.loads(r.headers["x-solve-diagnostics"])["diagnostics"]["timings_ms"]["total"]
                        )

    before = memory.reset()
    threads = [threading.Thread(target=client) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 120)
    over = [t for t in lat if t > 0.3]
    return {
        "answers": len(lat),
        "statuses": statuses,
        "over_300ms": len(over),
        "max_ms": round(1e3 * max(lat), 1) if lat else None,
        "p50_ms": round(1e3 * statistics.median(lat), 1) if lat else None,
        "server_total_max_ms": max(server_ms) if server_ms else None,
        "server_over_330ms": sum(t > 330 for t in server_ms),
        "peak_growth_mib": round(memory.peak() - before, 1),
    }


def _sweep(url: str, mu: np.ndarray, pts: np.ndarray, timeout: float = 300, **query) -> dict:
    body = npz(params=mu, points=pts)
    with httpx.Client(base_url=url, timeout=timeout) as c:
        t0 = time.perf_counter()
        try:
            r = c.post("/solve/sweep", content=body, headers=NPZ, params=query)
        except httpx.TimeoutException:
            return {"status": f"no answer within {timeout:g} s (client timeout)", "rows": len(mu)}
        wall = time.perf_counter() - t0
    extra: dict = {"rows": len(mu), "body_bytes": len(body), "wall_s": round(wall, 3)}
    if r.status_code == 200:
        with np.load(io.BytesIO(r.content)) as z:
            extra.update(
                passes=int(r.headers["x-request-passes"]),
                rows_solved=int(z["solved"].sum()) if "solved" in z.files else len(z["u"]),
                budget_flagged=int(z["time_budget_exhausted"].sum()),
            )
    return answer(r, **extra)


def case_sweep(url: str, memory: Memory) -> dict:
    pts = np.c_[np.linspace(0, 6, 16), np.linspace(0, 1, 16)]
    out = {
        "corrected_256_rows_1ms": measured(
            memory, lambda: _sweep(url, sweep_params(256), pts, correction="true", time_budget_ms=1)
        )
    }
    many = np.tile(np.array([[2.0, 1.0, 1.0]]), (200_000, 1))
    out["corrected_200000_rows"] = measured(memory, lambda: _sweep(url, many, pts, timeout=120, correction="true"))
    return out


def case_pinned(url: str, memory: Memory, budget_ms: int) -> dict:
    pts = np.c_[np.linspace(0, 6, 16), np.linspace(0.01, 1, 16)]
    mu = sweep_params(2048)
    asked = _sweep(url, mu, pts, timeout=30, tolerance=1e-12, time_budget_ms=600_000)
    ready: dict[str, int] = {}
    stop = threading.Event()

    def poll_ready() -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop.is_set():
                key = str(c.get("/readyz").status_code)
                ready[key] = ready.get(key, 0) + 1
                time.sleep(0.25)

    poller = threading.Thread(target=poll_ready, daemon=True)
    poller.start()
    heavy = lambda: _sweep(url, mu, pts, tolerance=1e-12, time_budget_ms=budget_ms)  # noqa: E731
    try:
        run = meanwhile(url, [heavy, heavy], memory)
    finally:
        stop.set()
        poller.join(15)
    return {"asking_600000_ms": asked, "two_at_the_cap": run, "readyz_statuses": ready}


def case_disconnect(url: str, pid: int) -> dict:
    pts = np.c_[np.linspace(0, 6, 16), np.linspace(0.01, 1, 16)]
    body = npz(params=sweep_params(2048), points=pts)
    idle0 = proc_cpu_seconds(pid)
    time.sleep(2.0)
    idle = proc_cpu_seconds(pid) - idle0
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(
            f"{url}/solve/sweep",
            content=body,
            headers=NPZ,
            params={"tolerance": 1e-12, "time_budget_ms": 30_000},
            timeout=2.0,
        )
    gone = time.perf_counter()
    c0 = proc_cpu_seconds(pid)
    time.sleep(1.0)
    c1 = proc_cpu_seconds(pid)
    time.sleep(4.0)
    c2 = proc_cpu_seconds(pid)
    return {
        "idle_cpu_s_per_s": round(idle / 2.0, 3),
        "cpu_s_in_1st_s_after_close": round(c1 - c0, 2),
        "cpu_s_in_next_4_s": round(c2 - c1, 2),
        "seconds_observed": round(time.perf_counter() - gone, 1),
    }


def case_site_split(url: str, memory: Memory) -> dict:
    mu = np.array([[2.0, 1.0, 1.0]])
    out = {}
    for power in (22, 24):
        pts = np.zeros((1 << power, 2), np.int8)
        out[f"one_row_2^{power}_points"] = measured(memory, lambda pts=pts: _sweep(url, mu, pts))
    return out


def _version(src: Path, dst: Path, version: str) -> None:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["version"] = version
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _point(link: Path, target: Path) -> None:
    tmp = link.parent / f".{link.name}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


def limited(gib: float, start):
    """``start()`` (a Server) with this process's address-space limit lowered to ``gib`` while the
    server process is created (it inherits the limit), then put back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (int(gib * (1 << 30)), hard))
    try:
        return start()
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def case_reload(artifact_dir: Path, tmp: Path, reloads: int, env: dict, gib: float) -> dict:
    root, versions = tmp / "reload-root", tmp / "reload-versions"
    root.mkdir()
    versions.mkdir()
    _version(artifact_dir / "cdr", versions / "a", "reload-a")
    _version(artifact_dir / "cdr", versions / "b", "reload-b")
    _point(root / "cdr", versions / "a")
    settings = {"FASTLRNR_MODELS": "cdr", "FASTLRNR_RELOAD_INTERVAL_S": "0", "FASTLRNR_MAX_BATCH_VALUES": "4096"}
    server = limited(gib, lambda: Server({**env, **settings}, tmp / "server-reload.log", root))
    stop = threading.Event()
    results: dict[str, int] = {}
    passes: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        mu, pts = sweep_params(256), np.c_[np.linspace(0, 6, 128), np.linspace(0, 1, 128)]
        body = npz(params=mu, points=pts)
        with httpx.Client(base_url=server.url, timeout=120) as c:
            while not stop.is_set():
                r = c.post("/solve/sweep", content=body, headers=NPZ)
                with lock:
                    results[str(r.status_code)] = results.get(str(r.status_code), 0) + 1
                    if r.status_code == 200:
                        passes.append(int(r.headers["x-request-passes"]))

    try:
        server.wait_ready(180)
        threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
        for th in threads:
            th.start()
        time.sleep(1.0)
        seen = []
        for i in range(reloads):
            _point(root / "cdr", versions / ("b" if i % 2 == 0 else "a"))
            server.proc.send_signal(signal.SIGHUP)
            want = "reload-b" if i % 2 == 0 else "reload-a"
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:
                meta = httpx.get(f"{server.url}/v2/models/cdr", timeout=10).json()
                if meta["versions"] == [want]:
                    break
                time.sleep(0.05)
            seen.append(meta["versions"][0])
            time.sleep(0.7)
        stop.set()
        for th in threads:
            th.join(130)
        log = (tmp / "server-reload.log").read_text()
    finally:
        server.stop()
    return {
        "reloads": reloads,
        "versions_switched": sum(a != b for a, b in zip(seen, seen[1:])) + 1 if seen else 0,
        "sweeps": results,
        "passes_per_sweep": (min(passes), max(passes)) if passes else None,
        "failed": sum(v for k, v in results.items() if k != "200"),
        "errors_logged": log.count('"level": "ERROR"'),
    }


def case_nits(url: str) -> dict:
    infer = {"inputs": [{"name": "params", "shape": [1, 3], "datatype": "FP64", "data": [[2.0, 1.0, 1.0]]}]}
    raw = json.dumps(infer).encode()
    with httpx.Client(base_url=url, timeout=60) as c:
        gz = c.post(
            "/v2/models/cdr/infer",
            content=gzip.compress(raw),
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )
        sup = c.post(
            "/v2/models/cdr/infer", content=raw, headers={"inference-header-content-length": "²".encode("latin-1")}
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for value in ([[2.0, 1.0, 1.0]], [[2.5, 1.0, 1.0]]):
                inner = io.BytesIO()
                np.save(inner, np.array(value))
                with contextlib.suppress(UserWarning):
                    z.writestr("params.npy", inner.getvalue())
            inner = io.BytesIO()
            np.save(inner, np.zeros((1, 2)))
            z.writestr("points.npy", inner.getvalue())
        dup = c.post("/solve/sweep", content=buf.getvalue(), headers=NPZ)
        budget = c.post("/v2/models/cdr/infer", json={**infer, "parameters": {"time_budget_ms": 500, "tolerance": 0.1}})
        spec = c.get("/openapi.json").json()
    params_schema = spec["components"]["schemas"]["SolveRequest"]["properties"]["params"]
    return {
        "gzip_v2_body": answer(gz),
        "header_length_superscript_two": answer(sup),
        "duplicate_npz_member": answer(dup),
        "v2_time_budget_ms": answer(budget),
        "openapi_security_schemes_without_keys": sorted(spec["components"].get("securitySchemes", {})),
        "openapi_params_additionalProperties": params_schema.get("additionalProperties"),
        "openapi_v2_infer_declares_body": "requestBody" in spec["paths"]["/v2/models/{model_name}/infer"]["post"],
    }


def statuses_5xx(results: dict) -> int:
    """Every 5xx status reported anywhere in the results."""
    count = 0

    def walk(v) -> None:
        nonlocal count
        if isinstance(v, dict):
            for k, w in v.items():
                if k in ("status",) and isinstance(w, int) and w >= 500:
                    count += 1
                elif k in ("statuses", "small_statuses", "sweeps") and isinstance(w, dict):
                    count += sum(n for s, n in w.items() if s.isdigit() and int(s) >= 500)
                else:
                    walk(w)
        elif isinstance(v, (list, tuple)):
            for w in v:
                walk(w)

    walk(results)
    return count


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact-dir", type=Path, default=ROOT / "artifacts")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    p.add_argument("--seconds", type=float, default=20.0, help="duration of budget16")
    p.add_argument("--pinned-budget-ms", type=int, default=20_000, help="time_budget_ms of the pinned sweeps")
    p.add_argument("--reloads", type=int, default=20)
    p.add_argument("--max-server-gib", type=float, default=6.0, help="the server's address-space limit")
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    cases = args.cases.split(",")
    env = {"FASTLRNR_LOG_LEVEL": "WARNING"}
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = limited(args.max_server_gib, lambda: Server(env, Path(tmp) / "server.log", args.artifact_dir))
        try:
            server.wait_ready(180)
            url, memory = server.url, Memory(server.proc.pid)
            runs = {
                "npz": lambda: case_npz(url, memory),
                "npy_header": lambda: case_npy_header(url, memory),
                "ladder": lambda: case_ladder(url, memory),
                "v2": lambda: case_v2(url, memory),
                "budget16": lambda: case_budget16(url, memory, args.seconds),
                "sweep": lambda: case_sweep(url, memory),
                "pinned": lambda: case_pinned(url, memory, args.pinned_budget_ms),
                "disconnect": lambda: case_disconnect(url, server.proc.pid),
                "site_split": lambda: case_site_split(url, memory),
                "nits": lambda: case_nits(url),
            }
            for name in cases:
                if name in runs:
                    results[name] = runs[name]()
                    print(json.dumps({name: results[name]}), flush=True)
            results["server_errors_logged"] = (Path(tmp) / "server.log").read_text().count('"level": "ERROR"')
        finally:
            server.stop()
        if "reload" in cases:
            results["reload"] = case_reload(args.artifact_dir, Path(tmp), args.reloads, env, args.max_server_gib)
            print(json.dumps({"reload": results["reload"]}), flush=True)
    results["responses_5xx"] = statuses_5xx(results)
    print(json.dumps({"responses_5xx": results["responses_5xx"]}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
