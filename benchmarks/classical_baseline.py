"""The service against a classical solver at matched accuracy, timed in one run.

    OMP_NUM_THREADS=1 python benchmarks/classical_baseline.py [--quick] [--repeats 5] [--sets 1000] [--fields 64]
        [--variants default,fast_phase_on,correction_off,sweep] [--http-variants default] [--no-http]
        [--request-json '{"tolerance": 0.01}'] [--solve-kwargs '{}'] [--server-env KEY=VALUE ...]

The classical baseline is the textbook method of ``core.reference`` (Fourier pseudo-spectral in
x on ``nx_internal`` points, Strang splitting in t with both sub-flows exact) at low resolution,
vectorised over parameter sets: ``strang_states`` and ``classical_solver`` below are the same
method with its operators built once per step length (a dense real matrix for the
convection–diffusion step when there are few rows) and the trigonometric interpolation as one
matrix; they are checked against
``core.reference.solve_reference_batch`` at the start of every run (printed max difference).

Query shapes (cdr model): (a) one 256×100 uniform field; (b) 8 scattered points; (c) ``--sets``
parameter sets × the same 16 scattered points; (d) a batch of ``--fields`` 256×100 fields; and
(a') one 256×100 field of the convection model.

Matched accuracy: the worst relative L2 error over the hard parameter points (the 27 points
{1, 2, 3} × {0, 1, 2} × {0, 1, 2} of the cdr box: corners, edge and face centres, centre; the
convection model's β ∈ {1, 5.75, 10.5, 15.25, 20}), at each shape's own sites, against the fine
reference (default substeps, nx_internal 256). For each shape the classical resolution is the
cheapest (measured) of nx_internal ∈ {16, 32, 64} × a doubling ladder of substeps whose worst
error on the same points is at most that of the service's default answer; a second one meets
``--tight`` (1e-5) to show what accuracy costs.

Service paths, timed in the same interleaved rounds (medians): in-process
``ModelRuntime.solve`` (one field thread) as the server answers by default (corrected, no fast
phase), with the fast phase on, uncorrected (the fast phase then runs, as the server does), and
the sweep path (neither), and over HTTP (``python -m service.serve`` on a free loopback port, the
deployed configuration: 2 solver threads, field split over 2 threads when idle): ``POST /solve``
for (a), (b), (a'), ``POST /solve/batch`` in batches within ``GET /models`` limits for (c), (d).
HTTP times include decoding the JSON answer into numpy arrays. New request options go in with
``--request-json`` (merged into every body) and ``--solve-kwargs`` (passed to
``ModelRuntime.solve``); ``--solve-path``/``--batch-path`` move the endpoints. Shape (c) also
goes through ``POST /solve/sweep`` (binary .npz, the sweep path: no fast phase, no correction,
a-priori estimates; ``tolerance`` from ``--request-json`` as its query parameter); in process,
the "sweep" variant is that path. For (c) a third classical resolution is matched to the sweep
path's own worst error.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import math
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.pde import X_PERIOD, initial_condition, uniform_grid
from core.reference import solve_reference_batch
from core.spectral import trig_interpolate

try:
    from benchmarks.timing import interleaved, machine_line, median
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import interleaved, machine_line, median

ROOT = Path(__file__).resolve().parents[1]
NX_LADDER = (16, 32, 64)
DENSE_ROWS = 16  # up to this many rows the convection–diffusion step is a dense (n, n) matrix
CDR_HARD = np.array([(b, n, r) for b in (1.0, 2.0, 3.0) for n in (0.0, 1.0, 2.0) for r in (0.0, 1.0, 2.0)])
CONVECTION_HARD = np.array([(b, 0.0, 0.0) for b in np.linspace(1.0, 20.0, 5)])
HARD = {"cdr": CDR_HARD, "convection": CONVECTION_HARD}
CDR_LOW, CDR_HIGH = np.array([1.0, 0.0, 0.0]), np.array([3.0, 2.0, 2.0])


# ---------------------------------------------------------------------- the classical solver


def strang_states(mu: np.ndarray, t: np.ndarray, substeps: int, n: int) -> np.ndarray:
    """Grid values (B, nt, n) at the sorted times t (nt,) for mu (B, 3): the march of
    ``core.reference._march`` (same steps, same sub-flows), operators built once per step length."""
    B = mu.shape[0]
    beta, nu, rho = (mu[:, i : i + 1] for i in range(3))
    k = np.fft.rfftfreq(n, d=1.0 / n)
    symbol = -1j * beta * k - nu * k * k  # (B, n/2 + 1)
    reacting = bool(np.any(rho > 0.0))
    dense = B <= DENSE_ROWS
    eye_hat = np.fft.rfft(np.eye(n), axis=-1) if dense else None
    cache: dict[float, tuple] = {}

    def operators(h: float) -> tuple:
        key = round(h, 15)
        if key not in cache:
            p = np.exp(symbol * h)
            cd = np.fft.irfft(eye_hat[None] * p[:, None, :], n, axis=-1) if dense else p  # (B, n, n): u ← u @ M_b
            full = (np.exp(rho * h), np.expm1(rho * h))
            half = (np.exp(rho * 0.5 * h), np.expm1(rho * 0.5 * h))
            cache[key] = (cd[0] if dense and B == 1 else cd, full, half)
        return cache[key]

    def convect(u: np.ndarray, cd: np.ndarray) -> np.ndarray:
        if not dense:
            return np.fft.irfft(np.fft.rfft(u) * cd, n)
        return u @ cd if cd.ndim == 2 else np.matmul(u[:, None, :], cd)[:, 0]

    def react(u: np.ndarray, factors: tuple) -> np.ndarray:
        grow, grow_m1 = factors
        den = u * grow_m1
        den += 1.0
        u *= grow
        u /= den
        return u

    u = np.broadcast_to(initial_condition(X_PERIOD * np.arange(n) / n), (B, n)).copy()
    out = np.empty((B, t.size, n))
    t_now = 0.0
    for j, t_next in enumerate(t):
        span = t_next - t_now
        if span > 0.0:
            steps = max(1, math.ceil(substeps * span - 1e-9)) if reacting else 1
            cd, full, half = operators(span / steps)
            if reacting:
                u = react(u, half)
                for step in range(steps):
                    u = react(convect(u, cd), full if step < steps - 1 else half)
            else:
                u = convect(u, cd)
        out[:, j] = u
        t_now = t_next
    return out


@dataclass(frozen=True)
class Sites:
    """Where a query wants u: a tensor grid (``grid``: x (nx,), t (nt,)) or points (x, t (P,))."""

    kind: str
    x: np.ndarray
    t: np.ndarray

    @property
    def size(self) -> int:
        return self.x.size * self.t.size if self.kind == "grid" else self.x.size

    def times(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(sorted output times, index of each point's time or None for a grid)."""
        if self.kind == "grid":
            return self.t, None
        return np.unique(self.t, return_inverse=True)

    def steps(self, substeps: int) -> int:
        """Splitting steps a reacting march takes to reach every time."""
        t, _ = self.times()
        spans = np.diff(np.concatenate([[0.0], t]))
        return int(sum(max(1, math.ceil(substeps * s - 1e-9)) for s in spans if s > 0.0))

    def request_grid(self) -> dict:
        if self.kind == "grid":
            return {"x": self.x.tolist(), "t": self.t.tolist()}
        return {"points": np.stack([self.x, self.t], axis=1).tolist()}


