"""Do uncorrected answers keep their tolerance promise at the sites they return? (issue #30)

For each committed model: ``--rows`` random parameter sets (half in the family's hard band, a
tenth of the values on a face) × ``--sites`` random points, answered as ``POST /solve/sweep``
answers them (the hypernetwork's coefficients, the LRNR at the sites, the site envelope's
estimate), against the reference solver at the sites. Per tolerance: the rows the surrogate
answers (estimate ≤ tolerance), how many of those are not within it, and the worst true error
among them. Then the sweep's speed over HTTP: ``POST /solve/sweep`` with 1000 × 16 at
tolerance 1e-2 on a server started here, sets per second and the share escalated.

    OMP_NUM_THREADS=1 python -m benchmarks.site_promise
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOLERANCES = (5e-2, 2e-2, 1e-2, 5e-3, 2e-3)


def reference_at(mu: np.ndarray, x: np.ndarray, t: np.ndarray, family) -> np.ndarray:
    """(R, P) the reference at the points (x_p, t_p): 64 Fourier points and steps of at most
    1/1000 (relative error ≲ 1e-6 on cdr)."""
    from fastlrnr.numerics.reference_rung import solve_at_sites

    return solve_at_sites(mu, x, t, True, 1000, 64, family=family)


def rows(domain, family, n: int, rng) -> np.ndarray:
    mu = domain.sample(n, rng)
    band = family.hard_band_of(domain)
    if band is not None:
        i = domain.params.index(band.param)
        mu[n // 2 :, i] = band.low + (band.upto - band.low) * rng.random(n - n // 2)
    face = rng.random(mu.shape) < 0.1
    return np.where(face, np.where(rng.random(mu.shape) < 0.5, domain.low, domain.high), mu)


def promises(name: str, n_rows: int, sites: int, seed: int) -> list[dict]:
    from fastlrnr.numerics.sites import Sites
    from fastlrnr.server.engine.solver import ModelRuntime

    rt = ModelRuntime.load(ROOT / "artifacts" / name)
    rng = np.random.default_rng(seed)
    mu = rows(rt.served, rt.family, n_rows, rng)
    x, t = rng.uniform(0, 2 * np.pi, sites), rng.uniform(0, 1, sites)
    res = rt.first_pass(mu, Sites.points(x, t), settings=None, correct=False)
    ref = reference_at(mu, x, t, rt.family)
    true = np.linalg.norm(res.u - ref, axis=1) / np.linalg.norm(ref, axis=1)
    out = []
    for tol in TOLERANCES:
        within = res.estimate <= tol
        out.append(
            {
                "tolerance": tol,
                "answered": int(within.sum()),
                "broken": int(np.sum(within & (true > tol))),
                "worst": float(true[within].max()) if within.any() else None,
            }
        )
    return out


def sweep_speed(model: str, tolerance: float, n_rows: int = 1000, sites: int = 16, repeats: int = 3) -> dict:
    import httpx

    try:
        from benchmarks.server import Server
    except ImportError:  # run as a file
        from server import Server

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server({"FASTLRNR_SOLVER_THREADS": "1"}, Path(tmp) / "server.log")
        try:
            server.wait_ready()
            from fastlrnr.numerics.artifact import load_artifact

            domain = load_artifact(ROOT / "artifacts" / model).served_domain
            mu = domain.sample(n_rows, rng)
            points = np.column_stack([rng.uniform(0, 2 * np.pi, sites), rng.uniform(0, 1, sites)])
            buf = io.BytesIO()
            np.savez(buf, params=mu, points=points)
            body = buf.getvalue()
            best, rungs = np.inf, {}
            with httpx.Client(base_url=server.url, timeout=120.0) as client:
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    r = client.post(
                        "/solve/sweep",
                        content=body,
                        params={"model": model, "tolerance": tolerance},
                        headers={"content-type": "application/x-npz"},
                    )
                    best = min(best, time.perf_counter() - t0)
                    r.raise_for_status()
                    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
                        rungs = {str(k): int(v) for k, v in zip(*np.unique(z["rung"], return_counts=True))}
        finally:
            server.stop()
    return {"model": model, "tolerance": tolerance, "sets_per_s": n_rows / best, "seconds": best, "rungs": rungs}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--sites", type=int, default=16)
    ap.add_argument("--models", nargs="+", default=["cdr", "convection", "allen_cahn"])
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args(argv)
    print(f"## Promises at {args.sites} random sites, {args.rows} rows per model\n")
    print("| model | tolerance | rows answered by the surrogate | marked within but not within | worst marked |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for r in promises(name, args.rows, args.sites, seed=30):
            worst = "—" if r["worst"] is None else f"{r['worst']:.1e}"
            print(f"| {name} | {r['tolerance']:g} | {r['answered']} | {r['broken']} | {worst} |")
    if not args.no_speed:
        s = sweep_speed("cdr", 1e-2)
        share = 1.0 - s["rungs"].get("surrogate", 0) / sum(s["rungs"].values())
        print(
            f"\nPOST /solve/sweep, cdr, 1000 × 16 at tolerance 1e-2: {s['sets_per_s']:.0f} sets/s "
            f"({s['seconds'] * 1e3:.0f} ms, best of 3); rungs {s['rungs']} ({share:.0%} escalated)"
        )


if __name__ == "__main__":
    main()
