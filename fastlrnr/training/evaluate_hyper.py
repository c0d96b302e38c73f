"""Evaluate the hypernetwork-only model against the reference solver.

    python -m fastlrnr.training.evaluate_hyper runs/cdr [--n 20] [--seed 0] [--out report.md]

Draws n seeded parameter sets from the domain's test range (its family's ``test_domains``),
evaluates the truncated LRNR with s = s(μ) on the standard 256×100 grid and reports
relative L2 and L1 errors against fastlrnr.numerics.reference.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fastlrnr.numerics.families import FAMILIES
from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.hypernet import HyperWeights, hyper_forward
from fastlrnr.numerics.lrnr import LRNRWeights, lrnr_forward
from fastlrnr.numerics.reference import solve_reference


def relative_errors(u: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(relative L2, relative L1) of u against ref, any matching shapes."""
    d = (u - ref).ravel()
    r = ref.ravel()
    return float(np.linalg.norm(d) / np.linalg.norm(r)), float(np.abs(d).sum() / np.abs(r).sum())


def load_run(run_dir: Path) -> tuple[LRNRWeights, HyperWeights, dict]:
    """The checkpoint contract of docs/architecture.md (arrays only, no pickle)."""
    with np.load(run_dir / "lrnr.npz", allow_pickle=False) as z:
        lrnr = LRNRWeights.from_arrays(dict(z))
    with np.load(run_dir / "hyper.npz", allow_pickle=False) as z:
        hyper = HyperWeights.from_arrays(dict(z))
    return lrnr, hyper, json.loads((run_dir / "settings.json").read_text())


def test_parameters(domain: Domain, n: int, seed: int, family: PdeFamily) -> np.ndarray:
    """(n, p) seeded parameter sets in the test range of a trained domain of ``family``."""
    return family.test_domains.get(domain.name, domain).sample(n, np.random.default_rng(seed))


def hyper_only_errors(
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    mus: np.ndarray,
    family: PdeFamily,
    references: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[dict]:
    """Per parameter set: μ by name, relative L2 and L1 of the hypernetwork-only LRNR on the
    standard grid against ``family``'s reference solver (one row at a time), or against the
    fields ``references`` gives for the rows (G, nt, nx)."""
    x, t = standard_grid()
    X, T = np.meshgrid(x, t)  # (nt, nx)
    s = hyper_forward(hyper, mus)
    u = lrnr_forward(lrnr, s, X.ravel(), T.ravel(), family).reshape(len(mus), *X.shape)
    refs = references(mus) if references is not None else None
    rows = []
    for i, mu in enumerate(mus):
        ref = refs[i] if refs is not None else solve_reference(mu, x, t, family=family)
        l2, l1 = relative_errors(u[i], ref)
        rows.append({**dict(zip(family.params, map(float, mu))), "rel_l2": l2, "rel_l1": l1})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The rows of ``hyper_only_errors`` as a markdown table: one column per parameter."""
    names = [k for k in rows[0] if k not in ("rel_l2", "rel_l1")]
    blank = "| " * len(names)
    lines = ["| " + " | ".join(names) + " | rel. L2 | rel. L1 |", "|" + "---|" * (len(names) + 2)]
    lines += [
        "| " + " | ".join(f"{r[k]:.3f}" for k in names) + f" | {r['rel_l2']:.4f} | {r['rel_l1']:.4f} |" for r in rows
    ]
    l2 = np.array([r["rel_l2"] for r in rows])
    lines.append(
        f"| **median** {blank[2:]}| **{np.median(l2):.4f}** | **{np.median([r['rel_l1'] for r in rows]):.4f}** |"
    )
    lines.append(f"| mean / max {blank[2:]}| {l2.mean():.4f} / {l2.max():.4f} | |")
    return "\n".join(lines)


def run_family(settings: dict) -> PdeFamily:
    """The PDE family of a training run (its config's ``family``; runs from before families: CDR)."""
    return FAMILIES[settings["config"].get("family", CDR_FAMILY.name)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the markdown table here")
    args = ap.parse_args(argv)
    lrnr, hyper, settings = load_run(args.run_dir)
    domain, family = Domain.from_dict(settings["domain"]), run_family(settings)
    rows = hyper_only_errors(lrnr, hyper, test_parameters(domain, args.n, args.seed, family), family)
    table = markdown_table(rows)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    (args.run_dir / "hyper_only_eval.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