def classical_solver(sites: Sites, substeps: int, n: int) -> Callable[[np.ndarray], np.ndarray]:
    """mu (B, 3) → u at the sites, (B, nt, nx) or (B, P), by ``strang_states`` at (substeps, n)."""
    t, where = sites.times()
    E = trig_interpolate(np.eye(n), sites.x)  # (n, m): interpolation is linear in the grid values

    def solve(mu: np.ndarray) -> np.ndarray:
        states = strang_states(mu, t, substeps, n)
        if where is None:
            return states @ E
        return np.einsum("bpj,jp->bp", states[:, where, :], E)

    return solve


def reference_at(sites: Sites, mu: np.ndarray, **kw) -> np.ndarray:
    """``core.reference.solve_reference_batch`` at the sites (fine by default)."""
    t, where = sites.times()
    u = solve_reference_batch(mu, sites.x, t, **kw)
    return u if where is None else u[:, where, np.arange(sites.x.size)]


def rel_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative L2 error per row: (B, ...) → (B,)."""
    axes = tuple(range(1, ref.ndim))
    return np.sqrt(np.sum((u - ref) ** 2, axis=axes) / np.sum(ref**2, axis=axes))


# ---------------------------------------------------------------------- the service


def service_grid(sites: Sites):
    from service.jobs import grid_arrays
    from service.schemas import Grid

    if sites.kind == "grid":
        return grid_arrays(Grid(x=sites.x.tolist(), t=sites.t.tolist()))
    return grid_arrays(Grid(points=[(float(a), float(b)) for a, b in zip(sites.x, sites.t)]))


VARIANTS = {  # name → (fast phase on, correction: None = the model's default)
    "default": (False, None),  # what the server does by default: corrected, no fast phase
    "fast_phase_on": (True, None),  # corrected after the fast phase
    "correction_off": (True, False),  # the server's uncorrected answer: the fast phase runs
    "sweep": (False, False),  # the sweep path: hypernetwork only, a-priori estimate
}


def in_process(runtime, sites: Sites, variant: str, kwargs: dict) -> Callable[[np.ndarray], np.ndarray]:
    fast, correct = VARIANTS[variant]
    grid = service_grid(sites)
    settings = runtime.default_settings if fast else None
    return lambda mu: runtime.solve(mu, grid, settings, 1, correct, **kwargs).u


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m service.serve`` on a free loopback port; ``stop`` sends SIGTERM (then kills)."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "FASTLRNR_LOG_LEVEL": "WARNING", **env}
        cmd = [sys.executable, "-m", "service.serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=err)
        self.log = log

    def wait_ready(self, timeout: float = 120.0) -> None:
        import httpx

        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
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


def merged(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, nested dicts merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def http_body(model: str, variant: str, sites: Sites, extra: dict) -> dict:
    fast, correct = VARIANTS[variant]
    body: dict = {"model": model, "grid": sites.request_grid()}
    body["fast_phase"] = {"enabled": fast}
    if correct is not None:
        body["correction"] = correct
    return merged(body, extra)


def params(row: np.ndarray) -> dict:
    return {"beta": float(row[0]), "nu": float(row[1]), "rho": float(row[2])}


def over_http(client, args, limits: dict, model: str, sites: Sites, variant: str, batch: bool):
    """mu (B, 3) → u (B, ...) through /solve (one request per row) or /solve/batch (rows split to the limits)."""
    import orjson

    body = http_body(model, variant, sites, args.request)

    def post(path: str, payload: dict) -> dict:
        r = client.post(path, content=orjson.dumps(payload), headers={"content-type": "application/json"})
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:500]}")
        return orjson.loads(r.content)

    def rung(item: dict) -> None:  # how the server answered, where it says so (diagnostics.answer.rung)
        answer = item.get("diagnostics", {}).get("answer")
        key = answer.get("rung", "?") if isinstance(answer, dict) else "unreported"
        solve.rungs[key] = solve.rungs.get(key, 0) + 1

    def solve(mu: np.ndarray) -> np.ndarray:
        if not batch:
            answers = [post(args.solve_path, {**body, "params": params(m)}) for m in mu]
        else:
            per = max(1, min(limits.get("max_batch_size", 64), limits.get("max_batch_values", 1 << 21) // sites.size))
            answers = []
            for lo in range(0, len(mu), per):
                answers += post(args.batch_path, {**body, "params": [params(m) for m in mu[lo : lo + per]]})["results"]
        for item in answers:
            rung(item)
        return np.stack([np.asarray(item["u"]) for item in answers])

    solve.rungs = {}
    return solve


def over_http_sweep(client, args, model: str, sites: Sites):
    """mu (B, 3) → u (B, P) through POST /solve/sweep (.npz in and out, one request; the server
    chunks it), with ``tolerance`` from ``--request-json`` as a query parameter."""
    import io

    query = {"model": model}
    if "tolerance" in args.request:
        query["tolerance"] = args.request["tolerance"]
    points = np.column_stack([sites.x, sites.t])

    def solve(mu: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        np.savez(buf, params=mu, points=points)
        r = client.post(
            "/solve/sweep", content=buf.getvalue(), params=query, headers={"content-type": "application/x-npz"}
        )
        if r.status_code != 200:
            raise RuntimeError(f"/solve/sweep: {r.status_code} {r.text[:500]}")
        with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
            for rung in z["rung"]:
                solve.rungs[str(rung)] = solve.rungs.get(str(rung), 0) + 1
            return z["u"]

    solve.rungs = {}
    return solve


# ---------------------------------------------------------------------- matching


def ladder_errors(sites: Sites, hard: np.ndarray, ref: np.ndarray, substeps: list[int]) -> dict[tuple, float]:
    """Worst relative L2 error over the hard points of every (nx_internal, substeps)."""
    return {(n, s): float(rel_l2(classical_solver(sites, s, n)(hard), ref).max()) for n in NX_LADDER for s in substeps}


def cheapest(sites: Sites, errors: dict[tuple, float], target: float, mu: np.ndarray) -> tuple[int, int] | None:
    """The cheapest (n, substeps) whose worst error ≤ target; None when none reaches it.

    Per n the one with fewest steps; of those, one with no more steps and no more modes than
    another wins outright; the rest are timed on ``mu`` (ties within 10%, a noisy machine's
    resolution: fewer steps, then fewer modes)."""
    candidates = []
    for n in NX_LADDER:
        ok = [s for (m, s), e in errors.items() if m == n and e <= target]
        if ok:
            fewest = min(sites.steps(s) for s in ok)
            candidates.append((n, min(s for s in ok if sites.steps(s) == fewest)))
    candidates = [  # drop those another beats on both steps and modes
        c
        for c in candidates
        if not any(d != c and sites.steps(d[1]) <= sites.steps(c[1]) and d[0] <= c[0] for d in candidates)
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    times = interleaved({c: (lambda c=c: classical_solver(sites, c[1], c[0])(mu)) for c in candidates}, 5)
    fastest = min(median(times[c]) for c in candidates)
    return min((c for c in candidates if median(times[c]) <= 1.1 * fastest), key=lambda c: (sites.steps(c[1]), c[0]))


@dataclass
class Shape:
    label: str
    model: str
    sites: Sites
    rows: int  # parameter sets per query
    batch: bool  # over HTTP: /solve/batch (else /solve, one row per request)


@dataclass
class Run:
    """Everything one run shares: options, loaded models, queries and the accuracy found."""

    args: argparse.Namespace
    repeats: int
    batch_repeats: int  # rounds for the shapes of many sets
    variants: list[str]
    http_variants: list[str]
    solve_kwargs: dict
    runtimes: dict
    queries: dict[str, np.ndarray]  # model → (R, 3) parameter sets to time on
    fine: dict = field(default_factory=dict)  # (model, sites id) → fine reference on the hard points
    errors: dict = field(default_factory=dict)  # (model, sites id) → {path: worst error}
    ladders: dict = field(default_factory=dict)  # (model, sites id) → {(n, substeps): worst error}
    client: object = None
    limits: dict = field(default_factory=dict)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sets, fields, repeats and variants (< 1 min)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; quick 3)")
    ap.add_argument("--batch-repeats", type=int, default=None, help="timed rounds of (c), (d) (default 3)")
    ap.add_argument("--sets", type=int, default=None, help="parameter sets of shape (c) (default 1000; quick 32)")
    ap.add_argument("--fields", type=int, default=None, help="fields of shape (d) (default 64; quick 8)")
    ap.add_argument("--variants", default=None, help=f"in-process variants, comma-separated, of {list(VARIANTS)}")
    ap.add_argument("--http-variants", default="default", help="HTTP variants, comma-separated")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--tight", type=float, default=1e-5, help="worst error of the tight classical resolution")
    ap.add_argument("--max-substeps", type=int, default=None, help="top of the substeps ladder (4096; quick 1024)")
    ap.add_argument("--request-json", default="{}", help="JSON merged into every HTTP request body")
    ap.add_argument("--solve-kwargs", default="{}", help="JSON of extra keyword arguments of ModelRuntime.solve")
    ap.add_argument("--server-env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    ap.add_argument("--solve-path", default="/solve")
    ap.add_argument("--batch-path", default="/solve/batch")
    ap.add_argument("--gzip", action="store_true", help="let httpx ask for gzip (default: identity)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    args.request = json.loads(args.request_json)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    sets = args.sets or (32 if args.quick else 1000)
    fields = args.fields or (8 if args.quick else 64)
    top = args.max_substeps or (1024 if args.quick else 4096)
    substeps = [2**j for j in range(int(math.log2(top)) + 1)]
    print(f"{machine_line()}; {repeats} interleaved rounds ({args.batch_repeats or 3} for (c), (d)), medians")

    from service.solver import ModelRuntime

    runtimes = {m: ModelRuntime.load(ROOT / "artifacts" / m) for m in ("cdr", "convection")}
    for rt in runtimes.values():
        rt.warm()
    rng = np.random.default_rng(args.seed)
    grid = Sites("grid", *uniform_grid(256, 100))

    def scattered(n: int) -> Sites:
        return Sites("points", rng.uniform(0.0, X_PERIOD, n), rng.uniform(0.0, 1.0, n))

    shapes = [
        Shape("(a) one 256×100 field", "cdr", grid, 1, False),
        Shape("(b) 8 scattered points", "cdr", scattered(8), 1, False),
        Shape(f"(c) {sets} sets × 16 points", "cdr", scattered(16), sets, True),
        Shape(f"(d) {fields} fields 256×100", "cdr", grid, fields, True),
        Shape("(a') one 256×100 field, convection", "convection", grid, 1, False),
    ]
    R = max(sets, fields, repeats + 1)
    queries = {
        "cdr": rng.uniform(CDR_LOW, CDR_HIGH, (R, 3)),
        "convection": np.column_stack([rng.uniform(1.0, 20.0, R), np.zeros((R, 2))]),
    }
    run = Run(
        args,
        repeats,
        args.batch_repeats or 3,
        (args.variants or ("default,sweep" if args.quick else ",".join(VARIANTS))).split(","),
        [] if args.no_http else [v for v in args.http_variants.split(",") if v],
        json.loads(args.solve_kwargs),
        runtimes,
        queries,
    )

    for shape in shapes[:3]:  # the classical solver is the reference's method: check it at each kind of site
        mu = HARD[shape.model]
        got = classical_solver(shape.sites, 64, 32)(mu)
        diff = float(np.abs(got - reference_at(shape.sites, mu, substeps=64, nx_internal=32)).max())
        assert diff < 1e-10, diff
        print(
            f"strang_states vs solve_reference_batch at the sites of {shape.label[:3]} (n 32, substeps 64): {diff:.1e}"
        )

    server = None
    try:
        if run.http_variants:
            import httpx

            log = Path(tempfile.mkstemp(prefix="classical_baseline_server_", suffix=".log")[1])
            server = Server(dict(kv.split("=", 1) for kv in args.server_env), log)
            server.wait_ready()
            headers = {} if args.gzip else {"accept-encoding": "identity"}
            run.client = httpx.Client(base_url=server.url, headers=headers, timeout=600.0)
            run.limits = run.client.get("/models").json().get("limits", {})
            print(f"server {server.url} (log {log}); limits {run.limits}")
        print("\nworst (median) relative L2 error over the hard points, against the fine reference")
        for shape in shapes:
            accuracy(run, shape, substeps)
        for shape in shapes:
            time_shape(run, shape)
    finally:
        if run.client is not None:
            run.client.close()
        if server is not None:
            server.stop()
        for rt in runtimes.values():
            rt.close()


def paths_of(run: Run, shape: Shape) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The service's paths for one shape: in-process variants, then HTTP variants."""
    rt = run.runtimes[shape.model]
    out = {f"in-process, {v}": in_process(rt, shape.sites, v, run.solve_kwargs) for v in run.variants}
    route = run.args.batch_path if shape.batch else run.args.solve_path
    for v in run.http_variants:
        out[f"HTTP {route}, {v}"] = over_http(
            run.client, run.args, run.limits, shape.model, shape.sites, v, shape.batch
        )
    if run.http_variants and shape.batch and shape.sites.kind == "points":
        out["HTTP /solve/sweep (.npz)"] = over_http_sweep(run.client, run.args, shape.model, shape.sites)
    return out


