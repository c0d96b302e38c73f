"""Speed of the SPInProp fast phase (core/fast_phase.py), one thread.

1. µs per Adam step through the FastLRNR (n = 5, k = (10, 10, 10), the 4 × 3 sample
   grid): for one row, and for one query with all default λ_loc candidates batched
   (7 rows), with diffusion (4 jets: u, u_x, u_t, u_xx) and without (ν = 0: 3 jets).
   Independent of the LRNR width N — that is the point of SPInProp.
2. One whole ``run_fast_phase`` (default settings: 400 epochs × 7 λ candidates, then
   the full-LRNR residual check of the 7 candidates and ŝ on 64 points) for one query
   and random LRNRs of width N ∈ {256, 1024, 4000}, float32 weights for the check.

Timings are the minimum over repeats (median beside it): on a shared machine the
minimum is the best estimate of the undisturbed cost; the process CPU time is printed
too (it excludes time spent waiting for a core).

    OMP_NUM_THREADS=1 python benchmarks/fast_phase_step.py [--repeats 5] [--widths 256 1024 4000]

``time_fast_step`` is importable, e.g. for a side-by-side with full-LRNR fine-tuning.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from core.fast_phase import FastPhaseSettings, optimise_candidates, run_fast_phase  # noqa: E402
from core.fastlrnr import FastLRNRSettings, ReducedOperators, build_fastlrnr, sample_points  # noqa: E402
from core.lrnr import LRNRWeights  # noqa: E402

RANKS = (10, 10, 10)


def _min_median(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return times[0], times[len(times) // 2]


def random_operators(n: int = 5, ranks=RANKS, nx_s: int = 4, nt_s: int = 3, seed: int = 0) -> ReducedOperators:
    """Random, well-conditioned FastLRNR operators of the given sizes (timing only)."""
    rng = np.random.default_rng(seed)
    L = len(ranks)
    x, t = sample_points(FastLRNRSettings(nx_s=nx_s, nt_s=nt_s))
    M = tuple(np.eye(n) + 0.1 * rng.normal(size=(n, n)) for _ in range(L + 1))
    return ReducedOperators(rng.normal(size=(n, 3)), 0.3 * rng.normal(size=n), M,
                            tuple(rng.normal(size=(k, n)) / np.sqrt(n) for k in ranks),
                            tuple(rng.normal(size=(n, k)) / np.sqrt(k) for k in ranks),
                            tuple(0.3 * rng.normal(size=n) for _ in ranks), rng.normal(size=n) / np.sqrt(n), 0.1,
                            tuple(np.arange(n) for _ in range(L + 1)), x, t)


def time_fast_step(n: int = 5, ranks=RANKS, nx_s: int = 4, nt_s: int = 3, rows: int = 1,
                   mu=(2.0, 0.5, 1.0), epochs: int = 400, repeats: int = 5, seed: int = 0) -> dict:
    """Wall time per projected-Adam step of the fast phase for ``rows`` λ candidates of
    one query (batched), through the public ``optimise_candidates``.

    Returns {"us_per_step": min, "us_per_step_median": median, "cpu_us_per_step": min of
    the process CPU time (what the step costs when the machine is shared), "rows": rows,
    "jets": 3 or 4} (µs per step for the whole batch; divide by rows per candidate)."""
    ops = random_operators(n, ranks, nx_s, nt_s, seed)
    rng = np.random.default_rng(seed + 1)
    s_hat = [rng.uniform(0.1, 1.0, size=(1, k)) for k in ranks]
    settings = FastPhaseSettings(epochs=epochs, lambdas=tuple(np.geomspace(0.03, 30.0, rows)))
    optimise_candidates(ops, s_hat, np.asarray(mu)[None], FastPhaseSettings(epochs=5, lambdas=settings.lambdas))
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        optimise_candidates(ops, s_hat, np.asarray(mu)[None], settings)
        times.append((time.perf_counter() - t0) / epochs * 1e6)
        cpu.append((time.process_time() - c0) / epochs * 1e6)
    best, median = _min_median(times)
    return {"us_per_step": best, "us_per_step_median": median, "cpu_us_per_step": min(cpu), "rows": rows,
            "jets": 4 if mu[1] != 0 else 3}


def random_lrnr(N: int, ranks=RANKS, seed: int = 0) -> LRNRWeights:
    rng = np.random.default_rng(seed)
    orth = lambda k: np.linalg.qr(rng.normal(size=(N, k)))[0]
    return LRNRWeights(rng.normal(size=(N, 3)), 0.5 * rng.normal(size=N), tuple(np.sqrt(N / 8) * orth(k) for k in ranks),
                       tuple(np.sqrt(N / 8) * orth(k) for k in ranks), tuple(0.3 * rng.normal(size=N) for _ in ranks),
                       rng.normal(size=N) / np.sqrt(N), 0.1)


def time_fast_phase(N: int, mu=(2.0, 0.5, 1.0), repeats: int = 5, settings: FastPhaseSettings = FastPhaseSettings(),
                    seed: int = 0) -> dict:
    """One query through ``run_fast_phase`` with a random LRNR of width N (float32 check):
    min/median of total, fast-phase and check wall times in ms."""
    w = random_lrnr(N, seed=seed)
    rng = np.random.default_rng(seed + 1)
    sets = [[rng.uniform(0.1, 1.0, size=k) for k in RANKS] for _ in range(4)]
    ops, _ = build_fastlrnr(w, sets, [], FastLRNRSettings())
    w32 = w.astype(np.float32)
    s_hat = [rng.uniform(0.1, 1.0, size=(1, k)) for k in RANKS]
    run_fast_phase(ops, w32, s_hat, np.asarray(mu)[None], settings)  # warm-up
    total, fast, check, cpu = [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        r = run_fast_phase(ops, w32, s_hat, np.asarray(mu)[None], settings)[0]
        total.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        fast.append(r.fast_ms)
        check.append(r.check_ms)
    out = {"N": N, "cpu_total_ms": min(cpu)}
    for name, times in (("total_ms", total), ("fast_ms", fast), ("check_ms", check)):
        out[name], out[name + "_median"] = _min_median(times)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4000])
    args = ap.parse_args(argv)
    print(f"threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; n = 5, k = {RANKS}, 12 sample points")
    print(f"{'rows':>5} {'jets':>5} {'µs/step (min)':>14} {'median':>8} {'cpu µs':>8} {'µs/step/row':>12}")
    for rows, mu in ((1, (2.0, 0.5, 1.0)), (7, (2.0, 0.5, 1.0)), (1, (6.0, 0.0, 0.0)), (7, (6.0, 0.0, 0.0))):
        r = time_fast_step(rows=rows, mu=mu, repeats=args.repeats)
        print(f"{rows:>5} {r['jets']:>5} {r['us_per_step']:>14.1f} {r['us_per_step_median']:>8.1f} "
              f"{r['cpu_us_per_step']:>8.1f} {r['us_per_step'] / rows:>12.1f}")
    s = FastPhaseSettings()
    print(f"\nrun_fast_phase, one query: {s.epochs} epochs × {len(s.lambdas)} λ, check of {len(s.lambdas) + 1} "
          f"coefficient sets on {s.check_points} points (float32), μ = (2, 0.5, 1)")
    print(f"{'N':>6} {'total ms':>9} {'fast ms':>8} {'check ms':>9} {'cpu ms':>7}   (min; median in brackets)")
    for N in args.widths:
        r = time_fast_phase(N, repeats=args.repeats)
        print(f"{N:>6} {r['total_ms']:>9.1f} {r['fast_ms']:>8.1f} {r['check_ms']:>9.1f} {r['cpu_total_ms']:>7.1f}   "
              f"({r['total_ms_median']:.1f} / {r['fast_ms_median']:.1f} / {r['check_ms_median']:.1f})")


if __name__ == "__main__":
    main()
