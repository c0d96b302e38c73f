"""Convergence, accuracy and cost of the burgers reference solver (fastlrnr/numerics/shock_reference.py).

    OMP_NUM_THREADS=1 python benchmarks/burgers_reference_convergence.py          # the study, ~4 min
    OMP_NUM_THREADS=1 python benchmarks/burgers_reference_convergence.py --rule   # the rule's data, 4-9 min

On the standard grid (x_j = 2πj/256, t = linspace(0, 1, 100)), one thread, relative L2 errors:

1. the sharpest corner β = 3, ν = 1e-3, ρ = 0 against the exact Cole–Hopf solution
   (``fastlrnr.numerics.cole_hopf``) as the points n grow (steps by the CFL rule, Courant 2),
   with the Hou–Li filter (the default) and with the 2/3 rule beside it;
2. the same corner at ρ = 1 (no closed form) against the solve on 32768 points: self-convergence;
3. the time error alone at fixed n (ρ = 1, n = 4096) as the Courant number halves, against
   Courant 1/8: the observed order of ETDRK4;
4. the resolution rule ``points_for`` at its default tolerance (1e-5) across the domain: against
   Cole–Hopf at ρ = 0, against twice the points at ρ = 1 — with the cost of each solve.

``--rule``: the measurement behind ``points_for``: for β ∈ {1, …, 3} × ν ∈ {1e-3, …, 1e-2}, the
error against Cole–Hopf on a ladder of n (cached in runs/burgers_reference_rule.json), the
points per unit shock width s = n ν / β that each tolerance needs (log-interpolated between the
ladder's sizes), and the rule's constants from them (a: the largest s at ν = 1e-3 over
β ≥ 1.25; b: the slope per decade of ν through the largest s at ν = 1e-2, and the slope that
envelops every ν), beside the constants in shock_reference.py and how far above their line the
measured s lie (the margin must cover it).

"observed order" between rows is log(e_prev / e) / log(n / n_prev) (in n; in the step for
table 3). A spectral method's order grows with n (geometric convergence) once the shock is
resolved.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from fastlrnr.numerics import shock_reference as sr
from fastlrnr.numerics.cole_hopf import cole_hopf_burgers
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.spectral import trig_interpolate

try:
    from benchmarks.timing import machine_line
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import machine_line

X, T = standard_grid()
CORNER = (3.0, 1e-3)


def solve(mu: tuple[float, float, float], n: int, **kw) -> tuple[np.ndarray, float, int]:
    """(u on the standard grid (100, 256), wall seconds, total steps) of one march on n points."""
    t0 = time.perf_counter()
    states = sr.etdrk4_march(np.array([mu]), T, sr.DEFAULT_SUBSTEPS, n, **kw)[0]
    u = states[:, :: n // X.size] if n % X.size == 0 else trig_interpolate(states, X)
    return u, time.perf_counter() - t0, total_steps(mu[0], n, **kw)


def total_steps(beta: float, n: int, courant: float = sr.COURANT, dealias: str = "houli", **_) -> int:
    """Steps the march takes over the standard grid's times (mirrors ``etdrk4_march``)."""
    k_max = sr.max_wavenumber(n, dealias)
    spans = np.diff(T)
    return sum(sr.steps_for(float(s), sr.DEFAULT_SUBSTEPS, k_max, beta, courant) for s in spans)


