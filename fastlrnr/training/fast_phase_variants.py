"""What each design choice of the fast phase is worth, measured on a shipped model.

    python -m fastlrnr.training.fast_phase_variants [--model cdr] [--n 12] [--out docs/fast_phase_variants.json]

On the evaluation's two query sets (``fastlrnr.training.evaluate.query_sets``), every variant starts
from ŝ and is judged like the default (check by the error proxy on a held-out grid, 5% margin); reported per
variant: median error ratio to the hypernetwork, share improved, worst ratio, and the share
of queries whose error got worse than ŝ's *before* the check (what the check prevents).

Variants: the default; fewer / more LM steps; the plain projection (clip at 0 after an
unconstrained step) instead of the bound-constrained step; 128 or 64 instead of 256
collocation points; larger locality weights; no acceptance check (margin 0, and the candidate always
kept); the reduced backend at the shipped rank.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.fast_phase import FastPhaseModel, choose
from fastlrnr.numerics.fast_phase.lm import levenberg_marquardt
from fastlrnr.numerics.fast_phase.run import _Rows
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.training.evaluate import query_sets
from fastlrnr.training.row_answers import fields, reference_fields, relative_l2

ROOT = Path(__file__).resolve().parents[2]


def run_variant(fast: FastPhaseModel, backend: str, S_hat, mus, steps, locality, margin, hold_bound=True):
    """(served rows, optimised rows) for one variant, judged like run_fast_phase."""
    problem = _Rows(fast.chains[backend], mus)
    tr = levenberg_marquardt(problem, S_hat, S_hat, np.full(len(mus), locality), steps, hold_bound=hold_bound)
    proxy, _ = fast.check(np.concatenate([S_hat, tr.S]), np.concatenate([mus, mus]))
    _, accepted = choose(proxy[: len(mus)], proxy[len(mus) :, None], margin)
    return np.where(accepted[:, None], tr.S, S_hat), tr.S


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cdr")
    ap.add_argument("--n", type=int, default=12, help="queries per set")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    art = load_artifact(ROOT / "artifacts" / args.model)
    fast = art.fast_phase_model()
    fewer = {m: art.fast_phase_model(collocation=m) for m in (64, 128)}
    d = art.fast_phase
    lam0 = d.locality[0]
    variants = {
        f"default ({d.backend}, {d.steps} steps, λ {lam0:g})": (
            fast,
            d.backend,
            d.steps,
            d.locality[0],
            d.margin,
            True,
        ),
        "3 steps": (fast, d.backend, 3, lam0, d.margin, True),
        "12 steps": (fast, d.backend, 12, lam0, d.margin, True),
        "plain projection (clip after an unconstrained step)": (
            fast,
            d.backend,
            d.steps,
            d.locality[0],
            d.margin,
            False,
        ),
        "128 collocation points (exact)": (fewer[128], "exact", d.steps, lam0, d.margin, True),
        "64 collocation points (exact)": (fewer[64], "exact", d.steps, lam0, d.margin, True),
        "locality λ = 1e-3": (fast, d.backend, d.steps, 1e-3, d.margin, True),
        "locality λ = 1e-1": (fast, d.backend, d.steps, 1e-1, d.margin, True),
        "exact backend": (fast, "exact", d.steps, lam0, d.margin, True),
        f"reduced backend (n = {art.reduced.n})": (fast, "reduced", d.steps, lam0, d.margin, True),
    }
    rows = []
    for set_name, mus in query_sets(art, args.n, args.seed).items():
        refs = reference_fields(mus, art.family)
        S_hat = hyper_rows(art.hyper, mus)
        e_hat = relative_l2(fields(art.lrnr, S_hat, family=art.family), refs)
        for label, (model, backend, steps, lam, margin, hold) in variants.items():
            served, raw = run_variant(model, backend, S_hat, mus, steps, lam, margin, hold)
            ratio = relative_l2(fields(art.lrnr, served, family=art.family), refs) / e_hat
            raw_ratio = relative_l2(fields(art.lrnr, raw, family=art.family), refs) / e_hat
            rows.append(
                {
                    "set": set_name,
                    "variant": label,
                    "median_ratio": float(np.median(ratio)),
                    "improved": float(np.mean(ratio < 1)),
                    "worst_ratio": float(ratio.max()),
                    "worse_before_check": float(np.mean(raw_ratio > 1.05)),
                    "worst_before_check": float(raw_ratio.max()),
                }
            )
            r = rows[-1]
            print(
                f"[{set_name}] {label}: median {r['median_ratio']:.2f}, improved {100 * r['improved']:.0f}%, "
                f"worst {r['worst_ratio']:.2f}; before the check: {100 * r['worse_before_check']:.0f}% worse "
                f"(worst {r['worst_before_check']:.2f})",
                flush=True,
            )
    print("\n| set | variant | median ratio | improved | worst ratio | > 5% worse before the check (worst) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['set']} | {r['variant']} | {r['median_ratio']:.2f} | {100 * r['improved']:.0f}% | "
            f"{r['worst_ratio']:.2f} | {100 * r['worse_before_check']:.0f}% ({r['worst_before_check']:.2f}) |"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"model": args.model, "n": args.n, "seed": args.seed, "default": dataclasses.asdict(d), "rows": rows},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