def accuracy(run: Run, shape: Shape, substeps: list[int]) -> None:
    """Worst errors on the hard points at the shape's sites: every service path, the classical ladder."""
    key = (shape.model, id(shape.sites))
    mu = HARD[shape.model]
    if key not in run.fine:
        run.fine[key] = reference_at(shape.sites, mu)
        run.errors[key] = {}
        run.ladders[key] = ladder_errors(shape.sites, mu, run.fine[key], substeps)
    for name, fn in paths_of(run, shape).items():
        if name in run.errors[key]:
            continue
        e = rel_l2(fn(mu), run.fine[key])
        run.errors[key][name] = float(e.max())
        worst = ", ".join(f"{v:g}" for v in mu[int(np.argmax(e))])
        rungs = f"; server rungs {fn.rungs}" if hasattr(fn, "rungs") else ""
        print(f"  {shape.label:<36} {name:<34} {e.max():.2e} ({np.median(e):.1e}), worst at ({worst}){rungs}")


def time_shape(run: Run, shape: Shape) -> None:
    """One table: the classical solver (matched, tight) and every service path, timed in the same rounds."""
    key = (shape.model, id(shape.sites))
    errors, ladder = run.errors[key], run.ladders[key]
    target = errors.get("in-process, default", min(errors.values()))
    mu_all = run.queries[shape.model]
    probe = mu_all[: shape.rows]
    paths: dict[str, tuple[Callable, float]] = {}
    chosen, notes = [], []
    targets = [("classical, matched", target), (f"classical, ≤ {run.args.tight:g}", run.args.tight)]
    sweep_err = errors.get("HTTP /solve/sweep (.npz)", errors.get("in-process, sweep"))
    if shape.batch and sweep_err is not None:
        targets.append(("classical, matched to the sweep path", sweep_err))
    for name, target_err in targets:
        res = cheapest(shape.sites, ladder, target_err, probe)
        if res is None or res in chosen:
            why = "the same as matched" if res else f"no (n, substeps) of the ladder reaches {target_err:.2e}"
            notes.append(f"  {name}: {why}")
            continue
        chosen.append(res)
        n, s = res
        label = f"{name} (n {n}, substeps {s}: {shape.sites.steps(s)} steps)"
        paths[label] = (classical_solver(shape.sites, s, n), ladder[res])
    for name, fn in paths_of(run, shape).items():
        paths[name] = (fn, errors[name])
    baseline = next((p for p in paths if p.startswith("classical, matched")), None)

    counter = dict.fromkeys(paths, 0)

    def call(name: str, fn: Callable) -> Callable[[], object]:
        def go() -> object:  # round i solves the same parameter sets on every path
            i = counter[name]
            counter[name] += 1
            return fn(probe if shape.rows > 1 else mu_all[i % len(mu_all)][None])

        return go

    # batches take seconds a call: fewer rounds and no warm-up round (the models were warmed at load)
    repeats, warmup = (run.repeats, 1) if shape.rows == 1 else (run.batch_repeats, 0)
    times = interleaved({name: call(name, fn) for name, (fn, _) in paths.items()}, repeats, warmup)
    base = median(times[baseline]) if baseline else float("nan")
    unit = "ms / set" if shape.rows > 1 else "ms / query"
    print(f"\n{shape.label}: classical matched to the service's default worst error {target:.2e}")
    print(f"  {'path':<56} {unit:>11} {'sets/s':>9} {'worst error':>12} {'× classical':>12}")
    for name, (fn, err) in paths.items():
        t = median(times[name])
        print(f"  {name:<56} {1e3 * t / shape.rows:>11.3f} {shape.rows / t:>9.1f} {err:>12.2e} {t / base:>12.2f}")
        if getattr(fn, "rungs", None):
            print(f"    (server rungs while timed: {fn.rungs})")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
