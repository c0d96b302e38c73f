"""The linearised correction outside the trained domain: what it does to the error, and how
far its estimate can be trusted there (answers the service gives only with
``allow_extrapolation``, flagged).

    python -m fastlrnr.training.extrapolation

For a fixed set of parameters beyond each shipped model's trained domain, on the
hypernetwork's coefficients: the relative L2 error against the reference solver (256×100)
before and after the correction, and the corrected answer's error estimate. Prints a
markdown table (docs/fast_phase_analysis.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.training.row_answers import corrected_errors, fields, reference_fields, relative_l2

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = {  # (β, ν, ρ) beyond the trained domains (cdr: β ∈ [1, 3], ν, ρ ∈ [0, 2]; convection: β ∈ [1, 20])
    "cdr": [(4.0, 0.0, 2.0), (3.5, 0.5, 3.0), (0.5, 0.0, 1.0), (4.0, 3.0, 4.0), (5.0, 0.0, 0.0)],
    "convection": [(25.0, 0.0, 0.0), (30.0, 0.0, 0.0), (40.0, 0.0, 0.0), (0.5, 0.0, 0.0)],
}


def rows(name: str) -> list[tuple]:
    """(μ, hypernetwork error, corrected error, estimate) per parameter set of OUTSIDE[name]."""
    art = load_artifact(ROOT / "artifacts" / name)
    mus = np.array(OUTSIDE[name])
    S = hyper_rows(art.hyper, mus)
    refs = reference_fields(mus, art.family)
    u = fields(art.lrnr, S, family=art.family)
    corrected, d = corrected_errors(art.correction_model(), S, mus, u, refs)
    estimate = art.correction.error_model.predict(d, mus)
    return list(zip(mus, relative_l2(u, refs), corrected, estimate))


def main() -> None:
    print("| model | (β, ν, ρ) | hypernetwork | corrected | estimate of the corrected answer |")
    print("|---|---|---|---|---|")
    for name in OUTSIDE:
        for mu, err, corrected, estimate in rows(name):
            print(
                f"| {name} | ({mu[0]:g}, {mu[1]:g}, {mu[2]:g}) | {100 * err:.2f}% | {100 * corrected:.3f}% | "
                f"{100 * estimate:.3f}% |"
            )


if __name__ == "__main__":
    main()
