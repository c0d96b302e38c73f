"""Field evaluation speed: the full LRNR on the 256 × 100 grid, onnxruntime vs numpy float32.

For random LRNRs of width N ∈ {256, 1024} and ranks (20, 20, 20), times
``evaluate_grid`` of ``fastlrnr.server.engine.field.FieldEvaluator`` (the exported ONNX graph) and of
``NumpyFieldEvaluator`` (fastlrnr.numerics.lrnr in float32) with 1 and 2 threads, and reports the
achieved GFLOP/s — counting only the matmul flops, 2·P·(3N + Σ_l 2·N·k_l) per
coefficient set — beside a plain float32 matmul (2048² @ 2048²) measured in the same
process, so the ratio says how close the evaluation runs to the machine's GEMM speed.
The jets graph (u, u_x, u_t, u_xx) is timed too, as a ratio to the plain field.

Each thread count runs in its own subprocess, since numpy's BLAS threads are fixed at
import. Timings are the minimum over repeats (the median is printed beside it): on a
shared machine the minimum is the best estimate of the undisturbed cost.

    python benchmarks/field_eval.py [--repeats 7] [--threads 1 2] [--widths 256 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANKS = (20, 20, 20)


try:
    from benchmarks.timing import timed as _timed
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import timed as _timed


def worker(threads: int, repeats: int, widths: list[int], batches: list[int]) -> list[dict]:
    import numpy as np

    from fastlrnr.numerics.families.cdr import CDR_FAMILY
    from fastlrnr.numerics.grid import standard_grid
    from fastlrnr.numerics.random_model import random_lrnr
    from fastlrnr.server.engine.field import FieldEvaluator, JetsEvaluator, NumpyFieldEvaluator
    from fastlrnr.training.onnx_export import lrnr_onnx

    rows = []
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    t_mm, _ = _timed(lambda: a @ a, max(3, repeats))
    matmul_gflops = 2 * 2048**3 / t_mm / 1e9
    rows.append({"kind": "matmul", "threads": threads, "gflops": matmul_gflops})
    x_axis, t_axis = standard_grid()
    P = x_axis.size * t_axis.size
    with tempfile.TemporaryDirectory() as tmp:
        for N in widths:
            w = random_lrnr(N, RANKS, seed=N)
            rng = np.random.default_rng(N)
            path, jets_path = Path(tmp) / f"lrnr{N}.onnx", Path(tmp) / f"jets{N}.onnx"
            path.write_bytes(lrnr_onnx(w, family=CDR_FAMILY))
            jets_path.write_bytes(lrnr_onnx(w, jets=True, family=CDR_FAMILY))
            flops = 2 * P * (3 * N + sum(2 * N * k for k in RANKS))
            evaluators = {
                "onnxruntime": FieldEvaluator(path, threads=threads),
                "numpy": NumpyFieldEvaluator(w, family=CDR_FAMILY),
            }
            for B in batches:
                s = [rng.uniform(0.0, 1.0, (B, k)) for k in RANKS]
                for backend, ev in evaluators.items():
                    best, median = _timed(lambda: ev.evaluate_grid(s, x_axis, t_axis), repeats)
                    rows.append(
                        {
                            "kind": "field",
                            "backend": backend,
                            "threads": threads,
                            "N": N,
                            "B": B,
                            "ms": best * 1e3,
                            "median_ms": median * 1e3,
                            "gflops": B * flops / best / 1e9,
                            "matmul_gflops": matmul_gflops,
                        }
                    )
            s1 = [rng.uniform(0.0, 1.0, k) for k in RANKS]
            jets = JetsEvaluator(jets_path, threads=threads)
            best, median = _timed(lambda: jets.evaluate_grid(s1, x_axis, t_axis), max(2, repeats // 2))
            rows.append(
                {
                    "kind": "jets",
                    "backend": "onnxruntime",
                    "threads": threads,
                    "N": N,
                    "B": 1,
                    "ms": best * 1e3,
                    "median_ms": median * 1e3,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        rows = worker(args.threads[0], args.repeats, args.widths, args.batches)
        print(json.dumps(rows))
        return

    print(f"cpus={os.cpu_count()} load average at start={os.getloadavg()[0]:.2f}  grid 256 x 100, ranks {RANKS}")
    rows = []
    for threads in args.threads:
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(threads),
            OPENBLAS_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--threads",
            str(threads),
            "--repeats",
            str(args.repeats),
            "--widths",
            *map(str, args.widths),
            "--batches",
            *map(str, args.batches),
        ]
        out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
        rows += json.loads(out.strip().splitlines()[-1])

    for r in (r for r in rows if r["kind"] == "matmul"):
        print(f"numpy float32 matmul 2048^3, {r['threads']} thread(s): {r['gflops']:.1f} GFLOP/s")
    print(
        f"\n{'threads':>7} {'N':>5} {'B':>2} {'backend':>12} {'ms (min)':>9} {'median':>8} "
        f"{'GFLOP/s':>8} {'of matmul':>9}"
    )
    for r in (r for r in rows if r["kind"] == "field"):
        print(
            f"{r['threads']:>7} {r['N']:>5} {r['B']:>2} {r['backend']:>12} {r['ms']:>9.1f} {r['median_ms']:>8.1f} "
            f"{r['gflops']:>8.1f} {r['gflops'] / r['matmul_gflops']:>8.0%}"
        )
    field_ms = {
        (r["threads"], r["N"]): r["ms"]
        for r in rows
        if r["kind"] == "field" and r["backend"] == "onnxruntime" and r["B"] == 1
    }
    print()
    for r in (r for r in rows if r["kind"] == "jets"):
        print(
            f"jets graph (u, u_x, u_t, u_xx), {r['threads']} thread(s), N={r['N']}: {r['ms']:.1f} ms "
            f"(median {r['median_ms']:.1f}) = {r['ms'] / field_ms[(r['threads'], r['N'])]:.1f}x the field"
        )


if __name__ == "__main__":
    main()
