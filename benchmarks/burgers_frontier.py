"""Where a burgers model stands against the classical solvers: time against worst error, both ways.

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.burgers_frontier ARTIFACT_DIR \\
        [--repeats 5] [--sets 1000] [--json runs/burgers_frontier.json] [--figure docs/figures/burgers_frontier.png]
    python -m benchmarks.burgers_frontier --plot runs/burgers_frontier.json --figure F   # the figure alone

A trained burgers model (``ARTIFACT_DIR``, e.g. an intermediate checkpoint's build) is timed beside
the classical solvers of ``benchmarks/burgers_solvers.py`` (Fourier/ETDRK4 with the Hou–Li filter,
and WENO5-Z finite volume; vectorised over parameter sets, one thread), for the shapes of
docs/burgers_baseline.md: (a) one 256×100 field, (b) one query of 16 scattered points (the same
points), (c) ``--sets`` parameter sets × those 16 points.

Accuracy: the worst relative L2 error, at the shape's own sites, against the verified reference
(cached in ``runs/burgers_baseline/``), over the *served* domain of the model: the hard sets of
docs/burgers_baseline.md (β × ν × ρ ∈ {1, 2, 3} × {1e-3, 10^-2.5, 1e-2} × {0, 0.5, 1}) that lie in
it, plus ``--held-out`` random sets drawn from it; the worst over all 27 hard sets is printed too.

The frontier: each classical solver at every n of its ladder (until its worst error is below
1e-3), and the service's routes — its default answer (``ModelRuntime.solve``, what ``POST /solve``
returns) and, with ``tolerance`` 5e-2, 1e-2 and 1e-3, the cheapest route predicted to meet it
(``routes=True``, as the server runs it). Times are medians of interleaved one-set queries drawn
from the served domain; (c) one call on all the sets.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import time
from pathlib import Path
from statistics import median

import numpy as np

try:
    from benchmarks.burgers_baseline import HARD, reference_at, rel_l2
    from benchmarks.burgers_solvers import METHODS, X_PERIOD, Sites, solver
    from benchmarks.timing import machine_line
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from burgers_baseline import HARD, reference_at, rel_l2
    from burgers_solvers import METHODS, X_PERIOD, Sites, solver
    from timing import machine_line

LADDERS = {
    "spectral": (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1280, 1536, 2048),
    "weno5": (32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048),
}
FLOOR = 1e-3  # a ladder stops below this worst error
TOLERANCES = (5e-2, 1e-2, 1e-3)


def service(runtime, sites: Sites, tolerance: float | None = None):
    """mu (B, 3) → the service's answer at the sites, shaped as the reference: the default answer,
    or with a tolerance the routed one (60 s budget)."""
    from fastlrnr.numerics.sites import Sites as ServedSites

    make = ServedSites.axes if sites.kind == "grid" else ServedSites.points
    grid = make(sites.x, sites.t)

    def run(mu: np.ndarray) -> np.ndarray:
        mu = np.asarray(mu, float)
        if tolerance is None:
            res = runtime.solve(mu, grid, None)
        else:
            res = runtime.solve(mu, grid, None, tolerance=tolerance, deadline=time.perf_counter() + 60, routes=True)
        return np.asarray(res.u, dtype=np.float64)

    return run


def one_set_time(fn, queries: np.ndarray, repeats: int) -> float:
    """Median seconds of one-set calls (one warm-up call)."""
    fn(queries[:1])
    out = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(queries[r % len(queries)][None])
        out.append(time.perf_counter() - t0)
    return median(out)


def frontier(rt, sites: Sites, mu: np.ndarray, ref: np.ndarray, queries: np.ndarray, repeats: int) -> list[dict]:
    """Every point of the frontier at these sites: {path, worst, seconds}."""
    points = []
    for label, tol in [("service, default answer", None)] + [(f"service, tolerance {t:g}", t) for t in TOLERANCES]:
        fn = service(rt, sites, tol)
        worst = float(rel_l2(fn(mu), ref).max())
        points.append(
            {"path": label, "method": "service", "worst": worst, "seconds": one_set_time(fn, queries, repeats)}
        )
        print(f"  {label:<34} worst {worst:9.3g}   {1e3 * points[-1]['seconds']:9.2f} ms", flush=True)
    for name, ladder in LADDERS.items():
        for n in ladder:
            fn = solver(METHODS[name], sites, n)
            got = np.concatenate([fn(mu[mu[:, 0] == b]) for b in np.unique(mu[:, 0])])  # one β per call
            order = np.concatenate([np.flatnonzero(mu[:, 0] == b) for b in np.unique(mu[:, 0])])
            worst = float(np.nanmax(rel_l2(got, ref[order]))) if np.all(np.isfinite(got)) else float("inf")
            seconds = one_set_time(fn, queries, repeats)
            points.append({"path": f"{name} n {n}", "method": name, "n": n, "worst": worst, "seconds": seconds})
            print(f"  {name + ' n ' + str(n):<34} worst {worst:9.3g}   {1e3 * seconds:9.2f} ms", flush=True)
            if worst <= FLOOR:
                break
    return points


def matched(points: list[dict], method: str, target: float) -> dict | None:
    """The fastest point of a method whose worst error is at most ``target``."""
    ok = [p for p in points if p["method"] == method and p["worst"] <= target]
    return min(ok, key=lambda p: p["seconds"]) if ok else None


def plot(result: dict, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = result["shapes"]
    fig, axes = plt.subplots(1, len(shapes), figsize=(6 * len(shapes), 4.5))
    for ax, (label, shape) in zip(np.atleast_1d(axes), shapes.items()):
        for method, style in (("spectral", "o-"), ("weno5", "s-")):
            pts = [p for p in shape["points"] if p["method"] == method and np.isfinite(p["worst"])]
            ax.loglog([p["worst"] for p in pts], [1e3 * p["seconds"] for p in pts], style, ms=4, label=method)
        svc = [p for p in shape["points"] if p["method"] == "service"]
        for p in svc:
            ax.loglog(p["worst"], 1e3 * p["seconds"], "*", ms=12, label=p["path"])
        ax.set_xlabel("worst relative L2 error over the served sets")
        ax.set_ylabel("ms per query (one thread)")
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"burgers: the trained model's routes against the classical solvers ({result['served']})", fontsize=9)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    print(f"figure {figure}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact", type=Path, nargs="?")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sets", type=int, default=1000)
    ap.add_argument("--held-out", type=int, default=10, help="random served sets added to the hard ones")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--figure", type=Path)
    ap.add_argument("--plot", type=Path, help="draw the figure of an earlier --json and stop")
    args = ap.parse_args(argv)
    if args.plot:
        plot(json.loads(args.plot.read_text()), args.figure or Path("docs/figures/burgers_frontier.png"))
        return
    from fastlrnr.numerics.grid import standard_grid
    from fastlrnr.server.engine.solver import ModelRuntime

    print(machine_line())
    rt = ModelRuntime.load(args.artifact)
    rt.warm()
    served = rt.served
    inside = served.contains(HARD)
    rng = np.random.default_rng(args.seed)
    x, t = standard_grid()
    points16 = Sites("points", rng.uniform(0.0, X_PERIOD, 16), rng.uniform(0.0, 1.0, 16))  # burgers_baseline's
    draw = np.random.default_rng(args.seed + 1)
    held = served.low + (served.high - served.low) * draw.random((args.held_out, 3))
    queries = served.low + (served.high - served.low) * draw.random((max(args.sets, args.repeats), 3))
    print(
        f"model {args.artifact}: served {served.bounds}; {int(inside.sum())} of {len(HARD)} hard sets inside, "
        f"{args.held_out} held-out served sets"
    )
    result: dict = {"artifact": str(args.artifact), "served": served.bounds, "shapes": {}}
    shapes = (("(a) one 256×100 field", Sites("grid", x, t)), ("(b) one query of 16 points", points16))
    for label, sites in shapes:
        ref_hard = reference_at(sites, HARD)
        ref = np.concatenate([ref_hard[inside], reference_at(sites, held)])
        mu = np.concatenate([HARD[inside], held])
        all27 = float(rel_l2(service(rt, sites)(HARD), ref_hard).max())
        print(f"\n{label} (the service's default answer over all 27 hard sets: worst {all27:.3g})")
        pts = frontier(rt, sites, mu, ref, queries, args.repeats)
        result["shapes"][label] = {"points": pts, "default_worst_all_27": all27}
        svc = pts[0]
        for method in METHODS:
            m = matched(pts, method, svc["worst"])
            if m is not None:
                print(
                    f"  {method} matched to the default answer ({svc['worst']:.3g}): {m['path']}, "
                    f"{1e3 * m['seconds']:.2f} ms = {m['seconds'] / svc['seconds']:.2f}× the service's time"
                )
    # (c): the default answer against the spectral solver matched to it, many sets in one call
    sweep = {}
    pts = result["shapes"][shapes[1][0]]["points"]
    m = matched(pts, "spectral", pts[0]["worst"])
    fns = {"service, default answer": service(rt, points16)}
    if m is not None:
        fns[m["path"] + " (matched)"] = solver(METHODS["spectral"], points16, m["n"])
    print(f"\n(c) {args.sets} served sets × the same 16 points, one call")
    for label, fn in fns.items():
        fn(queries[:8])
        t0 = time.perf_counter()
        fn(queries[: args.sets])
        sweep[label] = args.sets / (time.perf_counter() - t0)
        print(f"  {label:<40} {sweep[label]:10.1f} sets/s")
    result["sweep_sets_per_s"] = sweep
    rt.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.figure:
        plot(result, args.figure)


if __name__ == "__main__":
    main()
