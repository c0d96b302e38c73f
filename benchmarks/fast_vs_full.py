"""Time per query: the fast phase (LM, exact and reduced) vs the paper's Adam path vs full
fine-tuning, on the shipped models, measured side by side in one run.

    OMP_NUM_THREADS=1 python benchmarks/fast_vs_full.py [--models cdr convection] [--queries 5]

Per model, the same seeded queries from its served domain, one at a time:
  * the default fast phase (``run_fast_phase`` with the model's settings, check included);
  * the same with the other backend;
  * Adam on the ℓ1 objective, reduced backend, 400 steps, 3 locality candidates (check included);
  * full fine-tuning (``fastlrnr.training.finetune``: torch, 400 Adam steps, 1000 interior points).
Prints the median wall time per query and the ratio to the default fast phase. Timing, not a test.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.fast_phase import FastPhaseSettings, run_fast_phase
from fastlrnr.numerics.hypernet import hyper_forward

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    import torch

    from fastlrnr.training.finetune import FinetuneSettings, finetune
    from fastlrnr.training.modules import LRNR

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["cdr", "convection"])
    ap.add_argument("--queries", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"one thread; load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':>11} {'method':>30} {'ms / query':>11} {'× default':>10}")
    for name in args.models:
        art = load_artifact(ROOT / "artifacts" / name)
        fast = art.fast_phase_model()
        default = art.fast_phase
        other = "reduced" if default.backend == "exact" else "exact"
        methods = {
            f"LM {default.backend} (default)": default,
            f"LM {other}": dataclasses.replace(default, backend=other),
            "Adam ℓ1, reduced, 400 steps": FastPhaseSettings(
                backend="reduced", optimizer="adam", steps=400, locality=(1e-4, 1e-3, 1e-2)
            ),
        }
        mus = art.served_domain.sample(args.queries, np.random.default_rng(5))
        S_hat = np.concatenate(hyper_forward(art.hyper, mus), axis=1)
        times = {}
        for label, st in methods.items():
            run_fast_phase(fast, S_hat[:1], mus[:1], st)  # warm-up
            ts = []
            for i in range(len(mus)):
                t0 = time.perf_counter()
                run_fast_phase(fast, S_hat[i : i + 1], mus[i : i + 1], st)
                ts.append(time.perf_counter() - t0)
            times[label] = 1e3 * float(np.median(ts))
        net = LRNR.from_weights(art.lrnr, family=CDR_FAMILY)
        ts = []
        for i in range(min(3, len(mus))):
            s0 = [np.asarray(p) for p in np.split(S_hat[i], np.cumsum(art.lrnr.ranks)[:-1])]
            ts.append(finetune(art.lrnr, s0, mus[i], FinetuneSettings(steps=400), net=net, family=art.family)["time_s"])
        times["full fine-tuning, 400 steps"] = 1e3 * float(np.median(ts))
        base = times[f"LM {default.backend} (default)"]
        for label, ms in times.items():
            print(f"{name:>11} {label:>30} {ms:>11.1f} {ms / base:>10.1f}")


if __name__ == "__main__":
    main()
