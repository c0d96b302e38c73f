"""One Levenberg–Marquardt step of the fast phase, reduced vs exact backend, against the LRNR width.

    OMP_NUM_THREADS=1 python benchmarks/fast_phase_step.py [--widths 256 1024 4000] [--n 40] [--repeats 7]

For random models of width N (``fastlrnr.numerics.random_model``, ranks (24, 16, 16)) at M = 256
collocation points: the work of one accepted LM iteration — a backend evaluation
(residuals and the per-point Jacobian, ``JetChain.residual_and_jacobian``) and the damped
normal-equation solve — through the exact backend (the full LRNR, float32) and through
the reduced one (a FastLRNR of rank n built from that model, float64). SPInProp's claim
is that the reduced step does not grow with N while the exact one does; the ratios to
N = 256 and exact / reduced are printed from this one run. Minimum over repeats (median
beside). Timing, not a test.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse

import numpy as np

from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.fastlrnr import build_fastlrnr
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.jet_chain import JetChain, exact_chain
from fastlrnr.numerics.random_model import random_model

RANKS = (24, 16, 16)
MU = np.array([[2.0, 0.5, 1.0]])


def lm_step(chain: JetChain, S: np.ndarray) -> np.ndarray:
    """The work of one accepted LM iteration for one query: evaluation and the damped solve."""
    r, jac = chain.residual_and_jacobian(S, MU)
    J = jac[0].astype(np.float64)
    A = J.T @ J / J.shape[0]
    g = J.T @ r[0] / J.shape[0]
    return np.linalg.solve(A + 1e-3 * np.diag(np.diag(A) + 1e-9), -g)


try:
    from benchmarks.timing import timed_ms as timed
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import timed_ms as timed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4000])
    ap.add_argument("--n", type=int, default=40, help="EIM rank of the reduced backend")
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    x, t = interior_points(args.points, 0)
    print(
        f"threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; ranks {RANKS}, M = {args.points} points, "
        f"reduced n = {args.n}; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'N':>6} {'exact ms':>14} {'reduced ms':>14} {'exact/reduced':>14} {'exact vs N0':>12} {'reduced vs N0':>14}"
    )
    base = None
    for N in args.widths:
        w, hyper = random_model(N, RANKS, CDR, seed=0)
        S_train = np.concatenate(hyper_forward(hyper, CDR.grid(2)), axis=1)
        ops, _ = build_fastlrnr(w, x, t, S_train, min(args.n, N), family=CDR_FAMILY)
        S = np.concatenate(hyper_forward(hyper, MU), axis=1)
        full_chain, red_chain = exact_chain(w, x, t, np.float32, family=CDR_FAMILY), ops.chain(family=CDR_FAMILY)
        exact, exact_med = timed(lambda: lm_step(full_chain, S), args.repeats)
        reduced, reduced_med = timed(lambda: lm_step(red_chain, S), args.repeats)
        base = base or (exact, reduced)
        print(
            f"{N:>6} {exact:>7.2f} ({exact_med:.2f}) {reduced:>7.2f} ({reduced_med:.2f}) {exact / reduced:>14.1f} "
            f"{exact / base[0]:>12.2f} {reduced / base[1]:>14.2f}"
        )


if __name__ == "__main__":
    main()
