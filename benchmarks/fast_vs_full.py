"""SPInProp vs full fine-tuning: time per Adam step, measured side by side in one run.

    python benchmarks/fast_vs_full.py [--widths 256 1024 4000] [--threads 1 2] [--repeats 3]

Fast step: one row of the fast phase (n = 5, k = (10, 10, 10), 4×3 sample grid), numpy,
``benchmarks/fast_phase_step.time_fast_step``. Full step: one Adam step of
``training.finetune`` through the full LRNR of width N in factored form (1000 interior
+ 256 initial + 100 boundary pairs, torch, float32), random bases of the same ranks.
Prints per-step times and the speed-up ratio per (N, threads). Timing, not a test.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(threads: int, widths: list[int], repeats: int) -> list[dict]:
    import time

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fast_phase_step import random_lrnr, time_fast_step  # noqa: E402

    from training.finetune import FinetuneSettings, finetune
    from training.modules import LRNR

    torch.set_num_threads(threads)
    rows = []
    fast = time_fast_step(rows=1, epochs=200, repeats=repeats)
    for N in widths:
        w = random_lrnr(N)
        net = LRNR.from_weights(w)
        s0 = [np.full(k, 0.5) for k in w.ranks]
        steps = 20 if N <= 1024 else 5
        best = float("inf")
        for _ in range(repeats):
            out = finetune(w, s0, np.array([2.0, 0.5, 1.0]), FinetuneSettings(epochs=steps), net=net)
            best = min(best, out["step_s"])
        rows.append({"threads": threads, "N": N, "fast_step_us": fast["us_per_step"],
                     "full_step_ms": 1e3 * best})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.widths, args.repeats)))
        return
    print(f"{'threads':>7} {'N':>5} {'fast step µs':>13} {'full step ms':>13} {'speed-up':>9}")
    for th in args.threads:  # a fresh process per thread count: BLAS pools are fixed at import
        env = {**os.environ, "OMP_NUM_THREADS": str(th), "OPENBLAS_NUM_THREADS": str(th), "MKL_NUM_THREADS": str(th),
               "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, __file__, "--worker", str(th), "--repeats", str(args.repeats),
                              "--widths", *map(str, args.widths)], env=env, capture_output=True, text=True, check=True)
        for r in json.loads(out.stdout.strip().splitlines()[-1]):
            us = r["fast_step_us"]
            print(f"{th:>7} {r['N']:>5} {us:>13.1f} {r['full_step_ms']:>13.2f} {1e3 * r['full_step_ms'] / us:>8.0f}×")


if __name__ == "__main__":
    main()
