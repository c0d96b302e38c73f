"""The service against a classical solver at matched accuracy, timed in one run.

    OMP_NUM_THREADS=1 python benchmarks/classical_baseline.py [--quick] [--repeats 5] [--sets 1000] [--fields 64]
        [--variants default,fast_phase_on,correction_off,sweep] [--http-variants default] [--no-http]
        [--request-json '{"tolerance": 0.01}'] [--solve-kwargs '{}'] [--server-env KEY=VALUE ...]

The classical baseline is the textbook method of ``fastlrnr.numerics.reference`` (Fourier pseudo-spectral in
x on ``nx_internal`` points, Strang splitting in t with both sub-flows exact) at low resolution,
vectorised over parameter sets (``benchmarks/classical_solver.py``, with the choice of the
cheapest resolution); it is checked against ``fastlrnr.numerics.reference.solve_reference_batch`` at the
start of every run (printed max difference). This module holds the service's paths (in process
and over HTTP, the server from ``benchmarks/server.py``), the query shapes and the tables.

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
the sweep path (neither), and over HTTP (``python -m fastlrnr.server.serve`` on a free loopback port, the
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
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastlrnr.numerics.grid import X_PERIOD, uniform_grid

try:
    from benchmarks.classical_solver import Sites, cheapest, classical_solver, ladder_errors, reference_at, rel_l2
    from benchmarks.server import ROOT, Server
    from benchmarks.timing import interleaved, machine_line, median
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from classical_solver import Sites, cheapest, classical_solver, ladder_errors, reference_at, rel_l2
    from server import ROOT, Server
    from timing import interleaved, machine_line, median

CDR_HARD = np.array([(b, n, r) for b in (1.0, 2.0, 3.0) for n in (0.0, 1.0, 2.0) for r in (0.0, 1.0, 2.0)])
CONVECTION_HARD = np.array([(b, 0.0, 0.0) for b in np.linspace(1.0, 20.0, 5)])
HARD = {"cdr": CDR_HARD, "convection": CONVECTION_HARD}
CDR_LOW, CDR_HIGH = np.array([1.0, 0.0, 0.0]), np.array([3.0, 2.0, 2.0])


# ---------------------------------------------------------------------- the service


def service_grid(sites: Sites):
    from fastlrnr.server.api.grids import grid_arrays
    from fastlrnr.server.api.schemas import Grid

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

    from fastlrnr.server.engine.solver import ModelRuntime

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
            server.stop(grace=30)
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
