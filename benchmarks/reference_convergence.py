"""Convergence and speed of the classical reference solver (fastlrnr/numerics/reference.py).

    python benchmarks/reference_convergence.py [--beta 2 --nu 0.7 --rho 1.5]

Prints, for the standard grid (fastlrnr.numerics.grid.standard_grid()), the relative L2 error of
Strang splitting against a run with 16× the finest step count, the observed order
between consecutive rows, and the median wall time of one default standard-grid solve.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import DEFAULT_SUBSTEPS, reference_on_standard_grid, solve_reference


def total_steps(substeps: int, t: np.ndarray) -> int:
    """Splitting steps the solver takes over t (mirrors its per-interval rule)."""
    spans = np.diff(np.concatenate([[0.0], t]))
    return int(sum(max(1, math.ceil(substeps * s - 1e-9)) for s in spans if s > 0.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beta", type=float, default=2.0)
    parser.add_argument("--nu", type=float, default=0.7)
    parser.add_argument("--rho", type=float, default=1.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    mu = np.array([args.beta, args.nu, args.rho])
    x, t = standard_grid()
    intervals = t.size - 1
    counts = sorted({intervals * 2**k for k in range(1, 8)} | {DEFAULT_SUBSTEPS})
    fine_count = 16 * max(counts)
    fine = solve_reference(mu, x, t, substeps=fine_count, family=CDR_FAMILY)
    norm = np.linalg.norm(fine)

    print(f"reference solver, standard grid {t.size}x{x.size}, (beta, nu, rho) = {tuple(mu.tolist())}")
    print(f"errors against substeps = {fine_count} ({total_steps(fine_count, t)} steps)")
    print(f"{'substeps':>9} {'steps':>7} {'rel L2 error':>13} {'order':>6}")
    previous = None
    for n in counts:
        steps = total_steps(n, t)
        error = np.linalg.norm(solve_reference(mu, x, t, substeps=n, family=CDR_FAMILY) - fine) / norm
        order = "" if previous is None else f"{math.log(previous[1] / error) / math.log(steps / previous[0]):6.2f}"
        mark = "  <- default" if n == DEFAULT_SUBSTEPS else ""
        print(f"{n:>9} {steps:>7} {error:>13.3e} {order:>6}{mark}")
        previous = (steps, error)

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        reference_on_standard_grid(mu, family=CDR_FAMILY)
        times.append(time.perf_counter() - start)
    print(
        f"standard-grid solve at the default substeps = {DEFAULT_SUBSTEPS}: "
        f"median {np.median(times):.3f} s over {args.repeats} runs (min {min(times):.3f} s)"
    )


if __name__ == "__main__":
    main()