def rel_l2(u: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def order(previous: tuple[float, float] | None, size: float, error: float) -> str:
    if previous is None or previous[1] <= 0 or error <= 0:
        return ""
    return f"{math.log(previous[1] / error) / math.log(size / previous[0]):6.2f}"


def corner_against_cole_hopf(sizes: list[int], thirds: set[int]) -> None:
    beta, nu = CORNER
    t0 = time.perf_counter()
    exact = cole_hopf_burgers(beta, nu, X, T)
    print(
        f"\n1. beta = {beta:g}, nu = {nu:g}, rho = 0 against Cole–Hopf ({time.perf_counter() - t0:.2f} s to evaluate)"
    )
    print(f"   Courant {sr.COURANT:g}; default points at {sr.REFERENCE_TOLERANCE:g}: {int(sr.points_for(beta, nu))}")
    head = f"   {'n':>6} {'steps':>6} {'rel L2 error':>13} {'order':>6} {'time s':>7}"
    print(f"{head}   {'2/3 rule: error':>16} {'time s':>7}")
    previous = None
    for n in sizes:
        u, wall, steps = solve((beta, nu, 0.0), n)
        error = rel_l2(u, exact)
        line = f"   {n:>6} {steps:>6} {error:>13.3e} {order(previous, n, error):>6} {wall:>7.2f}"
        if n in thirds:
            u3, wall3, _ = solve((beta, nu, 0.0), n, dealias="two_thirds")
            line += f"   {rel_l2(u3, exact):>16.3e} {wall3:>7.2f}"
        mark = "  <- default" if n == int(sr.points_for(beta, nu)) else ""
        print(line + mark, flush=True)
        previous = (n, error)


def corner_self_convergence(sizes: list[int], finest: int) -> None:
    beta, nu = CORNER
    fine, wall, steps = solve((beta, nu, 1.0), finest)
    print(f"\n2. beta = {beta:g}, nu = {nu:g}, rho = 1 against n = {finest} ({steps} steps, {wall:.1f} s)")
    print(f"   {'n':>6} {'steps':>6} {'rel L2 error':>13} {'order':>6} {'time s':>7}")
    previous = None
    for n in sizes:
        u, wall, steps = solve((beta, nu, 1.0), n)
        error = rel_l2(u, fine)
        mark = "  <- default" if n == int(sr.points_for(beta, nu)) else ""
        print(f"   {n:>6} {steps:>6} {error:>13.3e} {order(previous, n, error):>6} {wall:>7.2f}{mark}", flush=True)
        previous = (n, error)


def time_convergence(n: int, courants: list[float], finest: float) -> None:
    beta, nu = CORNER
    fine, wall, steps = solve((beta, nu, 1.0), n, courant=finest)
    print(f"\n3. time error alone: beta = {beta:g}, nu = {nu:g}, rho = 1 on n = {n} points against Courant {finest:g}")
    print(f"   ({steps} steps, {wall:.1f} s)")
    print(f"   {'Courant':>7} {'steps':>6} {'rel L2 error':>13} {'order':>6} {'time s':>7}")
    previous = None
    for c in courants:
        u, wall, steps = solve((beta, nu, 1.0), n, courant=c)
        error = rel_l2(u, fine)
        print(f"   {c:>7g} {steps:>6} {error:>13.3e} {order(previous, steps, error):>6} {wall:>7.2f}", flush=True)
        previous = (steps, error)


def rule_across_the_domain(betas: list[float], nus: list[float], reacting: list[tuple[float, float]]) -> None:
    print(f"\n4. the rule's resolution (points_for at {sr.REFERENCE_TOLERANCE:g}) across the domain, one row per solve")
    print(
        f"   {'beta':>5} {'nu':>8} {'rho':>4} {'n':>6} {'steps':>6} {'rel L2 error':>13} {'against':>12} {'time s':>7}"
    )
    worst, cost = 0.0, []
    for beta in betas:
        for nu in nus:
            n = int(sr.points_for(beta, nu))
            u, wall, steps = solve((beta, nu, 0.0), n)
            error = rel_l2(u, cole_hopf_burgers(beta, nu, X, T))
            worst = max(worst, error)
            cost.append(wall)
            print(f"   {beta:>5g} {nu:>8.2e} {0:>4g} {n:>6} {steps:>6} {error:>13.3e} {'Cole–Hopf':>12} {wall:>7.2f}")
    for beta, nu in reacting:
        n = int(sr.points_for(beta, nu))
        u, wall, steps = solve((beta, nu, 1.0), n)
        fine, _, _ = solve((beta, nu, 1.0), 2 * n)
        error = rel_l2(u, fine)
        print(f"   {beta:>5g} {nu:>8.2e} {1:>4g} {n:>6} {steps:>6} {error:>13.3e} {'2n points':>12} {wall:>7.2f}")
    print(
        f"   worst against Cole–Hopf {worst:.2e}; time per solve: median {np.median(cost):.2f} s, "
        f"max {max(cost):.2f} s, min {min(cost):.3f} s (rho = 0 rows)"
    )


# ---------------------------------------------------------------------- --rule

RULE_BETAS = [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0]
RULE_NUS = [1e-3, 1.78e-3, 3.16e-3, 5.62e-3, 1e-2]
RULE_SIZES = [256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384]


def needed_width_points(sizes: np.ndarray, errors: np.ndarray, scale: float, tol: float) -> tuple[float, bool]:
    """(s, bounded): the s = n·scale where the error first reaches tol (log-linear between sizes);
    bounded False when the smallest size already meets it (s is then that size's)."""
    if errors[0] <= tol:
        return sizes[0] * scale, False
    i = int(np.argmax(errors <= tol))
    if errors[i] > tol:
        return math.inf, True
    f = (math.log(tol) - math.log(errors[i - 1])) / (math.log(errors[i]) - math.log(errors[i - 1]))
    return (sizes[i - 1] + f * (sizes[i] - sizes[i - 1])) * scale, True


def rule_data() -> None:
    """The measurement behind ``points_for`` (errors cached in runs/burgers_reference_rule.json)."""
    tols = sr.RULE_TOLERANCES
    cache_path = Path(__file__).resolve().parents[1] / "runs" / "burgers_reference_rule.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    s_table: dict[tuple[float, float], list[tuple[float, bool]]] = {}
    print(f"\nthe rule's data: rel L2 error against Cole–Hopf (rho = 0), n in {RULE_SIZES}")
    for beta in RULE_BETAS:
        for nu in RULE_NUS:
            key = f"{beta},{nu},{sr.COURANT},{sr.DEFAULT_SUBSTEPS}"
            if key not in cache:
                exact = cole_hopf_burgers(beta, nu, X, T)
                errors = []
                for n in RULE_SIZES:
                    errors.append(rel_l2(solve((beta, nu, 0.0), n)[0], exact))
                    if errors[-1] < tols[-1] / 3:
                        break
                cache[key] = errors
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_text(json.dumps(cache))
            errors = cache[key]
            sizes = np.array(RULE_SIZES[: len(errors)], dtype=float)
            s_table[beta, nu] = [needed_width_points(sizes, np.array(errors), nu / beta, tol) for tol in tols]
            print(f"  beta {beta:g} nu {nu:.2e}: " + " ".join(f"{e:.1e}" for e in errors), flush=True)
    print("\npoints per unit shock width s = n nu / beta needed for each tolerance")
    print("('<': the smallest n meets it; '>': the largest does not)")
    print(f"  {'beta':>5} {'nu':>8} " + " ".join(f"{t:>7.0e}" for t in tols))
    for (beta, nu), row in s_table.items():
        cells = [f"> {RULE_SIZES[-1] * nu / beta:.2f}" if np.isinf(v) else f"{'' if b else '<'}{v:.2f}" for v, b in row]
        print(f"  {beta:>5g} {nu:>8.2e} " + " ".join(f"{c:>7}" for c in cells))

    def decades(nu: float) -> float:
        return math.log10(nu / RULE_NUS[0])

    for name, betas, declared in (
        ("RULE_SHOCK (beta >= 1.25)", [b for b in RULE_BETAS if b >= 1.25], sr.RULE_SHOCK),
        ("RULE_BREAKING (beta = 1)", [1.0], sr.RULE_BREAKING),
    ):
        print(f"\n{name}: declared a {declared[0].tolist()}, b {declared[1].tolist()}; margin {sr.RULE_MARGIN:g}")
        for j, tol in enumerate(tols):
            measured = [(b, nu, *s_table[b, nu][j]) for b in betas for nu in RULE_NUS]
            finite = [(b, nu, v, bounded) for b, nu, v, bounded in measured if np.isfinite(v)]
            a = max((v for b, nu, v, _ in finite if nu == RULE_NUS[0]), default=math.nan)
            top = [v for b, nu, v, bounded in finite if nu == RULE_NUS[-1] and bounded]
            through = (max(top) - a) / decades(RULE_NUS[-1]) if top else math.nan
            slopes = [(v - a) / decades(nu) for b, nu, v, bounded in finite if nu > RULE_NUS[0] and bounded]
            envelope = max(slopes, default=math.nan)
            line = [v / (declared[0][j] + declared[1][j] * decades(nu)) for b, nu, v, bounded in finite if bounded]
            missing = [f"({b:g}, {nu:.2e})" for b, nu, v, _ in measured if not np.isfinite(v)]
            print(
                f"  {tol:.0e}: a = largest s at nu = 1e-3: {a:.2f}; b through the largest s at nu = 1e-2: "
                f"{through:.2f}, enveloping every nu: {envelope:.2f}; measured s / declared line at most "
                f"{max(line, default=math.nan):.3f}"
                + (f"; not reached by n = {RULE_SIZES[-1]} at {', '.join(missing)}" if missing else "")
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rule", action="store_true", help="the measurement behind points_for instead of the study")
    ap.add_argument("--quick", action="store_true", help="smaller sizes only (a smoke run, < 30 s)")
    args = ap.parse_args(argv)
    print(machine_line())
    print(f"standard grid {T.size}x{X.size}; Courant {sr.COURANT:g}, contour points {sr.CONTOUR_POINTS}, floor")
    print(f"{sr.DEFAULT_SUBSTEPS} steps per unit time; Hou–Li filter unless stated")
    if args.rule:
        rule_data()
        return
    t0 = time.perf_counter()
    if args.quick:
        corner_against_cole_hopf([1024, 2048, 4096], {2048})
        corner_self_convergence([512, 1024, 2048], 4096)
        time_convergence(1024, [2.0, 1.0], 0.25)
        rule_across_the_domain([1.0, 3.0], [1e-2], [(3.0, 1e-2)])
    else:
        corner_against_cole_hopf([1024, 2048, 4096, 8192, 12288, 16384, 20480], {4096, 8192, 16384})
        corner_self_convergence([2048, 4096, 8192, 12288, 16384], 32768)
        time_convergence(4096, [2.0, 1.0, 0.5], 0.125)
        rule_across_the_domain(
            [1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0], [1e-3, 3.16e-3, 1e-2], [(2.0, 3.16e-3), (1.5, 1e-2), (1.1, 1e-3)]
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
