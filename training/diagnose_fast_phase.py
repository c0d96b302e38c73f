"""Why the fast phase does (not) help: its objective evaluated on the exact LRNR.

    python -m training.diagnose_fast_phase [--model cdr] [--n 6] [--grids 4x3 8x4]

For seeded test sets, minimises the fast phase's objective — ℓ1 PDE residual at the sample
points + λ_loc ‖s − ŝ‖₁ — with Adam (400 epochs, step 1% of max ŝ) through the FULL LRNR
(torch autograd, float64), i.e. a FastLRNR with zero EIM error, and reports the relative L2
error against the reference solver as a ratio to hypernetwork-only, per λ_loc. Ratios above 1
mean the objective itself, not the reduction, moves the solution away from the truth.
Sample grids: "4x3" is the paper's (ends included); "AxB" otherwise is periodic in x
(2πj/A) and t = j/B, j = 1..B.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from core.artifact import load_artifact
from core.fastlrnr import FastLRNRSettings, sample_points
from core.hypernet import hyper_forward
from core.lrnr import lrnr_forward
from core.pde import standard_grid
from core.reference import solve_reference
from training.evaluate_hyper import relative_errors, test_parameters
from training.modules import LRNR

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = (0.0, 0.1, 1.0, 10.0)


def grid_points(spec: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = map(int, spec.lower().split("x"))
    if (a, b) == (4, 3):
        return sample_points(FastLRNRSettings())
    tt, xx = np.meshgrid(np.arange(1, b + 1) / b, 2 * np.pi * np.arange(a) / a, indexing="ij")
    return xx.ravel(), tt.ravel()


def exact_objective_ratios(model: str, n: int, spec: str, epochs: int = 400) -> list[tuple[np.ndarray, float, list[float]]]:
    torch.set_default_dtype(torch.float64)
    art = load_artifact(ROOT / "artifacts" / model)
    w = art.lrnr
    net = LRNR.from_weights(w)
    for p in net.parameters():
        p.requires_grad_(False)
    xs, ts = (torch.as_tensor(v)[None] for v in grid_points(spec))
    x, t = standard_grid()
    X, T = np.meshgrid(x, t)
    K = max(w.ranks)
    out = []
    for mu in test_parameters(art.domain, n, seed=1):
        ref = solve_reference(mu, x, t)
        s0 = [v[0] for v in hyper_forward(art.hyper, mu[None])]
        e0 = relative_errors(lrnr_forward(w, s0, X.ravel(), T.ravel()).reshape(X.shape), ref)[0]
        ratios = []
        for lam in LAMBDAS:
            sh = torch.zeros(1, len(w.ranks), K)
            for l, v in enumerate(s0):
                sh[0, l, : len(v)] = torch.as_tensor(v)
            s = sh.clone().requires_grad_(True)
            opt = torch.optim.Adam([s], lr=0.01 * float(sh.max()))
            for _ in range(epochs):
                u, u_x, u_t, u_xx = net.jets(xs, ts, s)
                R = u_t + mu[0] * u_x - mu[1] * u_xx - mu[2] * u * (1 - u)
                J = R.abs().sum() + lam * (s - sh).abs().sum()
                opt.zero_grad()
                J.backward()
                opt.step()
                with torch.no_grad():
                    s.clamp_(min=0.0)
            sl = [s[0, l, :k].detach().numpy() for l, k in enumerate(w.ranks)]
            e = relative_errors(lrnr_forward(w, sl, X.ravel(), T.ravel()).reshape(X.shape), ref)[0]
            ratios.append(e / e0)
        out.append((mu, e0, ratios))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cdr")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--grids", nargs="+", default=["4x3", "8x4"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"| sample grid | β | ν | ρ | hyper L2 | " + " | ".join(f"ratio λ={lam:g}" for lam in LAMBDAS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(LAMBDAS))
    for spec in args.grids:
        for mu, e0, ratios in exact_objective_ratios(args.model, args.n, spec):
            print(f"| {spec} | {mu[0]:.2f} | {mu[1]:.2f} | {mu[2]:.2f} | {e0:.4f} | "
                  + " | ".join(f"{r:.3f}" for r in ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
