"""Per-query cost of the shipped default models, one thread, measured in one run.

    python benchmarks/default_models.py [--repeats 7]

For each artifact in artifacts/: the hypernetwork, the whole fast phase (``run_fast_phase``
with the model's default settings, check included), the linearised correction (both grids,
interpolated to the 256×100 grid), and the full-field evaluation on the 256×100 grid through
the ONNX graph (``fastlrnr.server.engine.field.FieldEvaluator``), the last as achieved GFLOP/s (matmul flops
2·P·(3N + Σ_l 2·N·k_l)) beside this machine's numpy float32 matmul rate measured in the same
process. Minimum over repeats (median beside).

Then, over ``--queries`` seeded queries from each model's served domain, one at a time: the
fast phase split into its optimisation and its acceptance check (``FastPhaseResult``), and a
whole solve pass (``fastlrnr.server.engine.solver.ModelRuntime.solve``, 256×100, one field thread, corrected
answers) with the fast phase on and off — what skipping the fast phase saves. Medians.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import time
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import list_artifacts, load_artifact
from fastlrnr.numerics.fast_phase import run_fast_phase
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.server.api.grids import grid_arrays
from fastlrnr.server.api.schemas import Grid
from fastlrnr.server.engine.field import FieldEvaluator
from fastlrnr.server.engine.solver import ModelRuntime

ROOT = Path(__file__).resolve().parents[1]


try:
    from benchmarks.timing import timed_ms as timed
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import timed_ms as timed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--queries", type=int, default=10)
    args = ap.parse_args(argv)
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    mm, _ = timed(lambda: a @ a, 3)
    mm_gflops = 2 * 2048**3 / (mm * 1e6)
    print(f"numpy float32 matmul 2048³, 1 thread: {mm_gflops:.1f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
    x, t = standard_grid()
    print(
        f"{'model':>11} {'hyper µs':>9} {'fast phase ms':>14} {'correction ms':>14} {'field ms':>9} "
        f"{'GFLOP/s':>8} {'of matmul':>9}"
    )
    for path in list_artifacts(ROOT / "artifacts"):
        art = load_artifact(path)
        mu = art.test_domain.low + 0.5 * (art.test_domain.high - art.test_domain.low)
        s_hat = hyper_forward(art.hyper, mu[None])
        model = art.fast_phase_model()
        hyp, _ = timed(lambda: hyper_forward(art.hyper, mu[None]), args.repeats)
        fast, fast_med = timed(lambda: run_fast_phase(model, s_hat, mu[None], art.fast_phase), args.repeats)
        corr_model = art.correction_model()
        S = np.concatenate(s_hat, axis=1)
        corr, corr_med = timed(lambda: corr_model(S, mu[None])[0].on_axes(x, t), args.repeats)
        ev = FieldEvaluator(art.onnx["lrnr.onnx"], threads=1)
        s1 = [sl[0].astype(np.float32) for sl in s_hat]
        field, field_med = timed(lambda: ev.evaluate_grid(s1, x, t), args.repeats)
        N, P = art.lrnr.width, x.size * t.size
        gflops = 2 * P * (3 * N + sum(2 * N * k for k in art.lrnr.ranks)) / (field * 1e6)
        print(
            f"{art.name:>11} {1e3 * hyp:>9.0f} {fast:>8.1f} ({fast_med:.1f}) {corr:>8.1f} ({corr_med:.1f}) "
            f"{field:>5.1f} ({field_med:.1f}) "
            f"{gflops:>8.1f} {gflops / mm_gflops:>8.0%}"
        )
    print(f"\nmedians over {args.queries} served-domain queries (seed 9), one at a time")
    print(f"{'model':>11} {'optimise ms':>12} {'check ms':>9} {'solve, fast phase on':>21} {'off':>7} {'saved':>6}")
    for path in list_artifacts(ROOT / "artifacts"):
        served_domain_rows(path, args.queries)


def served_domain_rows(path: Path, queries: int) -> None:
    """The fast phase's two parts and a whole solve pass with the fast phase on and off."""
    runtime = ModelRuntime.load(path, onnx_threads=1, field_threads=1)
    try:
        art = runtime.artifact
        mus = runtime.served.sample(queries, np.random.default_rng(9))
        grid = grid_arrays(Grid(nx=256, nt=100))
        parts, passes = [], {True: [], False: []}
        for mu in mus:
            s_hat = hyper_forward(art.hyper, mu[None])
            run_fast_phase(runtime.fast, s_hat, mu[None], art.fast_phase)  # warm
            r = run_fast_phase(runtime.fast, s_hat, mu[None], art.fast_phase)[0]
            parts.append((r.optimise_ms, r.check_ms))
            for on in (True, False):
                settings = art.fast_phase if on else None
                runtime.solve(mu[None], grid, settings, correct=True)
                t0 = time.perf_counter()
                runtime.solve(mu[None], grid, settings, correct=True)
                passes[on].append(1e3 * (time.perf_counter() - t0))
        opt, chk = np.median(parts, axis=0)
        on, off = np.median(passes[True]), np.median(passes[False])
        print(f"{art.name:>11} {opt:>12.1f} {chk:>9.1f} {on:>18.1f} ms {off:>7.1f} {on - off:>6.1f}")
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
