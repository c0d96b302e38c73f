"""Small random but valid artifacts, for tests, benchmarks and demos.

A random LRNR and hypernetwork (``fastlrnr.numerics.random_model``), its FastLRNR at a few collocation
points, ONNX graphs (``fastlrnr.training.onnx_export``: onnx only, no torch) and a placeholder error
model (estimate = error proxy). The numbers mean nothing physically: they exercise the
artifact format and the service contract, not accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import write_artifact
from fastlrnr.numerics.error_estimate import ErrorModel, fit_apriori_map
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseSettings
from fastlrnr.numerics.fastlrnr import ReducedOperators, build_fastlrnr
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.hypernet import HyperWeights, hyper_rows
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.numerics.random_model import random_model


def synthetic_parts(
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    domain: Domain,
    points: int = 32,
    rank: int = 4,
    steps: int = 3,
    *,
    family: PdeFamily,
) -> dict:
    """The keyword arguments of ``write_artifact`` that describe the model's family and fast
    phase: family, reduced operators at ``points`` collocation points (seed 0), fast_phase,
    served_domain, error_estimate, correction."""

    x, t = interior_points(points, 0)
    S = hyper_rows(hyper, domain.grid(2))
    ops, _ = build_fastlrnr(lrnr, x, t, S, min(rank, lrnr.width), family=family)
    model = ErrorModel(np.array([0.0, 1.0, 0.0, 0.0, 0.0]), 0.0, domain.low.copy(), domain.high.copy(), 0.95)
    # a placeholder a-priori map: 1% at the corners of the domain, growing with β
    nodes = 0.01 * (1.0 + np.arange(len(domain.grid(2))) / len(domain.grid(2)))
    a_priori = fit_apriori_map(domain, 2, nodes, domain.grid(2)[:0], nodes[:0], extrapolation_factor=10.0)
    return {
        "family": family,
        "reduced_arrays": ops,
        "fast_phase": {
            "collocation": {"points": points, "seed": 0},
            "check": {"nx": 8, "nt": 5},
            "default": FastPhaseSettings(steps=steps).to_dict(),
            "measured": {"synthetic": True},
        },
        "served_domain": domain,
        "error_estimate": {
            "model": model.to_dict(),
            "calibration": "none: synthetic model (estimate = error proxy)",
            "a_priori": a_priori.to_dict(),
        },
        "correction": {
            "nx": 16,
            "nt": 9,
            "coarse": {"nx": 8, "nt": 5},
            "default": True,
            "substeps": 2,
            "newton": {"iterations": 3, "tol": 1e-8},
            "rungs": [{"substeps": 2, "error_model": model.to_dict()}],
            "error_model": model.to_dict(),
            "calibration": "none: synthetic model (estimate = two-grid difference)",
        },
    }


def write_synthetic(
    directory: Path,
    name: str,
    domain: Domain,
    test_domain: Domain | None = None,
    seed: int = 0,
    width: int = 32,
    ranks: Sequence[int] = (4, 3),
    points: int = 32,
    rank: int = 4,
    steps: int = 3,
    onnx: bool = True,
    served_domain: Domain | None = None,
    *,
    family: PdeFamily,
) -> Path:
    """Write a synthetic artifact of ``family`` to ``directory`` (replacing one there) and return its path."""
    from fastlrnr.training.onnx_export import lrnr_onnx

    lrnr, hyper = random_model(width, ranks, domain, seed)
    parts = synthetic_parts(lrnr, hyper, domain, points, rank, steps, family=family)
    if served_domain is not None:
        parts["served_domain"] = served_domain
    ops: ReducedOperators = parts["reduced_arrays"]
    files = {"lrnr.onnx": lrnr_onnx(lrnr, family=family), "lrnr_jets.onnx": lrnr_onnx(lrnr, jets=True, family=family)}
    files = files if onnx else {}
    return write_artifact(
        directory,
        name=name,
        version="0.0.1-test",
        domain=domain,
        test_domain=test_domain or domain,
        lrnr=lrnr,
        hyper=hyper,
        onnx_files=files,
        training={"synthetic": True, "seed": seed},
        eim={"n": ops.n},
        quality={"note": "synthetic test model"},
        overwrite=True,
        **parts,
    )
